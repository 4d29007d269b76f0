package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestDirectories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		dir       manifest.Directory
		setup     func(t *testing.T, tree string)
		uid, gid  int
		mode      uint32
		wantError string
	}{
		{name: "plain", dir: manifest.Directory{Path: "/srv", Mode: "0750"}, mode: 0o750},
		{name: "default mode", dir: manifest.Directory{Path: "/srv"}, mode: 0o755},
		{name: "owner and setgid", dir: manifest.Directory{Path: "/srv", Mode: "02775", User: "ops", Group: "devs"}, uid: 1500, gid: 2000, mode: 0o2775},
		{name: "sticky, numeric owner", dir: manifest.Directory{Path: "/scratch", Mode: "1777", User: "7", Group: "8"}, uid: 7, gid: 8, mode: 0o1777},
		{name: "ensure parents", dir: manifest.Directory{Path: "/srv/a/b/c", Mode: "0700", EnsureParents: true}, mode: 0o700},
		{name: "existing directory gets mode and owner", dir: manifest.Directory{Path: "/var/data", Mode: "0710", User: "ops"}, uid: 1500, mode: 0o710,
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "var/data"), 0o755))
			}},
		{name: "a link on the way is an error", dir: manifest.Directory{Path: "/data/new", Mode: "0755"},
			wantError: "/data is a link to /srv/data in the image; use /srv/data/new",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "srv/data"), 0o755))
				require.NoError(t, os.Symlink("/srv/data", filepath.Join(tree, "data")))
			}},
		{name: "relative link climbing out is not followed", dir: manifest.Directory{Path: "/srv/up/tmp/kiln-escape-test", Mode: "0755", EnsureParents: true},
			wantError: "/srv/up is a link to ../../../../../../../.. in the image; use /tmp/kiln-escape-test",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "srv"), 0o755))
				require.NoError(t, os.Symlink("../../../../../../../..", filepath.Join(tree, "srv/up")))
			}},
		{name: "absolute link to the host is not followed", dir: manifest.Directory{Path: "/srv/host/kiln-escape-test", Mode: "0755"},
			wantError: "/srv/host is a link to /tmp in the image; use /tmp/kiln-escape-test",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "srv"), 0o755))
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "tmp"), 0o1777))
				require.NoError(t, os.Symlink("/tmp", filepath.Join(tree, "srv/host")))
			}},
		{name: "the directory itself is a link", dir: manifest.Directory{Path: "/var/run", Mode: "0777", User: "ops"},
			wantError: "/var/run is a link to /run in the image; use /run",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "run"), 0o755))
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "var"), 0o755))
				require.NoError(t, os.Symlink("/run", filepath.Join(tree, "var/run")))
			}},
		{name: "missing parent", dir: manifest.Directory{Path: "/srv/a/b", Mode: "0755"}, wantError: "set ensure_parents"},
		{name: "existing file", dir: manifest.Directory{Path: "/etc/passwd", Mode: "0755"}, wantError: "not a directory"},
		{name: "dotdot", dir: manifest.Directory{Path: "/srv/../../etc", Mode: "0755"}, wantError: "not canonical"},
		{name: "trailing slash", dir: manifest.Directory{Path: "/srv/", Mode: "0755"}, wantError: "not canonical"},
		{name: "mode 12345", dir: manifest.Directory{Path: "/srv", Mode: "12345"}, wantError: "bits above 07777"},
		{name: "mode word", dir: manifest.Directory{Path: "/srv", Mode: "rwxr-xr-x"}, wantError: "not a mode"},
		{name: "unknown user", dir: manifest.Directory{Path: "/srv", User: "ghost"}, wantError: `user "ghost" does not exist`},
		{name: "group with metacharacters", dir: manifest.Directory{Path: "/srv", Group: "$(id)"}, wantError: "not a valid group name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree := accountsTree(t)
			if tc.setup != nil {
				tc.setup(t, tree)
			}
			env, _ := fileEnv(t, tree)
			err := (&Directories{Opts: manifest.Directories{Directories: []manifest.Directory{tc.dir}}}).Run(context.Background(), env)
			require.NoDirExists(t, "/tmp/kiln-escape-test")
			if tc.wantError != "" {
				require.ErrorContains(t, err, tc.wantError)
				return
			}
			require.NoError(t, err)
			at := tc.dir.Path
			require.DirExists(t, filepath.Join(tree, at))
			uid, gid, mode := ownerMode(t, filepath.Join(tree, at))
			require.Equal(t, []int{tc.uid, tc.gid}, []int{uid, gid})
			require.Equal(t, tc.mode, mode, "mode %04o", mode)
		})
	}
}
