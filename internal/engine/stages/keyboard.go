package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Keyboard writes /etc/default/keyboard (read by console-setup and X) and
// /etc/vconsole.conf (read by systemd's console setup) with the layout and
// variant. The console keymap is "<layout>" or "<layout>-<variant>".
//
// When console-setup is installed, its cached keymap is made again from
// the new configuration (setupcon --save-only, as Debian's installer does)
// and left newer than the configuration. Otherwise console-setup.service
// finds its cache stale on the first boot and runs setupcon on the live
// consoles there, which fails now and then in slow virtual machines and
// leaves the system degraded.
type Keyboard struct{ Opts manifest.Keyboard }

var (
	xkbLayoutRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	xkbVariantRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`)
)

// Validate implements Stage.
func (s *Keyboard) Validate() error {
	if !xkbLayoutRE.MatchString(s.Opts.Layout) {
		return fmt.Errorf("keyboard layout %q is not an XKB layout name such as \"us\" or \"de\"", s.Opts.Layout)
	}
	if s.Opts.Variant != "" && !xkbVariantRE.MatchString(s.Opts.Variant) {
		return fmt.Errorf("keyboard variant %q is not an XKB variant name such as \"nodeadkeys\"", s.Opts.Variant)
	}
	return nil
}

// Run implements Stage.
func (s *Keyboard) Run(ctx context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	layout, variant := s.Opts.Layout, s.Opts.Variant
	conf := fmt.Sprintf(`# KEYBOARD CONFIGURATION FILE

# Consult the keyboard(5) manual page.

XKBMODEL="pc105"
XKBLAYOUT=%q
XKBVARIANT=%q
XKBOPTIONS=""

BACKSPACE="guess"
`, layout, variant)
	if err := WriteFile(env.Tree, "/etc/default/keyboard", []byte(conf), 0o644); err != nil {
		return err
	}
	keymap := layout
	if variant != "" {
		keymap += "-" + variant
	}
	if err := WriteFile(env.Tree, "/etc/vconsole.conf", []byte("KEYMAP="+keymap+"\n"), 0o644); err != nil {
		return err
	}
	env.Logf("keyboard %s", keymap)
	return s.saveConsoleSetup(ctx, env)
}

// saveConsoleSetup refreshes console-setup's cache when the tree has it.
func (s *Keyboard) saveConsoleSetup(ctx context.Context, env *Env) error {
	if _, err := os.Stat(filepath.Join(env.Tree, "usr/bin/setupcon")); err != nil {
		if _, err := os.Stat(filepath.Join(env.Tree, "bin/setupcon")); err != nil {
			return nil
		}
	}
	if env.Chroot == nil {
		return fmt.Errorf("keyboard: console-setup is installed but the stage cannot run commands in the tree")
	}
	if err := env.Chroot(ctx, nil, "/usr/bin/setupcon", "--save-only"); err != nil {
		return fmt.Errorf("keyboard: saving console-setup's keymap: %w", err)
	}
	cached, err := os.Stat(filepath.Join(env.Tree, "etc/console-setup/cached_setup_terminal.sh"))
	if err != nil {
		return fmt.Errorf("keyboard: setupcon --save-only wrote no cache: %w", err)
	}
	// console-setup compares modification times, to the second on some
	// shells: make the configuration clearly older than its cache.
	older := cached.ModTime().Add(-time.Minute)
	for _, conf := range []string{"etc/default/keyboard", "etc/default/console-setup"} {
		if err := os.Chtimes(filepath.Join(env.Tree, conf), older, older); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keyboard: %w", err)
		}
	}
	return nil
}
