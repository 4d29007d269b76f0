package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// writeImageWithManifest writes an empty image named as kiln build names
// its artifacts, with a manifest beside it that built it for arch.
func writeImageWithManifest(t *testing.T, arch string) (image, manifestPath string) {
	t.Helper()
	dir := t.TempDir()
	image = filepath.Join(dir, "web-debian-12-"+arch+".qcow2")
	manifestPath = filepath.Join(dir, "web-debian-12-"+arch+".manifest.json")
	require.NoError(t, os.WriteFile(image, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(manifestPath, []byte(`{"version":"1","target":{"distro":"debian-12","arch":"`+arch+`","image_type":"qcow2","name":"web"},`+
		`"sources":{"repositories":[],"debs":[]},"pipelines":[],"output":{"pipeline":"qcow2","filename":"web-debian-12-`+arch+`.qcow2"}}`), 0o644))
	return image, manifestPath
}

func TestBootTestArch(t *testing.T) {
	t.Parallel()
	arm, armManifest := writeImageWithManifest(t, "aarch64")
	bare := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(bare, make([]byte, 4096), 0o644))
	broken := filepath.Join(t.TempDir(), "x-debian-12-aarch64.qcow2")
	brokenManifest := strings.TrimSuffix(broken, ".qcow2") + ".manifest.json"
	require.NoError(t, os.WriteFile(broken, make([]byte, 4096), 0o644))
	require.NoError(t, os.WriteFile(brokenManifest, []byte(`{"version": `), 0o644))

	for _, tc := range []struct {
		name, image, flag string
		want, wantNote    string
		wantErr           string
	}{
		{name: "the manifest decides", image: arm, want: "aarch64"},
		{name: "a flag that agrees", image: arm, flag: "aarch64", want: "aarch64"},
		{name: "a flag that disagrees", image: arm, flag: "x86_64",
			wantErr: "--arch x86_64 disagrees with the manifest beside the image, " + armManifest + ", which built it for aarch64"},
		{name: "no manifest: the host's", image: bare, want: hostArch()},
		{name: "no manifest: the flag", image: bare, flag: "aarch64", want: "aarch64"},
		{name: "a flag kiln does not know", image: bare, flag: "arm64", wantErr: `--arch "arm64": expected x86_64 or aarch64`},
		{name: "an unreadable manifest", image: broken,
			wantErr: "the manifest beside the image, " + brokenManifest + ", cannot be read"},
		{name: "an unreadable manifest and a flag", image: broken, flag: "aarch64", want: "aarch64",
			wantNote: "cannot be read (reading manifest: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arch, note, err := bootTestArch(tc.image, tc.flag)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, arch)
			if tc.wantNote == "" {
				assert.Empty(t, note)
			} else {
				assert.Contains(t, note, tc.wantNote)
			}
		})
	}
}

// An aarch64 image is booted with UEFI alone, whatever the default "both"
// says, and BIOS is refused before anything starts.
func TestBootTestAarch64FirmwareIsUEFI(t *testing.T) {
	arm, _ := writeImageWithManifest(t, "aarch64")
	key := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(key, []byte("key"), 0o600))

	out, err := runBootTest(t, arm, "--ssh-key", key, "--firmware", "bios")
	assert.ErrorContains(t, err, "--firmware bios: aarch64 machines boot with UEFI only")
	assert.NotContains(t, out, "booting", "nothing was booted")

	// Without an emulator on PATH the boot fails at once, after saying
	// which machine it would have been.
	t.Setenv("PATH", t.TempDir())
	out, err = runBootTest(t, arm, "--ssh-key", key)
	assert.ErrorContains(t, err, "failed with 1 of 1 firmware(s)")
	assert.Contains(t, out, "uefi: booting "+arm+" (aarch64) with TCG")
	assert.Contains(t, out, "uefi: FAILED: boot test: qemu-system-aarch64 is not installed (Debian package qemu-system-arm)")
	assert.NotContains(t, out, "bios:")
}
