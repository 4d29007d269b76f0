package stages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/manifest"
)

// bootablePackages make the smallest Debian system that boots with BIOS
// and UEFI and lets a user in over SSH.
var bootablePackages = []string{
	"grub-efi-amd64-bin", "grub-pc-bin", "initramfs-tools", "linux-image-amd64",
	"openssh-server", "systemd-resolved", "systemd-sysv", "udev",
}

// debianTarball returns the cached tarball of a Debian tree of suite with
// packages on top of the required set, built with mmdebstrap the first
// time under a file lock.
func debianTarball(t *testing.T, suite string, packages []string) string {
	t.Helper()
	key := sha256.Sum256([]byte(suite + "\nrequired\n" + strings.Join(packages, "\n")))
	dir := filepath.Join(testCacheDir(), "fixtures")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	tarball := filepath.Join(dir, suite+"-"+hex.EncodeToString(key[:8])+".tar")
	lock, err := os.OpenFile(tarball+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX), "locking %s", lock.Name())
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(tarball); err == nil {
		return tarball
	}
	entries, err := aptsources.Read("/")
	require.NoError(t, err, "reading the host's apt sources")
	mirrors, err := aptsources.FindDebianMirrors(entries, []string{suite})
	require.NoError(t, err)
	tmp := tarball + ".tmp.tar"
	defer os.Remove(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "mmdebstrap", "--variant=required",
		"--include="+strings.Join(packages, ","),
		suite, tmp, "deb "+mirrors.Main+" "+suite+" main")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the Debian test tree with mmdebstrap: %v\n%s", err, out.String())
	}
	require.NoError(t, os.Rename(tmp, tarball))
	t.Logf("built the Debian test tree %s in %s", tarball, time.Since(start).Round(time.Second))
	return tarball
}

// bootableTree extracts a fresh bootable Debian tree into a temporary
// directory.
func bootableTree(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	tarball := debianTarball(t, "bookworm", bootablePackages)
	dir := t.TempDir()
	out, err := exec.Command("tar", "-C", dir, "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", tarball).CombinedOutput()
	require.NoError(t, err, "extracting %s: %s", tarball, out)
	return dir
}

// hostTemplate is the qcow2 image type's layout.
var hostTemplate = disk.Template{
	Type: disk.GPT,
	Partitions: []disk.TemplatePartition{
		{Role: disk.RoleBIOSBoot, Name: "bios-boot", Size: disk.MiB},
		{Role: disk.RoleESP, Name: "esp", Size: 127 * disk.MiB,
			Filesystem: &disk.TemplateFilesystem{Type: "vfat", Mountpoint: "/boot/efi", Label: "ESP", FSTabOptions: "umask=0077"}},
		{Role: disk.RoleRoot, Name: "root", MinSize: 2 * disk.GiB,
			Filesystem: &disk.TemplateFilesystem{Type: "ext4", Mountpoint: "/", Label: "root", FSTabOptions: "errors=remount-ro"}},
	},
}

// TestBootDebianImage builds a disk image from a real Debian tree with the
// bootloader, disk image and qemu-img stages, and boots it with BIOS and
// with UEFI, checking over SSH that the system came up from the right
// filesystem with the right kernel arguments.
func TestBootDebianImage(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real image in qemu twice, minutes without KVM: not in the fast lane (go test -short)")
	}
	requireRoot(t)
	requireTools(t, "qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	tree := bootableTree(t)
	env, log := testEnv(t, tree)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("build log:\n%s", tailLines(log.String(), 60))
		}
	})
	pt, err := disk.NewPartitionTable(hostTemplate, disk.Request{MinDiskSize: 3 * disk.GiB}, disk.NewIDs(7))
	require.NoError(t, err)
	rootFS := pt.FindMountpoint("/").Payload
	espFS := pt.FindMountpoint("/boot/efi").Payload

	// Configure the tree as the configuration stages would.
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "id_ed25519")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kiln-boottest", "-f", key).CombinedOutput()
	require.NoError(t, err, "%s", out)
	pub, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	require.NoError(t, env.Chroot(ctx, nil, "/usr/sbin/useradd", "-m", "-s", "/bin/sh", "tester"))
	uid, gid := treeAccount(t, tree, "tester")
	sshDir := filepath.Join(tree, "home/tester/.ssh")
	require.NoError(t, os.MkdirAll(sshDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(sshDir, "authorized_keys"), pub, 0o600))
	require.NoError(t, os.Chown(sshDir, uid, gid))
	require.NoError(t, os.Chown(filepath.Join(sshDir, "authorized_keys"), uid, gid))
	writeTree(t, tree, "/etc/fstab", fmt.Sprintf("UUID=%s / ext4 errors=remount-ro 0 1\nUUID=%s /boot/efi vfat umask=0022 0 2\n", rootFS.UUID, espFS.UUID))
	writeTree(t, tree, "/etc/systemd/network/80-dhcp.network", "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n")
	writeTree(t, tree, "/etc/hostname", "kiln-boottest\n")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "boot/efi"), 0o755))
	require.NoError(t, env.Chroot(ctx, nil, "/usr/bin/systemctl", "enable", "ssh", "systemd-networkd", "systemd-resolved"))

	cmdline := []string{"console=tty0", "console=ttyS0,115200n8", "kiln.boottest=yes"}
	start := time.Now()
	bl := &Bootloader{Opts: manifest.Bootloader{BIOS: "i386-pc", UEFI: "x86_64-efi", RootFSUUID: rootFS.UUID, KernelCmdline: cmdline, Timeout: 0}}
	require.NoError(t, bl.Run(ctx, env))
	t.Logf("bootloader stage: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	require.NoError(t, env.Chroot(ctx, nil, "/usr/sbin/update-initramfs", "-u", "-k", "all"))
	t.Logf("update-initramfs: %s", time.Since(start).Round(time.Second))

	out1 := t.TempDir()
	raw := filepath.Join(out1, "disk.raw")
	env.Input, env.Output, env.Tree = tree, raw, ""
	start = time.Now()
	require.NoError(t, (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *pt, BIOSBootloader: "i386-pc"}}).Run(ctx, env))
	t.Logf("disk image stage: %s", time.Since(start).Round(time.Millisecond))
	assert.FileExists(t, filepath.Join(tree, "boot/efi/EFI/BOOT/BOOTX64.EFI"), "the tree is only read")

	qcow2 := filepath.Join(out1, "disk.qcow2")
	env.Input, env.Output = raw, qcow2
	start = time.Now()
	require.NoError(t, (&QemuImgConvert{Opts: manifest.QemuImgConvert{Format: "qcow2", Compat: "1.1"}}).Run(ctx, env))
	t.Logf("qemu-img convert: %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, os.Remove(raw))

	for _, fw := range []string{"bios", "uefi"} {
		t.Run(fw, func(t *testing.T) {
			var console syncBuffer
			start := time.Now()
			m, err := boottest.Boot(ctx, boottest.Config{
				Image: qcow2, Firmware: fw, SSHKey: key, User: "tester",
				Timeout: 6 * time.Minute, Log: &console,
			})
			require.NoError(t, err)
			defer m.Close()
			t.Logf("%s: SSH answered %s after start (KVM: %v)", fw, time.Since(start).Round(time.Second), m.KVM())

			got, err := m.Run(ctx, "findmnt", "-n", "-o", "UUID", "/")
			require.NoError(t, err)
			assert.Equal(t, rootFS.UUID, strings.TrimSpace(got))
			got, err = m.Run(ctx, "cat", "/proc/cmdline")
			require.NoError(t, err)
			assert.Contains(t, got, "root=UUID="+rootFS.UUID)
			assert.Contains(t, got, strings.Join(cmdline, " "))
			_, err = m.Run(ctx, "test", "-d", "/boot/efi/EFI/BOOT")
			assert.NoError(t, err, "the ESP is mounted")
			got, err = m.Run(ctx, "findmnt", "-n", "-o", "FSTYPE,UUID", "/boot/efi")
			require.NoError(t, err)
			assert.Equal(t, "vfat "+espFS.UUID, strings.Join(strings.Fields(got), " "))
			_, err = m.Run(ctx, "test", "-d", "/sys/firmware/efi")
			assert.Equal(t, fw == "uefi", err == nil, "booted with %s firmware", fw)
			if t.Failed() {
				t.Logf("console:\n%s", tailLines(console.String(), 60))
			}
		})
	}
}

// treeAccount returns the uid and gid of a user of the tree.
func treeAccount(t *testing.T, tree, name string) (int, int) {
	t.Helper()
	for _, line := range strings.Split(readTree(t, tree, "/etc/passwd"), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && f[0] == name {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			require.NoError(t, err1)
			require.NoError(t, err2)
			return uid, gid
		}
	}
	t.Fatalf("no user %s in the tree", name)
	return 0, 0
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

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
