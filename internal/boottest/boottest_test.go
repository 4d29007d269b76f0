package boottest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/emulation"
)

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "with space", "it's", `"double"`, "$HOME", "a;b|c&d", "`id`", "new\nline", "*", "-n"} {
		out, err := exec.Command("sh", "-c", "printf %s "+ShellQuote(s)).Output()
		require.NoError(t, err, "%q", s)
		assert.Equal(t, s, string(out), "the remote shell sees %q as one word", s)
	}
	assert.Equal(t, "findmnt", ShellQuote("findmnt"))
	assert.Equal(t, "'a b'", ShellQuote("a b"))
}

// The default card is QEMU's own choice (no model named); otherwise the
// machine gets virtio-net. Either way the guest's SSH port is forwarded.
func TestNICArgs(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"-nic", "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22"},
		nicArgs(Config{NIC: NICDefault}.withDefaults(), 2222))
	assert.Equal(t, []string{"-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22", "-device", "virtio-net-pci,netdev=n0"},
		nicArgs(Config{}.withDefaults(), 2222))
}

func TestConfigRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.raw")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{SSHKey: key}, "no image to boot"},
		{Config{Image: filepath.Join(dir, "missing"), SSHKey: key}, "is not a readable file"},
		{Config{Image: image, SSHKey: key, Firmware: "coreboot"}, `firmware "coreboot"`},
		{Config{Image: image}, "no SSH private key"},
		{Config{Image: image, SSHKey: filepath.Join(dir, "nokey")}, "SSH key"},
		{Config{Image: image, SSHKey: key, Memory: 64}, "too little"},
		{Config{Image: image, SSHKey: key, User: "-oProxyCommand=x"}, "not a user name"},
		{Config{CDROM: filepath.Join(dir, "missing.iso"), SSHKey: key}, `cdrom "`},
		{Config{CDROM: dir, SSHKey: key}, "is not a readable file"},
		{Config{CDROM: image, SSHKey: key, BlankDisks: []int64{1<<30 + 1}}, "blank disk 0: size 1073741825"},
		{Config{Image: image, SSHKey: key, BlankDisks: []int64{1 << 30, 4096}}, "blank disk 1: size 4096"},
		{Config{Image: image, SSHKey: key, Drives: []string{image, filepath.Join(dir, "seed.iso")}}, "drive 1: "},
		{Config{Image: image, SSHKey: key, Machine: "virt"}, `machine "virt"`},
		{Config{Image: image, SSHKey: key, NIC: "e1000"}, `nic "e1000"`},
		{Config{Image: image, SSHKey: key, Arch: ArchAarch64, Firmware: "bios"}, `firmware "bios": aarch64 machines boot with UEFI only`},
		{Config{Image: image, SSHKey: key, Arch: ArchAarch64, Firmware: "coreboot"}, `firmware "coreboot": expected uefi`},
		{Config{Image: image, SSHKey: key, Arch: ArchAarch64, Machine: "q35"}, `machine "q35": expected virt for aarch64`},
		{Config{Image: image, SSHKey: key, Machine: "virt"}, `machine "virt": expected q35 or pc for x86_64`},
		{Config{Image: image, SSHKey: key, Arch: "arm64"}, `arch "arm64": expected x86_64 or aarch64 (kiln names architectures as the kernel does`},
		{Config{Image: image, SSHKey: key, Arch: "riscv64"}, `arch "riscv64": expected x86_64 or aarch64`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			_, err := Boot(context.Background(), tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// Every problem of a configuration is reported at once.
func TestConfigRejectsEverything(t *testing.T) {
	t.Parallel()
	_, err := Boot(context.Background(), Config{Arch: ArchAarch64, Firmware: "bios", Machine: "pc", Memory: 64})
	require.Error(t, err)
	for _, want := range []string{"no image to boot", "UEFI only", `machine "pc"`, "no SSH private key", "too little"} {
		assert.ErrorContains(t, err, want)
	}
}

// An aarch64 machine is virt with UEFI unless told otherwise; an x86_64
// one, the default, q35 with SeaBIOS.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	arm := Config{Arch: ArchAarch64}.withDefaults()
	assert.Equal(t, "uefi", arm.Firmware)
	assert.Equal(t, "virt", arm.Machine)
	x86 := Config{}.withDefaults()
	assert.Equal(t, ArchX86_64, x86.Arch)
	assert.Equal(t, "bios", x86.Firmware)
	assert.Equal(t, "q35", x86.Machine)
}

// KVM never runs another architecture's guest.
func TestKVMUsableForAnotherArch(t *testing.T) {
	t.Parallel()
	other := ArchAarch64
	if emulation.Host() == ArchAarch64 {
		other = ArchX86_64
	}
	assert.False(t, KVMUsableFor(other))
	assert.Equal(t, KVMUsable(), KVMUsableFor(emulation.Host()))
}

// fakeFirmware writes a code and a variable store file into dir.
func fakeFirmware(t *testing.T, dir string) (code, vars string) {
	t.Helper()
	code, vars = filepath.Join(dir, "CODE.fd"), filepath.Join(dir, "VARS.fd")
	require.NoError(t, os.WriteFile(code, []byte("code"), 0o644))
	require.NoError(t, os.WriteFile(vars, []byte("variables"), 0o644))
	return code, vars
}

// An x86_64 machine under TCG: q35, SeaBIOS, virtio everywhere, the
// serial console on standard output.
func TestQEMUArgsX86_64(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.qcow2")
	require.NoError(t, os.WriteFile(image, []byte("QFI\xfb...."), 0o644))
	args, err := qemuArgs(Config{Image: image}.withDefaults(), dir, 2222, false)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-accel", "tcg",
		"-nodefaults", "-display", "none", "-vga", "std", "-machine", "q35", "-cpu", "max",
		"-m", "1024", "-smp", "2", "-serial", "stdio", "-monitor", "none",
		"-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22", "-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
		"-drive", "file=" + image + ",format=qcow2,if=none,id=image,snapshot=on", "-device", "virtio-blk-pci,drive=image,bootindex=0",
	}, args)
}

// With KVM and UEFI, x86_64 keeps TCG as QEMU's fallback and boots OVMF
// from a private copy of its variable store.
func TestQEMUArgsX86_64UEFIWithKVM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.raw")
	require.NoError(t, os.WriteFile(image, make([]byte, 4096), 0o644))
	code, vars := fakeFirmware(t, t.TempDir())
	args, err := qemuArgs(Config{Image: image, Firmware: "uefi", OVMFCode: code, OVMFVars: vars}.withDefaults(), dir, 2222, true)
	require.NoError(t, err)
	assert.Equal(t, []string{"-accel", "kvm", "-accel", "tcg"}, args[:4])
	assert.Equal(t, []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + filepath.Join(dir, "VARS.fd"),
	}, args[len(args)-4:])
	copied, err := os.ReadFile(filepath.Join(dir, "VARS.fd"))
	require.NoError(t, err)
	assert.Equal(t, "variables", string(copied))
}

// An aarch64 machine under TCG: virt with the emulated CPU model, AAVMF as
// pflash (the variable store a private copy), virtio disks and NIC, the
// CD-ROM on virtio-scsi, the PL011 console on standard output.
func TestQEMUArgsAarch64(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.raw")
	iso := filepath.Join(dir, "install.iso")
	require.NoError(t, os.WriteFile(image, make([]byte, 4096), 0o644))
	code, vars := fakeFirmware(t, t.TempDir())
	cfg := Config{Arch: ArchAarch64, Image: image, CDROM: iso, BlankDisks: []int64{1 << 30}, OVMFCode: code, OVMFVars: vars, Memory: 2048}
	args, err := qemuArgs(cfg.withDefaults(), dir, 2022, false)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-accel", "tcg",
		"-nodefaults", "-display", "none", "-machine", "virt", "-cpu", archSpecs[ArchAarch64].tcgCPU,
		"-m", "2048", "-smp", "2", "-serial", "stdio", "-monitor", "none",
		"-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:2022-:22", "-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
		"-drive", "file=" + image + ",format=raw,if=none,id=image,snapshot=on", "-device", "virtio-blk-pci,drive=image,bootindex=0",
		"-drive", "file=" + filepath.Join(dir, "blank0.raw") + ",format=raw,if=none,id=blank0,discard=unmap,detect-zeroes=unmap",
		"-device", "virtio-blk-pci,drive=blank0,bootindex=1",
		"-drive", "file=" + iso + ",format=raw,if=none,id=cdrom,media=cdrom,readonly=on",
		"-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,drive=cdrom,bus=scsi0.0,bootindex=2",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + filepath.Join(dir, "VARS.fd"),
	}, args)
	fi, err := os.Stat(filepath.Join(dir, "VARS.fd"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the variable store copy is the machine's own")
	assert.NotContains(t, args, "-vga", "virt has no VGA")
}

// On an arm64 host with KVM the guest gets the host's CPU and interrupt
// controller, and no TCG fallback (which "-cpu host" does not allow).
func TestQEMUArgsAarch64WithKVM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.raw")
	require.NoError(t, os.WriteFile(image, make([]byte, 4096), 0o644))
	code, vars := fakeFirmware(t, t.TempDir())
	args, err := qemuArgs(Config{Arch: ArchAarch64, Image: image, OVMFCode: code, OVMFVars: vars}.withDefaults(), dir, 2022, true)
	require.NoError(t, err)
	joined := strings.Join(args, " ")
	assert.True(t, strings.HasPrefix(joined, "-accel kvm -nodefaults "), joined)
	assert.Contains(t, joined, "-machine virt,gic-version=host -cpu host ")
	assert.NotContains(t, joined, "tcg")
}

// Without firmware the error names the package that installs it; given
// half of it, the error says so.
func TestFirmwareMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, vars := fakeFirmware(t, dir)
	spec := archSpecs[ArchAarch64]
	spec.uefi = [][2]string{{filepath.Join(dir, "none"), vars}, {code, filepath.Join(dir, "none")}}
	_, _, err := findFirmware(Config{Arch: ArchAarch64}, spec)
	assert.ErrorContains(t, err, "no AAVMF firmware found to boot aarch64 with UEFI: install the qemu-efi-aarch64 package")

	spec.uefi = append(spec.uefi, [2]string{code, vars})
	gotCode, gotVars, err := findFirmware(Config{Arch: ArchAarch64}, spec)
	require.NoError(t, err)
	assert.Equal(t, [2]string{code, vars}, [2]string{gotCode, gotVars}, "the first complete pair")

	_, _, err = findFirmware(Config{Arch: ArchAarch64, OVMFCode: code}, spec)
	assert.ErrorContains(t, err, "give both the AAVMF code and variables files, or neither")
	_, _, err = findFirmware(Config{Arch: ArchX86_64}, archSpec{uefiName: "OVMF", uefiPackage: "ovmf", uefi: spec.uefi[:2]})
	assert.ErrorContains(t, err, "install the ovmf package")
}

// Without qemu-system-aarch64 the error names the Debian package that
// installs it, before anything is started or written.
func TestBootNamesMissingEmulatorPackage(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.raw")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))
	t.Setenv("PATH", t.TempDir())
	_, err := Boot(context.Background(), Config{Arch: ArchAarch64, Image: image, SSHKey: key})
	assert.ErrorContains(t, err, "qemu-system-aarch64 is not installed (Debian package qemu-system-arm)")
	_, err = Boot(context.Background(), Config{Image: image, SSHKey: key})
	assert.ErrorContains(t, err, "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
}

// An image that cannot boot fails within the timeout, with the console in
// the error, and leaves neither QEMU nor temporary files behind.
func TestBootFailureCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU and waits out a boot timeout: not in the fast lane (go test -short)")
	}
	for _, tool := range []string{"qemu-system-x86_64", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "blank.raw")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	start := time.Now()
	_, err := Boot(context.Background(), Config{Image: image, SSHKey: key, Timeout: 5 * time.Second})
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Minute)
	assert.Contains(t, err.Error(), "SSH did not let root in within 5s")
	assert.Contains(t, err.Error(), "last lines of the serial console")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the machine's temporary files are removed")
	out, _ := exec.Command("pgrep", "-f", "hostfwd=tcp:127.0.0.1:[0-9]+-:22.*"+regexpQuote(image)).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "QEMU is not left running")
}

// A machine with a CD-ROM and a blank disk starts (QEMU accepts the
// drives), fails like any other when nothing boots, and leaves neither its
// blank disk nor QEMU behind; the ISO is not written to.
func TestBootCDROMAndBlankDiskCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU and waits out a boot timeout: not in the fast lane (go test -short)")
	}
	for _, tool := range []string{"qemu-system-x86_64", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	iso := filepath.Join(dir, "blank.iso")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(iso, make([]byte, 1<<20), 0o444))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))
	before, err := os.Stat(iso)
	require.NoError(t, err)

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err = Boot(context.Background(), Config{CDROM: iso, BlankDisks: []int64{64 << 20}, SSHKey: key, Timeout: 5 * time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SSH did not let root in within 5s", "QEMU ran until the timeout")
	assert.Contains(t, err.Error(), "blank.iso")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the blank disk and the machine's other files are removed")
	after, err := os.Stat(iso)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "the ISO is untouched")
}

// The drives come in boot order: image, blank disks, CD-ROM; the image is
// a snapshot and the CD-ROM read-only.
func TestDriveArgs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	image := filepath.Join(dir, "disk,1.raw")
	iso := filepath.Join(dir, "x.iso")
	require.NoError(t, os.WriteFile(image, make([]byte, 4096), 0o644))
	args, err := driveArgs(Config{Image: image, CDROM: iso, BlankDisks: []int64{1 << 30, 2 << 30}}, dir)
	require.NoError(t, err)
	joined := strings.Join(args, " ")
	assert.Contains(t, joined, "file="+strings.ReplaceAll(image, ",", ",,")+",format=raw,if=none,id=image,snapshot=on -device virtio-blk-pci,drive=image,bootindex=0")
	assert.Contains(t, joined, "id=blank0,discard=unmap,detect-zeroes=unmap -device virtio-blk-pci,drive=blank0,bootindex=1")
	assert.Contains(t, joined, "id=blank1,discard=unmap,detect-zeroes=unmap -device virtio-blk-pci,drive=blank1,bootindex=2")
	assert.Contains(t, joined, "file="+iso+",format=raw,if=none,id=cdrom,media=cdrom,readonly=on -device ide-cd,drive=cdrom,bus=ide.0,bootindex=3")
	for i, size := range []int64{1 << 30, 2 << 30} {
		fi, err := os.Stat(filepath.Join(dir, "blank"+string(rune('0'+i))+".raw"))
		require.NoError(t, err)
		assert.Equal(t, size, fi.Size())
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(".", `\.`, "+", `\+`, "*", `\*`, "?", `\?`, "(", `\(`, ")", `\)`, "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

// QEMU accepts an aarch64 machine's arguments: AAVMF starts, prints to
// the serial console and tries the disks before the CD-ROM on virtio-scsi,
// until the boot times out; nothing is left behind. (Nothing here boots:
// the disks are blank.)
func TestBootAarch64FirmwareTriesDisksThenCDROM(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates an arm64 machine's firmware for a minute: not in the fast lane (go test -short)")
	}
	for _, tool := range []string{"qemu-system-aarch64", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	if _, _, err := ovmf(Config{Arch: ArchAarch64}); err != nil {
		t.Skipf("needs AAVMF: %v", err)
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "blank.raw")
	iso := filepath.Join(dir, "blank.iso")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(iso, make([]byte, 1<<20), 0o444))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err := Boot(context.Background(), Config{Arch: ArchAarch64, Image: image, CDROM: iso, BlankDisks: []int64{64 << 20}, SSHKey: key, Timeout: time.Minute})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "boot test (aarch64, uefi, blank.raw): SSH did not let root in within 1m0s", "QEMU ran until the timeout")
	disk := strings.Index(msg, `"UEFI Misc Device" from`)
	cdrom := strings.Index(msg, `"UEFI QEMU QEMU CD-ROM `)
	assert.True(t, disk >= 0 && cdrom > disk, "the firmware tried the disk, then the CD-ROM:\n%s", msg)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the variable store, the blank disk and the machine's other files are removed")
}
