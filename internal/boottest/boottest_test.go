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
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			_, err := Boot(context.Background(), tc.cfg)
			assert.ErrorContains(t, err, tc.want)
		})
	}
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
