package apimodel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
)

// A blueprint sent through the API comes out as the same blueprint.
func TestCustomizationsRoundTrip(t *testing.T) {
	bp, err := blueprint.Parse([]byte(`
name = "web"
[[packages]]
name = "nginx"
[customizations]
hostname = "web01"
[[customizations.user]]
name = "ops"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
groups = ["sudo"]
[[customizations.sshkey]]
user = "root"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
[[customizations.filesystem]]
mountpoint = "/var/log"
minsize = "1 GiB"
[customizations.timezone]
timezone = "Europe/Berlin"
`), blueprint.FormatTOML)
	require.NoError(t, err)
	cust, err := CustomizationsFromBlueprint(bp)
	require.NoError(t, err)
	assert.Equal(t, []any{"nginx"}, cust["packages"])
	users := cust["users"].([]any)
	require.Len(t, users, 2)
	assert.Equal(t, "root", users[1].(map[string]any)["name"])
	assert.Contains(t, users[0].(map[string]any), "ssh_key")
	assert.Contains(t, cust["filesystem"].([]any)[0].(map[string]any), "min_size")

	back, err := BlueprintFromCustomizations("web", cust)
	require.NoError(t, err)
	assert.Equal(t, bp.Customizations.Hostname, back.Customizations.Hostname)
	assert.Equal(t, bp.Customizations.Filesystem, back.Customizations.Filesystem)
	assert.Equal(t, bp.Customizations.User[0].Key, back.Customizations.User[0].Key)

	shell, err := blueprint.Parse([]byte("name = \"x\"\n[[customizations.user]]\nname = \"ops\"\nshell = \"/bin/zsh\"\n"), blueprint.FormatTOML)
	require.NoError(t, err)
	_, err = CustomizationsFromBlueprint(shell)
	assert.ErrorContains(t, err, "customizations.user[0].shell")
}

// fullCustomizations sets every field of the table, with values the
// blueprint validator takes.
func fullCustomizations() map[string]any {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
	return map[string]any{
		"packages": []any{"nginx", "curl"},
		"users": []any{map[string]any{"name": "ops", "groups": []any{"sudo"}, "ssh_key": key,
			"password": "correct horse battery staple", "hasPassword": true}},
		"groups":     []any{map[string]any{"name": "web", "gid": 1500}},
		"filesystem": []any{map[string]any{"mountpoint": "/var/log", "min_size": "1 GiB"}},
		"services":   map[string]any{"enabled": []any{"nginx.service"}, "disabled": []any{"apt-daily.timer"}, "masked": []any{"getty@tty2.service"}},
		"hostname":   "web01",
		"kernel":     map[string]any{"name": "linux-image-amd64", "append": "quiet"},
		"timezone":   map[string]any{"timezone": "Europe/Berlin", "ntpservers": []any{"ntp.example.com"}},
		"locale":     map[string]any{"languages": []any{"en_US.UTF-8"}, "keyboard": "us"},
		"firewall":   map[string]any{"ports": []any{"8080:tcp"}, "services": map[string]any{"enabled": []any{"http"}, "disabled": []any{"ssh"}}},
		"files": []any{map[string]any{"path": "/etc/motd", "mode": "0644", "user": "root", "group": "root", "data": "hello\n",
			"ensure_parents": true}},
		"directories": []any{map[string]any{"path": "/srv/www", "mode": "0755", "user": "root", "group": "root", "ensure_parents": true}},
		"custom_repositories": []any{map[string]any{"id": "extra", "name": "Extra", "baseurl": []any{"https://repo.example.com/debian"},
			"gpgkey": []any{"https://repo.example.com/key.asc"}, "check_gpg": true, "enabled": true,
			"priority": 700, "filename": "extra", "suite": "bookworm", "components": []any{"main", "contrib"}, "install_from": true}},
		"cacerts": map[string]any{"pem_certs": []any{testCACert}},
		"firstboot": map[string]any{"scripts": []any{map[string]any{"type": "custom", "name": "setup", "ignore_failure": true,
			"after": []any{"network-online.target"}, "before": []any{"nginx.service"}, "contents": "#!/bin/sh\necho hello\n"}}},
		"disk": map[string]any{"type": "gpt", "minsize": "12 GiB", "partitions": []any{
			map[string]any{"mountpoint": "/", "minsize": "3 GiB", "fs_type": "ext4", "label": "root"},
			map[string]any{"type": "lvm", "name": "data", "minsize": "4 GiB", "logical_volumes": []any{
				map[string]any{"name": "srv", "mountpoint": "/srv", "minsize": "2 GiB", "fs_type": "xfs"}}},
		}},
	}
}

// testCACert is a self-signed CA certificate.
const testCACert = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUER5fsDMtNSYXPCweEuMiFtDnmRkwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTRXhhbXBsZSBJbnRlcm5hbCBDQTAgFw0yNjExMjUxOTQ1NDda
GA8yMTI2MTEwMTE5NDU0N1owHjEcMBoGA1UEAwwTRXhhbXBsZSBJbnRlcm5hbCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKAeQzVP1UbffquVXcfprQNz5G2h
LJg+zF1XG4syZuQRTUwWsbux6CqZYfaOd3TnJUDgOxYXh+F6GoAiJeBvFQyjUzBR
MB0GA1UdDgQWBBS+Y70mGUaCJ1bS9gTLH9crHD2TdjAfBgNVHSMEGDAWgBS+Y70m
GUaCJ1bS9gTLH9crHD2TdjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQC1QygIxk6IBfFH1TrQqRGGLd4PGjYTSoQrm7wYbUs+yQIgS43JGnfUtx/L
AuBmbwOOYFkracywoEOAptGZJeMLRH8=
-----END CERTIFICATE-----`

// missingFields lists the fields of the table (with a blueprint field)
// that cust does not set, as API paths.
func missingFields(prefix string, fields []Field, cust any) []string {
	var out []string
	for _, f := range fields {
		if f.Blueprint == "" {
			continue
		}
		var v any
		if m, ok := cust.(map[string]any); ok {
			v = m[f.API]
		}
		if v == nil {
			out = append(out, prefix+f.API)
			continue
		}
		switch f.Kind {
		case Object:
			out = append(out, missingFields(prefix+f.API+".", f.Items, v)...)
		case ObjectList:
			items, _ := v.([]any)
			if len(items) == 0 {
				out = append(out, prefix+f.API+"[0]")
				continue
			}
			out = append(out, missingFields(prefix+f.API+"[0].", f.Items, items[0])...)
		}
	}
	return out
}

// Every field of the table goes from the API to the blueprint and back,
// and the fields only the API has are dropped on the way.
func TestEveryFieldRoundTrips(t *testing.T) {
	in := fullCustomizations()
	require.Empty(t, missingFields("", Customizations, in), "the sample sets every field of the table")
	want := fullCustomizations()
	delete(want["users"].([]any)[0].(map[string]any), "hasPassword")
	delete(want["files"].([]any)[0].(map[string]any), "ensure_parents")

	for _, f := range Customizations {
		b := toBlueprint(&f, in[f.API])
		var problems []string
		back := fromBlueprint(&f, f.Blueprint, b, &problems)
		assert.Empty(t, problems, f.API)
		assert.Equal(t, want[f.API], back, f.API)
	}
	// Renamed on the way.
	bp := toBlueprint(byAPI(Customizations, "custom_repositories"), in["custom_repositories"]).([]any)[0].(map[string]any)
	assert.Equal(t, []any{"https://repo.example.com/debian"}, bp["baseurls"])
	assert.Equal(t, true, bp["gpgcheck"])
	user := toBlueprint(byAPI(Customizations, "users"), in["users"]).([]any)[0].(map[string]any)
	assert.Equal(t, in["users"].([]any)[0].(map[string]any)["ssh_key"], user["key"])
	assert.NotContains(t, user, "hasPassword")
}

// Through the blueprint parser too, a blueprint made from customizations
// gives customizations that make the same blueprint, custom repositories
// with their suite and components included.
func TestBlueprintRoundTrips(t *testing.T) {
	in := fullCustomizations()
	// A disk layout and filesystem sizes exclude each other: the disk
	// goes on its own below.
	disk := in["disk"]
	delete(in, "disk")
	bp, err := BlueprintFromCustomizations("web", in)
	require.NoError(t, err)
	require.NotNil(t, bp.Customizations.User[0].Password)
	require.Len(t, bp.Customizations.Repositories, 1)
	repo := bp.Customizations.Repositories[0]
	assert.Equal(t, "bookworm", repo.Suite)
	assert.Equal(t, []string{"main", "contrib"}, repo.Components)
	assert.Equal(t, "extra", repo.Filename)
	require.NotNil(t, repo.Priority)
	assert.Equal(t, 700, *repo.Priority)
	assert.True(t, repo.InstallFrom)
	out, err := CustomizationsFromBlueprint(bp)
	require.NoError(t, err)
	assert.Equal(t, []string{"disk"}, missingFields("", Customizations, out))
	again, err := BlueprintFromCustomizations("web", out)
	require.NoError(t, err)
	assert.Equal(t, bp, again)

	bp, err = BlueprintFromCustomizations("web", map[string]any{"disk": disk})
	require.NoError(t, err)
	require.NotNil(t, bp.Customizations.Disk)
	require.Len(t, bp.Customizations.Disk.Partitions, 2)
	assert.Equal(t, "lvm", bp.Customizations.Disk.Partitions[1].Type)
	out, err = CustomizationsFromBlueprint(bp)
	require.NoError(t, err)
	again, err = BlueprintFromCustomizations("web", out)
	require.NoError(t, err)
	assert.Equal(t, bp, again)
}

// A request's field that the table does not know reaches the blueprint
// parser under its own name, which refuses it there.
func TestUnknownFieldsReachTheParser(t *testing.T) {
	_, err := BlueprintFromCustomizations("web", map[string]any{"sshd": true})
	require.Error(t, err)
	var errs blueprint.Errors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, "customizations.sshd", errs[0].Path)

	_, err = BlueprintFromCustomizations("web", map[string]any{"users": []any{map[string]any{"name": "ops", "ssh_key": "not a key"}}})
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, "customizations.users[0].ssh_key", RequestPath(errs[0].Path))
}

// What the API cannot carry is named by its path in the blueprint, all
// of it at once.
func TestUnsupportedFieldsAreNamed(t *testing.T) {
	bp, err := blueprint.Parse([]byte(`
name = "x"
[[packages]]
name = "nginx"
version = "1.22.1-1"
[[modules]]
name = "mm"
[[customizations.user]]
name = "ops"
home = "/srv/ops"
[customizations.cacerts]
pem_certs = []
`), blueprint.FormatTOML)
	require.NoError(t, err)
	_, err = CustomizationsFromBlueprint(bp)
	var ue *UnsupportedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, []string{"customizations.user[0].home", "modules", "packages[0].version"}, ue.Fields)
}
