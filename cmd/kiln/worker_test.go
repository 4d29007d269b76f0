package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/emulation"
)

// kiln worker refuses to start on an architecture its host cannot build,
// naming it, what is missing and the fix; the check is the host's
// emulation check, replaced here so that the test does not depend on the
// host it runs on.
func TestWorkerRefusesAnArchItCannotBuild(t *testing.T) {
	checked := map[string]bool{}
	old := checkArch
	checkArch = func(arch string) (emulation.Mode, error) {
		checked[arch] = true
		if arch == "x86_64" {
			return emulation.Native, nil
		}
		return "", errors.New(arch + " programs cannot run on this x86_64 host: no binfmt_misc handler for " + arch + "; install qemu-user-static and register its handler with the F flag: run `kiln doctor --fix` as root")
	}
	t.Cleanup(func() { checkArch = old })

	_, stderr, err := run(t, "worker", "--server", "http://127.0.0.1:1", "--worker-token", "kwt_x", "--arch", "x86_64,aarch64")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--arch aarch64: this worker cannot build aarch64 images: aarch64 programs cannot run on this x86_64 host")
	assert.Contains(t, err.Error(), "kiln doctor --fix")
	assert.Contains(t, stderr, "--arch aarch64")
	assert.Equal(t, map[string]bool{"x86_64": true, "aarch64": true}, checked, "the comma list declares both")

	clear(checked)
	_, _, err = run(t, "worker", "--server", "http://127.0.0.1:1", "--worker-token", "kwt_x", "--arch", "aarch64", "--arch", "x86_64")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--arch aarch64")
	assert.NotContains(t, err.Error(), "--arch x86_64", "only the architecture it cannot build is named")
	assert.Equal(t, map[string]bool{"x86_64": true, "aarch64": true}, checked, "a repeated --arch declares both")
}

// kiln serve's in-process workers are held to the same check.
func TestServeRefusesAWorkerArchItCannotBuild(t *testing.T) {
	old := checkArch
	checkArch = func(arch string) (emulation.Mode, error) {
		return "", errors.New(arch + " programs cannot run on this x86_64 host; run `kiln doctor --fix` as root")
	}
	t.Cleanup(func() { checkArch = old })
	_, _, err := run(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--worker-arch", "aarch64")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in-process workers: --worker-arch aarch64: this worker cannot build aarch64 images")
}
