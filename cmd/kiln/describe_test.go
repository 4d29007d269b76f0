package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDescribeSaysWhatDiskCustomizationRefuses(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, "describe", "raw", "--distro", "debian-12")
	require.NoError(t, err)
	for _, want := range []string{
		"Disk customization (customizations.disk):",
		"gpt, dos (the first is the default)",
		"then the blueprint's partitions in the order given",
		"lvm:",
		"without the device-mapper devices LVM needs",
		"sector_size = 4096:",
	} {
		assert.Contains(t, out, want)
	}

	out, _, err = run(t, "describe", "qcow2", "--distro", "debian-13", "--format", "json")
	require.NoError(t, err)
	var d imageTypeDesc
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	require.NotNil(t, d.DiskCustomization)
	assert.Contains(t, d.DiskCustomization.Refused["lvm"], "LVM partitions cannot be built")
	assert.Equal(t, []string{"ext4", "vfat", "swap"}, d.DiskCustomization.Filesystems)

	out, _, err = run(t, "describe", "tar", "--distro", "debian-12", "--format", "json")
	require.NoError(t, err)
	d = imageTypeDesc{}
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	assert.Nil(t, d.DiskCustomization, "a root tree has no disk to customize")
}
