package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestFSTab(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	env, _ := fileEnv(t, tree)
	s := &FSTab{Opts: manifest.FSTab{Entries: []manifest.FSTabEntry{
		{UUID: "7B77-95E7", Mountpoint: "/boot/efi", FSType: "vfat", Options: "umask=0077,shortname=winnt", PassNo: 2},
		{UUID: "0e1b6b4a-3d0b-4c53-9f0d-2d3f1f9e6a11", Mountpoint: "none", FSType: "swap"},
		{UUID: "6264d520-3fb9-423f-8ab8-7a0a8e3d3562", Mountpoint: "/", FSType: "ext4", Options: "errors=remount-ro", PassNo: 1},
		{UUID: "CB074E5F-0F34-4D20-9C53-0E3D6E4B1D6F", Mountpoint: "/boot", FSType: "ext4", PassNo: 2},
		{UUID: "a5e1c7a4-1111-4e3f-8c8f-1d6f6b2c7e9e", Mountpoint: "/var/lib/data", FSType: "xfs", Options: "defaults,noatime", PassNo: 2},
	}}}
	require.NoError(t, s.Run(context.Background(), env))
	want := "# /etc/fstab: static file system information, written by kiln.\n" +
		"# Filesystems are named by UUID; see fstab(5).\n#\n" +
		"# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n" +
		"UUID=6264d520-3fb9-423f-8ab8-7a0a8e3d3562\t/\text4\terrors=remount-ro\t0\t1\n" +
		"UUID=CB074E5F-0F34-4D20-9C53-0E3D6E4B1D6F\t/boot\text4\tdefaults\t0\t2\n" +
		"UUID=7B77-95E7\t/boot/efi\tvfat\tumask=0077,shortname=winnt\t0\t2\n" +
		"UUID=a5e1c7a4-1111-4e3f-8c8f-1d6f6b2c7e9e\t/var/lib/data\txfs\tdefaults,noatime\t0\t2\n" +
		"UUID=0e1b6b4a-3d0b-4c53-9f0d-2d3f1f9e6a11\tnone\tswap\tsw\t0\t0\n"
	require.Equal(t, want, readTree(t, tree, "/etc/fstab"))
	for _, mp := range []string{"boot/efi", "var/lib/data"} {
		require.DirExists(t, filepath.Join(tree, mp))
	}
	require.NoDirExists(t, filepath.Join(tree, "none"))
}

func TestFSTabMountpointLinkStaysInTree(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	require.NoError(t, os.Symlink("/tmp", filepath.Join(tree, "data")))
	env, _ := fileEnv(t, tree)
	s := &FSTab{Opts: manifest.FSTab{Entries: []manifest.FSTabEntry{
		{UUID: "6264d520-3fb9-423f-8ab8-7a0a8e3d3562", Mountpoint: "/", FSType: "ext4", PassNo: 1},
		{UUID: "a5e1c7a4-1111-4e3f-8c8f-1d6f6b2c7e9e", Mountpoint: "/data/kiln-escape-test", FSType: "ext4", PassNo: 2},
	}}}
	require.NoError(t, s.Run(context.Background(), env))
	require.NoDirExists(t, "/tmp/kiln-escape-test")
	require.DirExists(t, filepath.Join(tree, "tmp/kiln-escape-test"))
}

func TestFSTabRejectsBadEntries(t *testing.T) {
	t.Parallel()
	root := manifest.FSTabEntry{UUID: "6264d520-3fb9-423f-8ab8-7a0a8e3d3562", Mountpoint: "/", FSType: "ext4", PassNo: 1}
	for _, tc := range []struct {
		name  string
		entry manifest.FSTabEntry
		want  string
	}{
		{"uuid with space", manifest.FSTabEntry{UUID: "abc def", Mountpoint: "/x", FSType: "ext4"}, "not a filesystem UUID"},
		{"uuid injecting a line", manifest.FSTabEntry{UUID: "abc\n/dev/sda1", Mountpoint: "/x", FSType: "ext4"}, "not a filesystem UUID"},
		{"mount point with dotdot", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "/x/../..", FSType: "ext4"}, "not canonical"},
		{"relative mount point", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "x", FSType: "ext4"}, "not absolute"},
		{"blank in mount point", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "/my data", FSType: "ext4"}, "may not contain blanks"},
		{"fstype", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "/x", FSType: "ext4 rw"}, "not a filesystem type"},
		{"options", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "/x", FSType: "ext4", Options: "rw 0 0\nUUID=x"}, "mount options"},
		{"passno", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "/x", FSType: "ext4", PassNo: 3}, "fsck pass"},
		{"swap with mount point", manifest.FSTabEntry{UUID: "abcd", Mountpoint: "/swap", FSType: "swap"}, "no mount point"},
		{"duplicate", root, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree := t.TempDir()
			env, _ := fileEnv(t, tree)
			err := (&FSTab{Opts: manifest.FSTab{Entries: []manifest.FSTabEntry{root, tc.entry}}}).Run(context.Background(), env)
			require.ErrorContains(t, err, tc.want)
			require.NoFileExists(t, filepath.Join(tree, "etc/fstab"))
		})
	}
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		env, _ := fileEnv(t, t.TempDir())
		require.ErrorContains(t, (&FSTab{}).Run(context.Background(), env), "no filesystems")
	})
}
