package distro

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/manifest"
)

// The check stage comes right after the packages and lists what the
// blueprint names with its fields, leaving out what the blueprint itself
// provides: a unit file it ships, a group it creates, a user's own group.
func TestInstallChecksFollowThePackages(t *testing.T) {
	t.Parallel()
	reg, err := Load()
	require.NoError(t, err)
	bp, err := blueprint.Parse([]byte(`name = "checks"
[[customizations.user]]
name = "ann"
groups = ["sudo", "web", "ann", "video"]
shell = "/usr/bin/zsh"
[[customizations.user]]
name = "bob"
[[customizations.group]]
name = "web"
[customizations.services]
enabled = ["cockpit.socket", "mine"]
masked = ["getty@tty1"]
[[customizations.files]]
path = "/etc/systemd/system/mine.service"
data = "[Service]\nExecStart=/bin/true\n"
`), blueprint.FormatTOML)
	require.NoError(t, err)
	it := imageType(t, reg, "debian-12", "x86_64", "tar")
	p, err := it.Manifest(bp, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	res, err := depsolve.Fake{}.Resolve(t.Context(), p.Request)
	require.NoError(t, err)
	m, err := p.Finish(res)
	require.NoError(t, err)
	stages := m.Pipelines[0].Stages
	require.Greater(t, len(stages), 1)
	assert.Equal(t, manifest.DebsInstall{}.StageType(), stages[0].Type)
	require.Equal(t, manifest.CheckInstall{}.StageType(), stages[1].Type, "the check runs right after the packages")
	assert.Equal(t, &manifest.CheckInstall{
		Units: []manifest.CheckUnit{
			{Unit: "cockpit.socket", Field: "customizations.services.enabled[0]"},
			{Unit: "getty@tty1", Field: "customizations.services.masked[0]"},
		},
		Groups: []manifest.CheckGroup{
			{Group: "sudo", Field: "customizations.user[0].groups[0]"},
			{Group: "video", Field: "customizations.user[0].groups[3]"},
		},
		Shells: []manifest.CheckShell{{Shell: "/usr/bin/zsh", Field: "customizations.user[0].shell"}},
	}, stages[1].Options)

	// Nothing to check, no stage.
	plain, err := it.Manifest(&blueprint.Blueprint{Name: "plain"}, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	res, err = depsolve.Fake{}.Resolve(t.Context(), plain.Request)
	require.NoError(t, err)
	m, err = plain.Finish(res)
	require.NoError(t, err)
	for _, s := range m.Pipelines[0].Stages {
		assert.NotEqual(t, manifest.CheckInstall{}.StageType(), s.Type)
	}
}
