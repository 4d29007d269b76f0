package worker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/emulation"
	"github.com/kiln-project/kiln/internal/worker"
)

// hostOnly is a host that runs x86_64 natively and nothing else, as
// emulation.Check says of a host without qemu-user.
func hostOnly(arch string) (emulation.Mode, error) {
	switch arch {
	case "x86_64":
		return emulation.Native, nil
	case "riscv64":
		return "", errors.New(`kiln knows no architecture "riscv64" (it knows x86_64 and aarch64)`)
	}
	return "", errors.New(arch + " programs cannot run on this x86_64 host: no binfmt_misc handler; install qemu-user-static and register its handler with the F flag: run `kiln doctor --fix` as root")
}

// A worker refuses to offer an architecture its host cannot build, naming
// each such architecture with what is missing, all at once.
func TestCheckArchesRefusesWhatTheHostCannotBuild(t *testing.T) {
	_, err := worker.CheckArches("arch", []string{"x86_64", "aarch64", "riscv64"}, hostOnly)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2, err.Error())
	assert.True(t, strings.HasPrefix(lines[0], "--arch aarch64: this worker cannot build aarch64 images: "), lines[0])
	assert.Contains(t, lines[0], "kiln doctor --fix")
	assert.True(t, strings.HasPrefix(lines[1], "--arch riscv64: "), lines[1])

	_, err = worker.CheckArches("arch", nil, hostOnly)
	assert.ErrorContains(t, err, "declare at least one architecture")
}

// A worker offers what its host builds, and says how: natively, or
// emulated when qemu-user runs the architecture's programs.
func TestCheckArchesSaysHowEachIsBuilt(t *testing.T) {
	emulating := func(arch string) (emulation.Mode, error) {
		if arch == "aarch64" {
			return emulation.Emulated, nil
		}
		return hostOnly(arch)
	}
	arches := []string{"x86_64", "aarch64", "x86_64"}
	modes, err := worker.CheckArches("arch", arches, emulating)
	require.NoError(t, err)
	assert.Equal(t, map[string]emulation.Mode{"x86_64": emulation.Native, "aarch64": emulation.Emulated}, modes)
	assert.Equal(t, "x86_64 (native), aarch64 (emulated)", worker.DescribeArches(arches, modes))
}
