package distro

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Every stage type is in the table of generated files or says why it
// writes none a blueprint's file could clash with: a new stage must be
// placed in one of the two.
func TestEveryStageTypeIsCovered(t *testing.T) {
	t.Parallel()
	inRules := map[string]bool{}
	for _, r := range generatedFileRules {
		assert.False(t, inRules[r.stage], "%s has two rules", r.stage)
		inRules[r.stage] = true
	}
	for _, name := range manifest.StageTypes() {
		_, exempt := stagesWritingNoGeneratedFile[name]
		assert.True(t, inRules[name] || exempt, "stage type %s: add the files it writes to generatedFileRules, or say in stagesWritingNoGeneratedFile why it writes none", name)
		assert.False(t, inRules[name] && exempt, "stage type %s is both in generatedFileRules and exempt", name)
	}
	for name := range stagesWritingNoGeneratedFile {
		assert.True(t, slices.Contains(manifest.StageTypes(), name), "%s is no stage type", name)
	}
}

func TestFilesConflictingWithCustomizations(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	tests := []struct {
		name, imageType, toml, file, wantFrom string
	}{
		{"hostname", "qcow2", "[customizations]\nhostname = \"web01\"\n", "/etc/hostname", "customizations.hostname"},
		{"timezone", "qcow2", "[customizations.timezone]\ntimezone = \"Europe/Berlin\"\n", "/etc/timezone", "customizations.timezone.timezone"},
		{"localtime", "qcow2", "[customizations.timezone]\ntimezone = \"Europe/Berlin\"\n", "/etc/localtime", "customizations.timezone.timezone"},
		{"ntp", "qcow2", "[customizations.timezone]\nntpservers = [\"ntp.example.org\"]\n", "/etc/systemd/timesyncd.conf.d/kiln.conf", "customizations.timezone.ntpservers"},
		{"locale", "qcow2", "[customizations.locale]\nlanguages = [\"en_US.UTF-8\"]\n", "/etc/default/locale", "customizations.locale.languages"},
		{"keyboard", "qcow2", "[customizations.locale]\nkeyboard = \"us\"\n", "/etc/default/keyboard", "customizations.locale.keyboard"},
		{"vconsole", "qcow2", "[customizations.locale]\nkeyboard = \"us\"\n", "/etc/vconsole.conf", "customizations.locale.keyboard"},
		{"fstab of the default layout", "qcow2", "", "/etc/fstab", "the partition table of image type qcow2"},
		{"fstab of filesystem", "qcow2", "[[customizations.filesystem]]\nmountpoint = \"/var\"\nminsize = \"1 GiB\"\n", "/etc/fstab", "customizations.filesystem"},
		{"sshd drop-in", "qcow2", "[customizations.sshd]\npassword_authentication = false\n", "/etc/ssh/sshd_config.d/10-kiln.conf", "customizations.sshd"},
		{"firstboot script", "qcow2", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\ncontents = \"true\"\n", "/usr/local/libexec/kiln-firstboot/01-script-1", "customizations.firstboot"},
		{"firstboot unit", "qcow2", "[[customizations.firstboot.scripts]]\ntype = \"custom\"\nname = \"a\"\ncontents = \"true\"\n", "/etc/systemd/system/kiln-firstboot-a.service", "customizations.firstboot"},
		{"firewall", "qcow2", "[customizations.firewall]\nports = [\"8080:tcp\"]\n", "/etc/nftables.conf", "customizations.firewall"},
		{"distribution's apt source", "qcow2", "", "/etc/apt/sources.list.d/debian.sources", "repository debian"},
		{"custom apt source", "qcow2", "[[customizations.repositories]]\nid = \"extra\"\nbaseurls = [\"http://repo.example/debian\"]\nsuite = \"bookworm\"\ncomponents = [\"main\"]\ngpgcheck = false\n", "/etc/apt/sources.list.d/extra.sources", "customizations.repositories[0]"},
		{"custom apt source by filename", "qcow2", "[[customizations.repositories]]\nid = \"extra\"\nfilename = \"vendor.repo\"\npriority = 700\nbaseurls = [\"http://repo.example/debian\"]\nsuite = \"bookworm\"\ncomponents = [\"main\"]\ngpgcheck = false\n", "/etc/apt/sources.list.d/vendor.sources", "customizations.repositories[0]"},
		{"custom apt pin", "qcow2", "[[customizations.repositories]]\nid = \"extra\"\npriority = 700\nbaseurls = [\"http://repo.example/debian\"]\nsuite = \"bookworm\"\ncomponents = [\"main\"]\ngpgcheck = false\n", "/etc/apt/preferences.d/extra.pref", "customizations.repositories[0].priority"},
		{"passwd", "qcow2", "[[customizations.user]]\nname = \"admin\"\n", "/etc/passwd", "customizations.user"},
		{"authorized keys", "qcow2", "[[customizations.user]]\nname = \"admin\"\nkey = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@example\"\n", "/home/admin/.ssh/authorized_keys", "customizations.user[0].key"},
		{"group", "qcow2", "[[customizations.group]]\nname = \"web\"\n", "/etc/group", "customizations.group"},
		{"masked unit", "qcow2", "[customizations.services]\nmasked = [\"cups\"]\n", "/etc/systemd/system/cups.service", "customizations.services.masked[0]"},
		{"ca certificate", "qcow2", "", "/usr/local/share/ca-certificates/kiln-0.crt", "customizations.cacerts"},
		{"cleanup", "tar", "", "/etc/machine-id", "final cleanup"},
		{"host keys", "tar", "", "/etc/ssh/ssh_host_ed25519_key", "final cleanup"},
		{"network", "qcow2", "", "/etc/systemd/network/80-kiln-dhcp.network", "network configuration of image type qcow2"},
		{"grub", "qcow2", "", "/boot/grub/grub.cfg", "boot loader of image type qcow2"},
		{"image type file", "ami", "", "/etc/cloud/cloud.cfg.d/90_kiln_datasource.cfg", "configuration of image type ami"},
		{"initramfs drivers", "qcow2", "", "/etc/initramfs-tools/conf.d/kiln-drivers.conf", "initramfs drivers"},
		{"initramfs hook", "vhd", "", "/etc/initramfs-tools/hooks/kiln-drivers", "initramfs drivers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bp, err := blueprint.Parse([]byte("name = \"x\"\n"+tc.toml), blueprint.FormatTOML)
			require.NoError(t, err, "the blueprint itself is valid")
			// Added here rather than parsed: the blueprint layer refuses
			// some of these paths for every image (/etc/fstab, /boot).
			if bp.Customizations == nil {
				bp.Customizations = &blueprint.Customizations{}
			}
			if tc.wantFrom == "customizations.cacerts" {
				// Set in Go: the blueprint layer would parse a real
				// certificate, which this test does not need.
				bp.Customizations.CACerts = &blueprint.CACustomization{PEMCerts: []string{"-----BEGIN CERTIFICATE-----"}}
			}
			bp.Customizations.Files = append(bp.Customizations.Files, blueprint.FileCustomization{Path: tc.file, Data: "x"})
			it := imageType(t, reg, "debian-12", "x86_64", tc.imageType)
			err = it.CheckBlueprint(bp)
			var problems blueprint.Errors
			require.ErrorAs(t, err, &problems)
			i := slices.IndexFunc(problems, func(p blueprint.Problem) bool { return p.Path == "customizations.files[0].path" })
			require.GreaterOrEqual(t, i, 0, "a problem at the file: %v", problems)
			assert.Contains(t, problems[i].Message, tc.file)
			assert.Contains(t, problems[i].Message, tc.wantFrom, "the message names the other side")
			assert.Contains(t, problems[i].Message, "remove", "the message says how to fix it")
			_, err = it.Manifest(bp, Options{Mirrors: testMirrors})
			require.Error(t, err, "Manifest refuses what CheckBlueprint refuses")
		})
	}
}

// A file at a path some customization would write is fine when the
// blueprint does not use that customization: it is then the only source.
func TestFilesWithoutTheCustomizationAreKept(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, p := range []string{"/etc/hostname", "/etc/timezone", "/etc/default/locale", "/etc/default/keyboard", "/etc/nftables.conf", "/etc/ssh/sshd_config.d/10-kiln.conf", "/etc/hosts", "/etc/apt/sources.list"} {
		doc := "name = \"x\"\n[[customizations.files]]\npath = \"" + p + "\"\ndata = \"x\"\n"
		bp, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
		require.NoError(t, err)
		assert.NoError(t, imageType(t, reg, "debian-12", "x86_64", "qcow2").CheckBlueprint(bp), p)
	}
	// A tar has no partition table, so no generated fstab. (The
	// blueprint layer refuses /etc/fstab anyway; this is the distro's
	// own view.)
	bp := &blueprint.Blueprint{Name: "x", Customizations: &blueprint.Customizations{Files: []blueprint.FileCustomization{{Path: "/etc/fstab", Data: "x"}}}}
	assert.Empty(t, imageType(t, reg, "debian-12", "x86_64", "tar").conflicts(bp))
	assert.NotEmpty(t, imageType(t, reg, "debian-12", "x86_64", "qcow2").conflicts(bp))
	// raw is for real hardware: its initramfs is initramfs-tools' own.
	bp = &blueprint.Blueprint{Name: "x", Customizations: &blueprint.Customizations{Files: []blueprint.FileCustomization{{Path: "/etc/initramfs-tools/conf.d/kiln-drivers.conf", Data: "x"}}}}
	assert.Empty(t, imageType(t, reg, "debian-12", "x86_64", "raw").conflicts(bp))
}

func TestFirewallNeedsNftables(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	doc := `name = "x"
[customizations.firewall]
ports = ["22:tcp"]
[customizations.services]
disabled = ["nftables.service"]
masked = ["cups", "nftables"]
`
	bp, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
	require.NoError(t, err)
	err = imageType(t, reg, "debian-12", "x86_64", "qcow2").CheckBlueprint(bp)
	var problems blueprint.Errors
	require.ErrorAs(t, err, &problems)
	assert.Contains(t, problems, blueprint.Problem{Path: "customizations.services.masked[1]", Message: "masks nftables, which customizations.firewall needs to start; remove one of them"})
	assert.Contains(t, problems, blueprint.Problem{Path: "customizations.services.disabled[0]", Message: "disables nftables, which customizations.firewall needs to start; remove one of them"})
	assert.Len(t, problems, 2, "cups is no conflict: %v", problems)

	// Without the firewall, masking nftables is the user's choice.
	bp, err = blueprint.Parse([]byte("name = \"x\"\n[customizations.services]\nmasked = [\"nftables\"]\n"), blueprint.FormatTOML)
	require.NoError(t, err)
	assert.NoError(t, imageType(t, reg, "debian-12", "x86_64", "qcow2").CheckBlueprint(bp))
}
