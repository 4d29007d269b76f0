package stages

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// accountsTree returns a temporary tree with an /etc/passwd and /etc/group
// that know the users and groups the file tests name.
func accountsTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	writeTree(t, tree, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nops:x:1500:1600:Ops:/home/ops:/bin/sh\n")
	writeTree(t, tree, "/etc/group", "root:x:0:\nops:x:1600:\ndevs:x:2000:ops\n")
	return tree
}

// ownerMode returns uid, gid and the permission bits (with setuid, setgid
// and sticky) of the host path p.
func ownerMode(t *testing.T, p string) (int, int, uint32) {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(p, &st))
	return int(st.Uid), int(st.Gid), st.Mode & 0o7777
}

func TestFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		file      manifest.File
		setup     func(t *testing.T, tree string)
		uid, gid  int
		mode      uint32
		wantError string
		check     func(t *testing.T, tree string)
	}{
		{name: "plain", file: manifest.File{Path: "/etc/motd", Mode: "0644", Data: "hello\n"}, mode: 0o644},
		{name: "default mode", file: manifest.File{Path: "/etc/issue.d/x", Data: "x"}, mode: 0o644},
		{name: "owner by name, setuid", file: manifest.File{Path: "/usr/local/bin/tool", Mode: "04750", User: "ops", Group: "devs", Data: "#!/bin/sh\n"}, uid: 1500, gid: 2000, mode: 0o4750},
		{name: "owner by number", file: manifest.File{Path: "/srv/f", Mode: "0o600", User: "4321", Group: "8765", Data: "n"}, uid: 4321, gid: 8765, mode: 0o600},
		{name: "missing parents", file: manifest.File{Path: "/opt/app/conf/app.conf", Mode: "640", Data: "k=v\n"}, mode: 0o640},
		{name: "replaces a file", file: manifest.File{Path: "/etc/motd", Mode: "0600", Data: "new"}, mode: 0o600,
			setup: func(t *testing.T, tree string) { writeTree(t, tree, "/etc/motd", "old") }},
		{name: "a directory on the way that is a link is an error", file: manifest.File{Path: "/etc/app/x.conf", Data: "in tree"},
			wantError: "/etc/app is a link to /srv/app in the image; use /srv/app/x.conf",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "srv/app"), 0o755))
				require.NoError(t, os.Symlink("/srv/app", filepath.Join(tree, "etc/app")))
			}},
		{name: "link to the host's /etc is not followed", file: manifest.File{Path: "/opt/escape/kiln-escape-test", Data: "x"},
			wantError: "/opt/escape is a link to /etc in the image; use /etc/kiln-escape-test",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "opt"), 0o755))
				require.NoError(t, os.Symlink("/etc", filepath.Join(tree, "opt/escape")))
			}},
		{name: "relative link climbing out is not followed", file: manifest.File{Path: "/opt/up/etc/kiln-escape-test", Data: "x"},
			wantError: "/opt/up is a link to ../../../../../../../../.. in the image; use /etc/kiln-escape-test",
			setup: func(t *testing.T, tree string) {
				require.NoError(t, os.MkdirAll(filepath.Join(tree, "opt"), 0o755))
				require.NoError(t, os.Symlink("../../../../../../../../..", filepath.Join(tree, "opt/up")))
			}},
		{name: "a link at the file's path is replaced, its target untouched", file: manifest.File{Path: "/etc/kiln-link", Data: "x"}, mode: 0o644,
			setup: func(t *testing.T, tree string) {
				writeTree(t, tree, "/etc/shadow", "root:*:1::::::\n")
				require.NoError(t, os.Symlink("/etc/shadow", filepath.Join(tree, "etc/kiln-link")))
			},
			check: func(t *testing.T, tree string) {
				require.Equal(t, "root:*:1::::::\n", readTree(t, tree, "/etc/shadow"))
				fi, err := os.Lstat(filepath.Join(tree, "etc/kiln-link"))
				require.NoError(t, err)
				require.True(t, fi.Mode().IsRegular(), "the link became a file")
			}},
		{name: "dotdot", file: manifest.File{Path: "/../../etc/passwd", Data: "x"}, wantError: "not canonical"},
		{name: "inner dotdot", file: manifest.File{Path: "/srv/../etc/x", Data: "x"}, wantError: "not canonical"},
		{name: "relative", file: manifest.File{Path: "etc/x", Data: "x"}, wantError: "not absolute"},
		{name: "root", file: manifest.File{Path: "/", Data: "x"}, wantError: "root of the image"},
		{name: "nul byte", file: manifest.File{Path: "/etc/a\x00b", Data: "x"}, wantError: "control characters"},
		{name: "mode with file type bits", file: manifest.File{Path: "/etc/x", Mode: "12345", Data: "x"}, wantError: "bits above 07777"},
		{name: "mode not octal", file: manifest.File{Path: "/etc/x", Mode: "0999", Data: "x"}, wantError: "not an octal mode"},
		{name: "mode negative", file: manifest.File{Path: "/etc/x", Mode: "-1", Data: "x"}, wantError: "not an octal mode"},
		{name: "mode too long", file: manifest.File{Path: "/etc/x", Mode: "0000644", Data: "x"}, wantError: "not a mode"},
		{name: "unknown user", file: manifest.File{Path: "/etc/x", User: "nobody2", Data: "x"}, wantError: `user "nobody2" does not exist`},
		{name: "unknown group", file: manifest.File{Path: "/etc/x", Group: "wheel", Data: "x"}, wantError: `group "wheel" does not exist`},
		{name: "owner with metacharacters", file: manifest.File{Path: "/etc/x", User: "ops;id", Data: "x"}, wantError: "not a valid user name"},
		{name: "owner id too big", file: manifest.File{Path: "/etc/x", User: "99999", Data: "x"}, wantError: "outside 0-65534"},
		{name: "over a directory", file: manifest.File{Path: "/etc", Data: "x"}, wantError: "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree := accountsTree(t)
			if tc.setup != nil {
				tc.setup(t, tree)
			}
			env, _ := fileEnv(t, tree)
			err := (&Files{Opts: manifest.Files{Files: []manifest.File{tc.file}}}).Run(context.Background(), env)
			require.NoFileExists(t, "/etc/kiln-escape-test")
			if tc.wantError != "" {
				require.ErrorContains(t, err, tc.wantError)
				return
			}
			require.NoError(t, err)
			at := tc.file.Path
			require.Equal(t, tc.file.Data, readTree(t, tree, at))
			uid, gid, mode := ownerMode(t, filepath.Join(tree, at))
			require.Equal(t, []int{tc.uid, tc.gid}, []int{uid, gid})
			require.Equal(t, tc.mode, mode, "mode %04o", mode)
			if tc.check != nil {
				tc.check(t, tree)
			}
		})
	}
}

func TestFilesParentsAreRootOwned0755(t *testing.T) {
	t.Parallel()
	tree := accountsTree(t)
	env, _ := fileEnv(t, tree)
	f := manifest.File{Path: "/opt/app/conf/app.conf", Mode: "0600", User: "ops", Data: "x"}
	require.NoError(t, (&Files{Opts: manifest.Files{Files: []manifest.File{f}}}).Run(context.Background(), env))
	for _, dir := range []string{"opt", "opt/app", "opt/app/conf"} {
		uid, gid, mode := ownerMode(t, filepath.Join(tree, dir))
		require.Equal(t, []int{0, 0}, []int{uid, gid}, dir)
		require.Equal(t, uint32(0o755), mode, dir)
	}
}
