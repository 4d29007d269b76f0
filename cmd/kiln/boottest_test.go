package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runBootTest(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newBootTestCommand(&app{stdout: &stdout, stderr: &stderr})
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	return stdout.String(), err
}

func TestBootTestRejectsFlags(t *testing.T) {
	t.Parallel()
	_, err := runBootTest(t, "disk.qcow2", "--ssh-key", "k", "--firmware", "coreboot")
	assert.ErrorContains(t, err, `--firmware "coreboot": expected bios, uefi or both`)
	_, err = runBootTest(t, "disk.qcow2")
	assert.ErrorContains(t, err, "--ssh-key is required")
	_, err = runBootTest(t)
	assert.Error(t, err)
}

func TestBootTestReportsFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU and waits out a boot timeout: not in the fast lane (go test -short)")
	}
	t.Parallel()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("needs qemu-system-x86_64: %v", err)
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "blank.raw")
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))
	out, err := runBootTest(t, image, "--ssh-key", key, "--firmware", "bios", "--timeout", "3s")
	assert.ErrorContains(t, err, "failed with 1 of 1 firmware(s)")
	assert.Contains(t, out, "bios: booting "+image)
	assert.Contains(t, out, "bios: FAILED: boot test (bios, blank.raw): SSH did not let root in within 3s")
}
