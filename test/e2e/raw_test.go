package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/testhost"
)

const rawBlueprint = `
name = "plain"
[customizations]
hostname = "kiln-raw"
[[customizations.sshkey]]
user = "root"
key = "KEY"
`

// TestRawImage builds the raw type (Debian's generic kernel, where the
// qcow2 has the cloud kernel), checks its partition table and boots it
// with SeaBIOS and with OVMF.
func TestRawImage(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	dir := t.TempDir()
	key, pub := newSSHKey(t)
	m := plan(t, strings.ReplaceAll(rawBlueprint, "KEY", pub), "raw")
	image := build(t, m, sharedCache(t), filepath.Join(dir, "out"), nil)
	assert.True(t, strings.HasSuffix(image, ".raw"), image)

	assert.Contains(t, run(t, "qemu-img", "info", "--output=json", image), `"format": "raw"`)
	var dump struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Name string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	require.NoError(t, json.Unmarshal([]byte(run(t, "sfdisk", "--json", image)), &dump))
	assert.Equal(t, "gpt", dump.PartitionTable.Label)
	var names []string
	for _, p := range dump.PartitionTable.Partitions {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"bios-boot", "esp", "root"}, names)
	rootUUID := rootFilesystemUUID(t, m)

	for _, firmware := range []string{"bios", "uefi"} {
		t.Run(firmware, func(t *testing.T) {
			sh := bootGuest(t, image, firmware, key).sh
			assert.Equal(t, "kiln-raw", sh("hostname"))
			assert.Equal(t, rootUUID, sh("findmnt", "-n", "-o", "UUID", "/"))
			kernel := sh("uname", "-r")
			assert.NotContains(t, kernel, "cloud", "the raw image has the generic kernel")
			assert.Equal(t, "install ok installed", sh("dpkg-query", "-W", "-f", "${Status}", "linux-image-amd64"))
			efi := sh("sh", "-c", "test -d /sys/firmware/efi && echo uefi || echo bios")
			assert.Equal(t, firmware, efi)
		})
	}
}
