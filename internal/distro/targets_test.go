package distro

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/manifest"
)

func tomlBlueprint(t *testing.T, text string) *blueprint.Blueprint {
	t.Helper()
	bp, err := blueprint.Parse([]byte("name = \"x\"\n"+text), blueprint.FormatTOML)
	require.NoError(t, err, "the blueprint itself is valid")
	return bp
}

// checkProblems returns CheckBlueprint's problems by field path.
func checkProblems(t *testing.T, it *ImageType, bp *blueprint.Blueprint) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := it.CheckBlueprint(bp)
	if err == nil {
		return out
	}
	var problems blueprint.Errors
	require.ErrorAs(t, err, &problems)
	for _, p := range problems {
		out[p.Path] = p.Message
	}
	return out
}

// Service names beyond firewalld's come from /etc/services, and the
// manifest carries their ports.
func TestFirewallServicesFromEtcServices(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	for _, d := range []string{"debian-12", "debian-13"} {
		it := imageType(t, reg, d, "x86_64", "qcow2")
		bp := tomlBlueprint(t, "[customizations.firewall]\nports = [\"domain:udp\"]\n[customizations.firewall.services]\nenabled = [\"ftp\", \"http\"]\ndisabled = [\"telnet\"]\n")
		assert.Empty(t, checkProblems(t, it, bp), d)
		_, m := makeManifest(t, it, bp, Options{})
		fw := stageOf[*manifest.Firewall](t, m, "os")
		assert.Equal(t, []manifest.FirewallPort{
			{From: 53, To: 53, Protocol: "udp"}, // domain:udp
			{From: 22, To: 22, Protocol: "tcp"}, // ssh, not disabled
			{From: 21, To: 21, Protocol: "tcp"}, // ftp
			{From: 80, To: 80, Protocol: "tcp"}, // http
		}, fw.Ports, d)
		assert.Empty(t, fw.EnabledServices)
		assert.Empty(t, fw.DisabledServices)
		assert.Equal(t, []manifest.FirewallPort{{From: 23, To: 23, Protocol: "tcp"}}, fw.Closed, "%s: disabled telnet is closed explicitly", d)
	}

	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	bp := tomlBlueprint(t, "[customizations.firewall.services]\nenabled = [\"telnet\"]\ndisabled = [\"ssh\"]\n")
	_, m := makeManifest(t, it, bp, Options{})
	fw := stageOf[*manifest.Firewall](t, m, "os")
	assert.Equal(t, []manifest.FirewallPort{{From: 23, To: 23, Protocol: "tcp"}}, fw.Ports, "ssh disabled: telnet only")
	assert.Equal(t, []string{"ssh"}, fw.DisabledServices, "the stage must not open ssh either")
	assert.Equal(t, []manifest.FirewallPort{{From: 22, To: 22, Protocol: "tcp"}}, fw.Closed)

	// A blueprint cannot both disable a service and open its ports.
	problems := checkProblems(t, it, tomlBlueprint(t, "[customizations.firewall]\nports = [\"8080:tcp\", \"20-25:tcp\"]\n[customizations.firewall.services]\nenabled = [\"dns\"]\ndisabled = [\"telnet\", \"domain\", \"http\"]\n"))
	assert.Equal(t, map[string]string{
		"customizations.firewall.services.disabled[0]": `disables "telnet" (23/tcp), which customizations.firewall.ports[1] opens (20-25/tcp); remove one of them`,
		"customizations.firewall.services.disabled[1]": `disables "domain" (53/tcp), which customizations.firewall.services.enabled[0] opens (53/tcp); remove one of them`,
	}, problems, "http is disabled and nothing opens it")

	problems = checkProblems(t, it, tomlBlueprint(t, "[customizations.firewall]\nports = [\"telnet:udp\", \"nosuch:tcp\"]\n[customizations.firewall.services]\nenabled = [\"htp\", \"telnt\"]\n"))
	assert.Contains(t, problems["customizations.firewall.services.enabled[0]"], `unknown firewall service "htp" (did you mean "http"?)`)
	assert.Contains(t, problems["customizations.firewall.services.enabled[1]"], `unknown firewall service "telnt" (did you mean "telnet"?)`)
	assert.Contains(t, problems["customizations.firewall.ports[0]"], `service "telnet" has no udp port`)
	assert.Contains(t, problems["customizations.firewall.ports[1]"], `neither a port number nor a known service name`)
	assert.Len(t, problems, 4, "every problem at once")
}

// Console keymaps, as osbuild's examples write them, become XKB through
// systemd's kbd-model-map; XKB names stay as they are.
func TestKeyboardConsoleKeymaps(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	for _, tc := range []struct {
		name string
		want manifest.Keyboard
	}{
		{"de-latin1", manifest.Keyboard{Layout: "de", Model: "pc105", Options: "terminate:ctrl_alt_bksp", Keymap: "de-latin1"}},
		{"dvorak", manifest.Keyboard{Layout: "us", Variant: "dvorak", Model: "pc105", Options: "terminate:ctrl_alt_bksp", Keymap: "dvorak"}},
		{"uk", manifest.Keyboard{Layout: "gb", Model: "pc105", Options: "terminate:ctrl_alt_bksp", Keymap: "uk"}},
		{"de-latin1-nodeadkeys", manifest.Keyboard{Layout: "de", Variant: "nodeadkeys", Model: "pc105", Options: "terminate:ctrl_alt_bksp", Keymap: "de-latin1-nodeadkeys"}},
		// XKB names win where both know one, as before.
		{"us", manifest.Keyboard{Layout: "us"}},
		{"fr", manifest.Keyboard{Layout: "fr"}},
		{"de-nodeadkeys", manifest.Keyboard{Layout: "de", Variant: "nodeadkeys"}},
	} {
		bp := tomlBlueprint(t, "[customizations.locale]\nkeyboard = \""+tc.name+"\"\n")
		assert.Empty(t, checkProblems(t, it, bp), tc.name)
		_, m := makeManifest(t, it, bp, Options{})
		assert.Equal(t, tc.want, *stageOf[*manifest.Keyboard](t, m, "os"), tc.name)
	}
	problems := checkProblems(t, it, tomlBlueprint(t, "[customizations.locale]\nkeyboard = \"de-latin2\"\n"))
	assert.Contains(t, problems["customizations.locale.keyboard"], `unknown keyboard layout "de-latin2" (did you mean "de-latin1"?)`)
}

// US/Eastern, in osbuild's documentation, is in debian-13's tzdata-legacy:
// the image gets that package there, and not on debian-12.
func TestLegacyTimezones(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	request := func(d, zone string) depsolve.Request {
		t.Helper()
		it := imageType(t, reg, d, "x86_64", "qcow2")
		bp := tomlBlueprint(t, "[customizations.timezone]\ntimezone = \""+zone+"\"\n")
		assert.Empty(t, checkProblems(t, it, bp), "%s on %s", zone, d)
		plan, err := it.Manifest(bp, Options{Mirrors: testMirrors})
		require.NoError(t, err)
		_, m := makeManifest(t, it, bp, Options{})
		assert.Equal(t, zone, stageOf[*manifest.Timezone](t, m, "os").Zone)
		return plan.Request
	}
	names := func(r depsolve.Request) []string {
		var out []string
		for _, p := range r.Packages {
			out = append(out, p.Name)
		}
		return out
	}
	assert.Contains(t, names(request("debian-13", "US/Eastern")), "tzdata-legacy")
	assert.NotContains(t, names(request("debian-13", "America/New_York")), "tzdata-legacy")
	assert.NotContains(t, names(request("debian-12", "US/Eastern")), "tzdata-legacy", "debian-12's tzdata has the old names")
}

// Debian has no wheel group: a user in it is refused with Debian's
// equivalent, unless the blueprint makes the group.
func TestGroupsDebianLacks(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	problems := checkProblems(t, it, tomlBlueprint(t, "[[customizations.user]]\nname = \"admin\"\ngroups = [\"users\", \"wheel\"]\n[[customizations.user]]\nname = \"svc\"\ngroups = [\"nobody\", \"adm\"]\n"))
	assert.Contains(t, problems["customizations.user[0].groups[1]"], `"wheel" does not exist on Debian; use "sudo" (members may run sudo)`)
	assert.Contains(t, problems["customizations.user[1].groups[0]"], `"nobody" does not exist on Debian; use "nogroup"`)
	assert.Len(t, problems, 2, "adm and users exist on Debian")

	assert.Empty(t, checkProblems(t, it, tomlBlueprint(t, "[[customizations.group]]\nname = \"wheel\"\n[[customizations.user]]\nname = \"admin\"\ngroups = [\"wheel\"]\n")), "a blueprint may make the group")
}
