package stages

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// That the bootloader, disk image and qemu-img stages make a disk that
// boots with BIOS and with UEFI, from the root and ESP the manifest names,
// with its kernel arguments, is proven on a real image by test/e2e's
// TestQcow2Image; the tests here check what each stage writes.

func TestGrubConfig(t *testing.T) {
	t.Parallel()
	o := manifest.Bootloader{
		BIOS: "i386-pc", RootFSUUID: "a6189570-69f4-413c-be22-107a1bc8611f", Timeout: 3,
		KernelCmdline: []string{"console=tty0", "console=ttyS0,115200n8", "quiet", "x=$y"},
	}
	cfg := grubConfig(&o, "6.1.0-37-amd64", "Debian GNU/Linux 12 (bookworm)")
	assert.Contains(t, cfg, "set timeout=3\n")
	assert.Contains(t, cfg, "serial --unit=0 --speed=115200\nterminal_input console serial\n")
	assert.Contains(t, cfg, "menuentry 'Debian GNU/Linux 12 (bookworm)' --id kiln-default {\n")
	assert.Contains(t, cfg, "\tsearch --no-floppy --fs-uuid --set=root a6189570-69f4-413c-be22-107a1bc8611f\n")
	assert.Contains(t, cfg, "\tlinux /boot/vmlinuz-6.1.0-37-amd64 root=UUID=a6189570-69f4-413c-be22-107a1bc8611f ro console=tty0 console=ttyS0,115200n8 quiet 'x=$y'\n")
	assert.Contains(t, cfg, "\tinitrd /boot/initrd.img-6.1.0-37-amd64\n")
	assert.Equal(t, "search --no-floppy --fs-uuid --set=root a6189570-69f4-413c-be22-107a1bc8611f\nset prefix=($root)/boot/grub\ninsmod normal\nnormal\n", earlyConfig(&o))

	// With a separate /boot, paths are relative to it.
	o.BootFSUUID = "4b05b108-5b3d-4298-a5ee-bda841caf31a"
	o.KernelCmdline = nil
	cfg = grubConfig(&o, "6.1.0-37-amd64", "Debian")
	assert.Contains(t, cfg, "--set=root 4b05b108-5b3d-4298-a5ee-bda841caf31a\n")
	assert.Contains(t, cfg, "\tlinux /vmlinuz-6.1.0-37-amd64 root=UUID=a6189570-69f4-413c-be22-107a1bc8611f ro\n")
	assert.Contains(t, cfg, "\tinitrd /initrd.img-6.1.0-37-amd64\n")
	assert.NotContains(t, cfg, "serial")
	assert.Contains(t, earlyConfig(&o), "set prefix=($root)/grub\n")
}

func TestNewestKernel(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	for _, f := range []string{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-37-amd64", "vmlinuz-6.1.0-40-amd64.dpkg-tmp", "config-6.1.0-99-amd64", "System.map-6.1.0-37-amd64"} {
		writeTree(t, tree, "/boot/"+f, "")
	}
	require.NoError(t, os.Symlink("vmlinuz-6.1.0-9-amd64", filepath.Join(tree, "boot/vmlinuz")))
	v, err := newestKernel(tree)
	require.NoError(t, err)
	assert.Equal(t, "6.1.0-37-amd64", v)

	_, err = newestKernel(t.TempDir())
	assert.ErrorContains(t, err, "/boot")
	empty := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(empty, "boot"), 0o755))
	_, err = newestKernel(empty)
	assert.ErrorContains(t, err, "install a kernel package")
}

func TestWriteDefaultGrub(t *testing.T) {
	t.Parallel()
	o := manifest.Bootloader{Timeout: 2, KernelCmdline: []string{"console=ttyS0,115200n8", `a="b"`}}

	fresh := t.TempDir()
	require.NoError(t, writeDefaultGrub(fresh, &o))
	got := readTree(t, fresh, "/etc/default/grub")
	assert.Contains(t, got, "GRUB_TIMEOUT=2\n")
	assert.Contains(t, got, `GRUB_CMDLINE_LINUX="console=ttyS0,115200n8 a=\"b\""`+"\n")
	assert.Contains(t, got, `GRUB_TERMINAL="console serial"`)

	packaged := t.TempDir()
	writeTree(t, packaged, "/etc/default/grub", "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n#GRUB_TERMINAL=console\nGRUB_CMDLINE_LINUX=\"late\"\n")
	require.NoError(t, writeDefaultGrub(packaged, &o))
	assert.Equal(t, "GRUB_DEFAULT=0\nGRUB_TIMEOUT=2\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"+
		`GRUB_CMDLINE_LINUX="console=ttyS0,115200n8 a=\"b\""`+"\n#GRUB_TERMINAL=console\n",
		readTree(t, packaged, "/etc/default/grub"))
}

func TestBootloaderRejects(t *testing.T) {
	t.Parallel()
	uuid := "a6189570-69f4-413c-be22-107a1bc8611f"
	tests := []struct {
		opts manifest.Bootloader
		want string
	}{
		{manifest.Bootloader{RootFSUUID: uuid}, "neither a bios nor a uefi platform"},
		{manifest.Bootloader{BIOS: "i386-coreboot", RootFSUUID: uuid}, `bios platform "i386-coreboot" is not supported`},
		{manifest.Bootloader{UEFI: "riscv64-efi", RootFSUUID: uuid}, `uefi platform "riscv64-efi" is not supported`},
		{manifest.Bootloader{BIOS: "i386-pc", RootFSUUID: "root"}, `root_fs_uuid "root"`},
		{manifest.Bootloader{BIOS: "i386-pc", RootFSUUID: uuid, KernelCmdline: []string{"a b"}}, "kernel_cmdline[0]"},
		{manifest.Bootloader{BIOS: "i386-pc", RootFSUUID: uuid, KernelCmdline: []string{"ok", "x'y"}}, "kernel_cmdline[1]"},
		{manifest.Bootloader{BIOS: "i386-pc", RootFSUUID: uuid, Timeout: -1}, "timeout -1"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			assert.ErrorContains(t, (&Bootloader{Opts: tc.opts}).Run(context.Background(), env), tc.want)
		})
	}
}
