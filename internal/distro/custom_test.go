package distro

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/manifest"
)

// First-boot scripts and sshd options need a booting system: the
// bootable image types take them, the others refuse them by name.
func TestFirstbootAndSSHDSupport(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	doc := "name = \"x\"\n[customizations.sshd]\npermit_root_login = false\n[[customizations.firstboot.scripts]]\ntype = \"custom\"\ncontents = \"true\"\n"
	bp, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
	require.NoError(t, err)
	for _, name := range []string{"qcow2", "raw", "ami", "vmdk", "live-iso"} {
		assert.NoError(t, imageType(t, reg, "debian-12", "x86_64", name).CheckBlueprint(bp), name)
	}
	for _, name := range []string{"tar", "container", "wsl"} {
		err := imageType(t, reg, "debian-12", "x86_64", name).CheckBlueprint(bp)
		var problems blueprint.Errors
		require.ErrorAs(t, err, &problems, name)
		var paths []string
		for _, p := range problems {
			paths = append(paths, p.Path)
			assert.Contains(t, p.Message, "not supported by image type "+name)
		}
		assert.ElementsMatch(t, []string{"customizations.firstboot", "customizations.sshd"}, paths, name)
	}
}

func TestFirstbootAndSSHDInTheManifest(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	doc := `name = "x"
[customizations.sshd]
password_authentication = false
permit_root_login = true
[[customizations.firstboot.scripts]]
type = "custom"
name = "one"
after = ["postgresql"]
contents = "true"
[[customizations.firstboot.scripts]]
type = "custom"
ignore_failure = true
contents = "false"
`
	bp, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
	require.NoError(t, err)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	plan, err := it.Manifest(bp, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	// The options always have a server to apply to (the image types'
	// own sets have it too; customizations.sshd does not depend on that).
	assert.True(t, slices.ContainsFunc(plan.Request.Packages, func(p depsolve.PackageSpec) bool { return p.Name == "openssh-server" }))
	_, m := makeManifest(t, it, bp, Options{})
	var sshd *manifest.SSHD
	var fb *manifest.Firstboot
	var order []string
	for _, s := range m.Pipelines[0].Stages {
		order = append(order, s.Type)
		switch o := s.Options.(type) {
		case *manifest.SSHD:
			sshd = o
		case *manifest.Firstboot:
			fb = o
		}
	}
	require.NotNil(t, sshd)
	require.NotNil(t, sshd.PasswordAuthentication)
	assert.False(t, *sshd.PasswordAuthentication)
	assert.Equal(t, "yes", sshd.PermitRootLogin)
	assert.Nil(t, sshd.ClientAliveInterval, "only what the blueprint sets")
	require.NotNil(t, fb)
	assert.Equal(t, []manifest.FirstbootScript{
		{Name: "one", Contents: "true", After: []string{"postgresql.service"}},
		{Name: "script-2", Contents: "false", IgnoreFailure: true},
	}, fb.Scripts)
	// Both come before the blueprint's files and the cleanup.
	assert.Less(t, slices.Index(order, "kiln.sshd"), slices.Index(order, "kiln.cleanup"))
	assert.Less(t, slices.Index(order, "kiln.firstboot"), slices.Index(order, "kiln.cleanup"))
}
