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
