package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// A console keymap resolved to XKB: the model and options go to
// /etc/default/keyboard, the keymap's own name to /etc/vconsole.conf.
func TestKeyboardFromConsoleKeymap(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	env, _ := fileEnv(t, tree)
	opts := manifest.Keyboard{Layout: "ru,us", Model: "pc105", Options: "terminate:ctrl_alt_bksp,grp:shifts_toggle,grp_led:scroll", Keymap: "ru"}
	require.NoError(t, (&Keyboard{Opts: opts}).Run(context.Background(), env))
	require.Contains(t, readTree(t, tree, "/etc/default/keyboard"),
		"\nXKBMODEL=\"pc105\"\nXKBLAYOUT=\"ru,us\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"terminate:ctrl_alt_bksp,grp:shifts_toggle,grp_led:scroll\"\n")
	require.Equal(t, "KEYMAP=ru\n", readTree(t, tree, "/etc/vconsole.conf"))

	tree = t.TempDir()
	env, _ = fileEnv(t, tree)
	require.NoError(t, (&Keyboard{Opts: manifest.Keyboard{Layout: "us", Variant: "dvorak", Keymap: "dvorak"}}).Run(context.Background(), env))
	require.Contains(t, readTree(t, tree, "/etc/default/keyboard"), "\nXKBMODEL=\"pc105\"\nXKBLAYOUT=\"us\"\nXKBVARIANT=\"dvorak\"\n")
	require.Equal(t, "KEYMAP=dvorak\n", readTree(t, tree, "/etc/vconsole.conf"))
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
		{"model with quote", manifest.Keyboard{Layout: "us", Model: `pc105"`}, "not an XKB model"},
		{"options with newline", manifest.Keyboard{Layout: "us", Options: "grp:x\nXKBLAYOUT=y"}, "not XKB options"},
		{"keymap with slash", manifest.Keyboard{Layout: "us", Keymap: "../x"}, "not a keymap name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			require.ErrorContains(t, (&Keyboard{Opts: tc.opts}).Run(context.Background(), env), tc.want)
		})
	}
}

// console-setup's cache stays newer than its configuration in the disk
// image, whose filesystems clamp every time after the epoch to the epoch.
func TestConsoleSetupCacheNewerAfterClamping(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	for _, f := range []string{"/etc/console-setup/cached_setup_terminal.sh", "/etc/console-setup/cached_setup_keyboard.sh", "/etc/default/keyboard", "/etc/default/console-setup"} {
		writeTree(t, tree, f, "x")
	}
	epoch := time.Unix(1700000000, 0)
	require.NoError(t, dateConsoleSetupCache(tree, epoch))
	clamped := func(p string) time.Time {
		fi, err := os.Stat(filepath.Join(tree, p))
		require.NoError(t, err)
		if fi.ModTime().After(epoch) {
			return epoch
		}
		return fi.ModTime()
	}
	for _, cache := range []string{"etc/console-setup/cached_setup_terminal.sh", "etc/console-setup/cached_setup_keyboard.sh"} {
		for _, conf := range []string{"etc/default/keyboard", "etc/default/console-setup"} {
			assert.True(t, clamped(cache).Sub(clamped(conf)) >= time.Second, "%s is newer than %s by a second or more", cache, conf)
		}
	}
	// Without an epoch the cache keeps its own time.
	tree2 := t.TempDir()
	writeTree(t, tree2, "/etc/console-setup/cached_setup_terminal.sh", "x")
	writeTree(t, tree2, "/etc/default/keyboard", "x")
	before, err := os.Stat(filepath.Join(tree2, "etc/console-setup/cached_setup_terminal.sh"))
	require.NoError(t, err)
	require.NoError(t, dateConsoleSetupCache(tree2, time.Time{}))
	after, err := os.Stat(filepath.Join(tree2, "etc/console-setup/cached_setup_terminal.sh"))
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime())
	assert.ErrorContains(t, dateConsoleSetupCache(t.TempDir(), epoch), "wrote no cache")
}
