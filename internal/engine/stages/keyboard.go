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
// /etc/vconsole.conf (read by systemd's tools) with the XKB layout,
// variant, model (pc105 unless given) and options. The console keymap is
// Keymap when given (the name a blueprint used, such as "de-latin1"), else
// "<layout>" or "<layout>-<variant>".
//
// When console-setup is installed, its cached keymap is made again from
// the new configuration (setupcon --save-only, as Debian's installer does)
// and left newer than the configuration. Otherwise console-setup.service
// finds its cache stale on the first boot and runs setupcon on the live
// consoles there, which fails now and then in slow virtual machines and
// leaves the system degraded.
type Keyboard struct{ Opts manifest.Keyboard }

// XKB names; a layout may be a list ("ru,us", switched by an option), and
// so may a variant.
var (
	xkbLayoutRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}(,[a-z][a-z0-9_]{0,31}){0,3}$`)
	xkbVariantRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(,[A-Za-z0-9_-]{0,64}){0,3}$`)
	xkbModelRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_+-]{0,63}$`)
	xkbOptionsRE = regexp.MustCompile(`^[a-z0-9_]+:[a-z0-9_]+(,[a-z0-9_]+:[a-z0-9_]+){0,15}$`)
	keymapRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
)

// Validate implements Stage.
func (s *Keyboard) Validate() error {
	o := s.Opts
	if !xkbLayoutRE.MatchString(o.Layout) {
		return fmt.Errorf("keyboard layout %q is not an XKB layout name such as \"us\" or \"de\"", o.Layout)
	}
	if o.Variant != "" && !xkbVariantRE.MatchString(o.Variant) {
		return fmt.Errorf("keyboard variant %q is not an XKB variant name such as \"nodeadkeys\"", o.Variant)
	}
	if o.Model != "" && !xkbModelRE.MatchString(o.Model) {
		return fmt.Errorf("keyboard model %q is not an XKB model name such as \"pc105\"", o.Model)
	}
	if o.Options != "" && !xkbOptionsRE.MatchString(o.Options) {
		return fmt.Errorf("keyboard options %q are not XKB options such as \"grp:shifts_toggle,terminate:ctrl_alt_bksp\"", o.Options)
	}
	if o.Keymap != "" && !keymapRE.MatchString(o.Keymap) {
		return fmt.Errorf("console keymap %q is not a keymap name such as \"de-latin1\"", o.Keymap)
	}
	return nil
}

// Run implements Stage.
func (s *Keyboard) Run(ctx context.Context, env *Env) error {
	if err := s.Validate(); err != nil {
		return err
	}
	layout, variant, model := s.Opts.Layout, s.Opts.Variant, s.Opts.Model
	if model == "" {
		model = "pc105"
	}
	conf := fmt.Sprintf(`# KEYBOARD CONFIGURATION FILE

# Consult the keyboard(5) manual page.

XKBMODEL=%q
XKBLAYOUT=%q
XKBVARIANT=%q
XKBOPTIONS=%q

BACKSPACE="guess"
`, model, layout, variant, s.Opts.Options)
	if err := WriteFile(env.Tree, "/etc/default/keyboard", []byte(conf), 0o644); err != nil {
		return err
	}
	keymap := s.Opts.Keymap
	if keymap == "" {
		keymap = layout
		if variant != "" {
			keymap += "-" + variant
		}
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
	if err := dateConsoleSetupCache(env.Tree, env.Epoch); err != nil {
		return fmt.Errorf("keyboard: %w", err)
	}
	return nil
}

// dateConsoleSetupCache makes console-setup's cache newer than its
// configuration, as console-setup checks on every boot (it rebuilds a
// cache that is not newer, which is slow and, early in boot, can fail).
// It compares modification times, to the second on some shells, so the
// configuration is dated a minute before the cache. With an epoch, the
// cache is dated at the epoch: the disk image's filesystems clamp every
// later time to the epoch (disk.NormalizeExt4Times), which would
// otherwise give the cache and its configuration the same time.
func dateConsoleSetupCache(tree string, epoch time.Time) error {
	cached, err := os.Stat(filepath.Join(tree, "etc/console-setup/cached_setup_terminal.sh"))
	if err != nil {
		return fmt.Errorf("setupcon --save-only wrote no cache: %w", err)
	}
	at := cached.ModTime()
	if !epoch.IsZero() && at.After(epoch) {
		at = epoch
	}
	caches, err := filepath.Glob(filepath.Join(tree, "etc/console-setup/cached_*"))
	if err != nil {
		return err
	}
	for _, c := range caches {
		if err := os.Chtimes(c, at, at); err != nil {
			return err
		}
	}
	older := at.Add(-time.Minute)
	for _, conf := range []string{"etc/default/keyboard", "etc/default/console-setup"} {
		if err := os.Chtimes(filepath.Join(tree, conf), older, older); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
