package stages

import (
	"context"
	"fmt"
	"regexp"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Keyboard writes /etc/default/keyboard (read by console-setup and X) and
// /etc/vconsole.conf (read by systemd's console setup) with the layout and
// variant. The console keymap is "<layout>" or "<layout>-<variant>".
type Keyboard struct{ Opts manifest.Keyboard }

var (
	xkbLayoutRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	xkbVariantRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`)
)

// Run implements Stage.
func (s *Keyboard) Run(_ context.Context, env *Env) error {
	layout, variant := s.Opts.Layout, s.Opts.Variant
	if !xkbLayoutRE.MatchString(layout) {
		return fmt.Errorf("keyboard layout %q is not an XKB layout name such as \"us\" or \"de\"", layout)
	}
	if variant != "" && !xkbVariantRE.MatchString(variant) {
		return fmt.Errorf("keyboard variant %q is not an XKB variant name such as \"nodeadkeys\"", variant)
	}
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
	return nil
}
