package stages

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

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
		// Only the listed modules (none): the stage's work is the same,
		// the test takes seconds instead of a minute.
		writeTree(t, tree, "/etc/initramfs-tools/conf.d/kiln-test.conf", "MODULES=list\n")
		versions, err := installedKernels(tree)
		require.NoError(t, err)
		require.Len(t, versions, 1)
		initrd := filepath.Join(tree, "boot", "initrd.img-"+versions[0])
		// Once without an initramfs (-c), once with one (-u).
		require.NoError(t, os.RemoveAll(initrd))
		require.NoError(t, (&Initramfs{Opts: manifest.Initramfs{}}).Run(context.Background(), env))
		fi, err := os.Stat(initrd)
		require.NoError(t, err)
		require.Greater(t, fi.Size(), int64(1<<20))
		require.NoError(t, (&Initramfs{}).Run(context.Background(), env))
		require.FileExists(t, initrd)
	})
}
