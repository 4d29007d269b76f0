package stages

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestInitramfsNeedsKernelAndTools(t *testing.T) {
	t.Parallel()
	t.Run("no kernel", func(t *testing.T) {
		t.Parallel()
		tree := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(tree, "boot"), 0o755))
		// A kernel image without its modules is not an installed kernel.
		writeTree(t, tree, "/boot/vmlinuz-6.1.0-9-amd64", "x")
		env, _ := fileEnv(t, tree)
		err := (&Initramfs{}).Run(context.Background(), env)
		require.ErrorContains(t, err, "no kernel is installed")
	})
	t.Run("no initramfs-tools", func(t *testing.T) {
		t.Parallel()
		tree := t.TempDir()
		writeTree(t, tree, "/boot/vmlinuz-6.1.0-9-amd64", "x")
		require.NoError(t, os.MkdirAll(filepath.Join(tree, "usr/lib/modules/6.1.0-9-amd64"), 0o755))
		require.NoError(t, os.Symlink("usr/lib", filepath.Join(tree, "lib")))
		env, _ := fileEnv(t, tree)
		err := (&Initramfs{}).Run(context.Background(), env)
		require.ErrorContains(t, err, "add the initramfs-tools package")
	})
}

// kernelPackage is the smallest Debian kernel for the host's architecture.
func kernelPackage(t *testing.T) string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return "linux-image-cloud-" + runtime.GOARCH
	}
	t.Skipf("no small Debian kernel package known for %s", runtime.GOARCH)
	return ""
}

func TestInitramfsDebianTree(t *testing.T) {
	t.Parallel()
	t.Run("no kernel in a Debian tree", func(t *testing.T) {
		t.Parallel()
		tree := debianTree(t)
		env, _ := testEnv(t, tree)
		require.ErrorContains(t, (&Initramfs{}).Run(context.Background(), env), "no kernel is installed")
	})
	t.Run("kernel", func(t *testing.T) {
		t.Parallel()
		pkgs := slices.Concat(fixturePackages, []string{"initramfs-tools", kernelPackage(t)})
		slices.Sort(pkgs)
		tree := debianTreeWith(t, pkgs)
		env, _ := testEnv(t, tree)
		versions, err := installedKernels(tree)
		require.NoError(t, err)
		require.Len(t, versions, 1)
		initrd := filepath.Join(tree, "boot", "initrd.img-"+versions[0])
		// Once without an initramfs (-c), once with one (-u). Only the
		// listed drivers: the stage's work is the same, the test takes
		// seconds instead of a minute. A driver the kernel has built in
		// (ext4, in the cloud kernel) or lacks is skipped.
		opts := manifest.Initramfs{Drivers: []string{"virtio_blk", "sd_mod", "ext4", "no_such_driver"}}
		require.NoError(t, (&Initramfs{Opts: opts}).Validate())
		require.NoError(t, os.RemoveAll(initrd))
		require.NoError(t, (&Initramfs{Opts: opts}).Run(context.Background(), env))
		fi, err := os.Stat(initrd)
		require.NoError(t, err)
		require.Greater(t, fi.Size(), int64(1<<20))
		files := initramfsFiles(t, initrd)
		for _, want := range []string{"/virtio_blk.ko", "/sd_mod.ko", "/scsi_mod.ko"} {
			assert.True(t, slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, want) }), "the initramfs has %s (listed, or needed by a listed driver)", want)
		}
		for _, not := range []string{"/ahci.ko", "/virtio_net.ko", "/xfs.ko"} {
			assert.False(t, slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, not) }), "the initramfs has no unlisted %s", not)
		}
		conf, err := os.ReadFile(filepath.Join(tree, initramfsDriversConf))
		require.NoError(t, err)
		assert.Contains(t, string(conf), "MODULES=list", "a later update-initramfs on the machine keeps to the list")
		require.NoError(t, (&Initramfs{Opts: opts}).Run(context.Background(), env))
		require.FileExists(t, initrd)
	})
}

// initramfsFiles lists the files of a zstd- or gzip-compressed initramfs
// (initramfs-tools uses gzip when the tree has no zstd), with the host's
// tools.
func initramfsFiles(t *testing.T, initrd string) []string {
	t.Helper()
	data, err := os.ReadFile(initrd)
	require.NoError(t, err)
	tool := "zstd"
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		tool = "gzip"
	} else {
		require.True(t, bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}), "the initramfs is zstd- or gzip-compressed, starting %x", data[:min(len(data), 8)])
	}
	cmd := exec.Command(tool, "-dc")
	cmd.Stdin = bytes.NewReader(data)
	cpio, err := cmd.Output()
	require.NoError(t, err)
	var names []string
	for len(cpio) >= 110 && (string(cpio[:6]) == "070701" || string(cpio[:6]) == "070702") {
		size, err1 := strconv.ParseUint(string(cpio[54:62]), 16, 32)
		nlen, err2 := strconv.ParseUint(string(cpio[94:102]), 16, 32)
		require.NoError(t, errors.Join(err1, err2))
		name := string(cpio[110 : 110+nlen-1])
		if name == "TRAILER!!!" {
			break
		}
		names = append(names, name)
		off := (110 + int(nlen) + 3) &^ 3
		off = (off + int(size) + 3) &^ 3
		cpio = cpio[off:]
	}
	require.NotEmpty(t, names)
	return names
}

func TestInitramfsRefusesBadDriverNames(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "virtio_blk; reboot", "../x", "a b", "-x", "ext4\n"} {
		err := (&Initramfs{Opts: manifest.Initramfs{Drivers: []string{"ext4", bad}}}).Validate()
		assert.ErrorContains(t, err, "drivers[1]", "%q", bad)
	}
}
