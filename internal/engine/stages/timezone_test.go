package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// zoneTree returns a tree with a few zoneinfo files.
func zoneTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(tree, "etc"), 0o755))
	for _, z := range []string{"Etc/UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"} {
		writeTree(t, tree, "/usr/share/zoneinfo/"+z, "TZif2 "+z)
	}
	return tree
}

func TestTimezone(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"Etc/UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"} {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			tree := zoneTree(t)
			// An old link, as debootstrap leaves it, is replaced.
			require.NoError(t, os.Symlink("/usr/share/zoneinfo/Etc/UTC", filepath.Join(tree, "etc/localtime")))
			env, _ := fileEnv(t, tree)
			require.NoError(t, (&Timezone{Opts: manifest.Timezone{Zone: zone}}).Run(context.Background(), env))
			target, err := os.Readlink(filepath.Join(tree, "etc/localtime"))
			require.NoError(t, err)
			require.Equal(t, "/usr/share/zoneinfo/"+zone, target)
			require.Equal(t, zone+"\n", readTree(t, tree, "/etc/timezone"))
		})
	}
}

func TestTimezoneRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ zone, want string }{
		{"Mars/Olympus_Mons", "not in the image"},
		{"Europe", "not in the image"}, // a directory
		{"../../../etc/shadow", "not a zone name"},
		{"Europe/../../../../etc/shadow", "not a zone name"},
		{"/etc/shadow", "not a zone name"},
		{"UTC; reboot", "not a zone name"},
		{"", "not a zone name"},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			t.Parallel()
			tree := zoneTree(t)
			env, _ := fileEnv(t, tree)
			err := (&Timezone{Opts: manifest.Timezone{Zone: tc.zone}}).Run(context.Background(), env)
			require.ErrorContains(t, err, tc.want)
			require.False(t, existsInTree(t, tree, "/etc/localtime"))
		})
	}
	t.Run("zoneinfo linked out of the tree", func(t *testing.T) {
		t.Parallel()
		tree := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(tree, "usr/share"), 0o755))
		// On the host /usr/share/zoneinfo exists; in the tree the link
		// leads to the tree's own /usr/share/zoneinfo, which does not.
		require.NoError(t, os.Symlink("/usr/share/zoneinfo", filepath.Join(tree, "usr/share/zoneinfo")))
		env, _ := fileEnv(t, tree)
		err := (&Timezone{Opts: manifest.Timezone{Zone: "Etc/UTC"}}).Run(context.Background(), env)
		require.Error(t, err)
	})
}
