package stages

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestKeyboard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		layout, variant, keymap string
	}{
		{"us", "", "us"},
		{"de", "nodeadkeys", "de-nodeadkeys"},
		{"us", "alt-intl", "us-alt-intl"},
	} {
		t.Run(tc.keymap, func(t *testing.T) {
			t.Parallel()
			tree := t.TempDir()
			env, _ := fileEnv(t, tree)
			require.NoError(t, (&Keyboard{Opts: manifest.Keyboard{Layout: tc.layout, Variant: tc.variant}}).Run(context.Background(), env))
			kb := readTree(t, tree, "/etc/default/keyboard")
			require.Contains(t, kb, "\nXKBMODEL=\"pc105\"\nXKBLAYOUT=\""+tc.layout+"\"\nXKBVARIANT=\""+tc.variant+"\"\nXKBOPTIONS=\"\"\n")
			require.Contains(t, kb, "\nBACKSPACE=\"guess\"\n")
			require.Equal(t, "KEYMAP="+tc.keymap+"\n", readTree(t, tree, "/etc/vconsole.conf"))
		})
	}
}

func TestKeyboardRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts manifest.Keyboard
		want string
	}{
		{"empty", manifest.Keyboard{}, "not an XKB layout"},
		{"quote", manifest.Keyboard{Layout: `us"; rm -rf / #`}, "not an XKB layout"},
		{"newline", manifest.Keyboard{Layout: "us\nXKBOPTIONS=x"}, "not an XKB layout"},
		{"variant with dollar", manifest.Keyboard{Layout: "us", Variant: "$(id)"}, "not an XKB variant"},
		{"variant option-like", manifest.Keyboard{Layout: "us", Variant: "-x"}, "not an XKB variant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			require.ErrorContains(t, (&Keyboard{Opts: tc.opts}).Run(context.Background(), env), tc.want)
		})
	}
}
