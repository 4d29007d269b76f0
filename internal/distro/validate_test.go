package distro

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
)

func TestCheckBlueprint(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	tests := []struct {
		name      string
		imageType string
		toml      string
		wantPath  string
		wantMsg   string
	}{
		{"filesystem on tar", "tar", "[[customizations.filesystem]]\nmountpoint = \"/var\"\nminsize = \"1 GiB\"\n", "customizations.filesystem", "not supported by image type tar"},
		{"kernel on tar", "tar", "[customizations.kernel]\nappend = \"quiet\"\n", "customizations.kernel", "not supported by image type tar"},
		{"unknown time zone", "qcow2", "[customizations.timezone]\ntimezone = \"Europe/Berlim\"\n", "customizations.timezone.timezone", `unknown time zone "Europe/Berlim" (did you mean "Europe/Berlin"?)`},
		{"unknown locale", "qcow2", "[customizations.locale]\nlanguages = [\"en_US.UTF-8\", \"xx_YY.UTF-8\"]\n", "customizations.locale.languages[1]", `unknown locale "xx_YY.UTF-8"`},
		{"unknown keyboard", "qcow2", "[customizations.locale]\nkeyboard = \"dee\"\n", "customizations.locale.keyboard", `unknown keyboard layout "dee"`},
		{"unknown firewall service", "qcow2", "[customizations.firewall.services]\nenabled = [\"htp\"]\n", "customizations.firewall.services.enabled[0]", `unknown firewall service "htp" (did you mean "http"?)`},
		{"service port without that protocol", "qcow2", "[customizations.firewall]\nports = [\"ntp:tcp\"]\n", "customizations.firewall.ports[0]", `service "ntp" has no tcp port`},
		{"lvm", "qcow2", "[customizations.disk]\n[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"vg0\"\n[[customizations.disk.partitions.logical_volumes]]\nname = \"root\"\nmountpoint = \"/\"\nfs_type = \"ext4\"\n", "customizations.disk.partitions[0].type", "LVM partitions cannot be built yet"},
		{"other distro", "qcow2", "distro = \"debian-13\"\n", "distro", `the blueprint is for "debian-13" but the build is for "debian-12"`},
		{"other arch", "qcow2", "architecture = \"aarch64\"\n", "architecture", `the blueprint is for "aarch64"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bp, err := blueprint.Parse([]byte("name = \"x\"\n"+tc.toml), blueprint.FormatTOML)
			require.NoError(t, err, "the blueprint itself is valid")
			err = imageType(t, reg, "debian-12", "x86_64", tc.imageType).CheckBlueprint(bp)
			var problems blueprint.Errors
			require.ErrorAs(t, err, &problems)
			var paths []string
			for _, p := range problems {
				paths = append(paths, p.Path)
				if p.Path == tc.wantPath {
					assert.Contains(t, p.Message, tc.wantMsg)
				}
			}
			assert.Contains(t, paths, tc.wantPath)
			_, err = imageType(t, reg, "debian-12", "x86_64", tc.imageType).Manifest(bp, Options{Mirrors: testMirrors})
			require.Error(t, err, "Manifest refuses what CheckBlueprint refuses")
		})
	}
}

func TestCheckBlueprintReportsEverything(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp, err := blueprint.Parse([]byte(strings.Join([]string{
		`name = "x"`,
		`[customizations.timezone]`, `timezone = "Nowhere/Town"`,
		`[customizations.locale]`, `languages = ["zz_ZZ.UTF-8"]`, `keyboard = "qq"`,
	}, "\n")), blueprint.FormatTOML)
	require.NoError(t, err)
	err = imageType(t, reg, "debian-12", "x86_64", "qcow2").CheckBlueprint(bp)
	var problems blueprint.Errors
	require.ErrorAs(t, err, &problems)
	assert.Len(t, problems, 3, "every problem at once")
}

func TestEveryOptionIsKnown(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, d := range reg.Distros() {
		for _, a := range d.Arches() {
			for _, it := range a.ImageTypes() {
				for _, o := range it.SupportedOptions {
					assert.Contains(t, allOptions, o, "%s: supported_options names an unknown option", it.Name)
				}
			}
		}
	}
}
