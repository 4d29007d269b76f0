package engine

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-project/kiln/internal/emulation"
	"github.com/kiln-project/kiln/internal/manifest"
)

// TestHostProblemsNameTheArchitecture: a manifest for an architecture
// this host cannot run is refused before the build, saying what is
// missing; the host's own architecture never is.
func TestHostProblemsNameTheArchitecture(t *testing.T) {
	has := func(m *manifest.Manifest, want string) bool {
		for _, p := range HostProblems(m) {
			if strings.Contains(p, want) {
				return true
			}
		}
		return false
	}
	native := &manifest.Manifest{Target: manifest.Target{Arch: emulation.Host()}}
	assert.False(t, has(native, "architecture"), "the host's own architecture: %v", HostProblems(native))
	unknown := &manifest.Manifest{Target: manifest.Target{Arch: "riscv64"}}
	assert.True(t, has(unknown, `kiln knows no architecture "riscv64"`), "%v", HostProblems(unknown))
	for _, arch := range emulation.Foreign() {
		m := &manifest.Manifest{Target: manifest.Target{Arch: arch}}
		if _, err := emulation.Check(arch); err != nil {
			assert.True(t, has(m, "kiln doctor --fix"), "a foreign architecture this host cannot run names the fix: %v", HostProblems(m))
		} else {
			assert.False(t, has(m, arch+" programs cannot run"), "%v", HostProblems(m))
		}
	}
}
