package stages

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/manifest"
)

// smallTemplate is an image type's layout at test sizes.
func smallTemplate() disk.Template {
	return disk.Template{Type: disk.GPT, Partitions: []disk.TemplatePartition{
		{Role: disk.RoleBIOSBoot, Name: "bios-boot", Size: disk.MiB},
		{Role: disk.RoleESP, Name: "esp", Size: 40 * disk.MiB, Filesystem: &disk.TemplateFilesystem{Type: "vfat", Mountpoint: "/boot/efi", Label: "ESP"}},
		{Role: disk.RoleRoot, Name: "root", MinSize: 64 * disk.MiB, Filesystem: &disk.TemplateFilesystem{Type: "ext4", Mountpoint: "/", Label: "root"}},
	}}
}

// customRequest is a disk customization as a blueprint gives it: root
// between two other partitions, a foreign partition type and names.
func customRequest(tt disk.TableType, dataType string) disk.Request {
	req := disk.Request{Replace: true, Type: tt, StartOffset: 2 * disk.MiB, Mounts: []disk.Mount{
		{Mountpoint: "/var", MinSize: 32 * disk.MiB, PartType: dataType},
		{Mountpoint: "/", MinSize: 64 * disk.MiB},
		{FSType: "swap", MinSize: 8 * disk.MiB},
	}}
	if tt == disk.GPT {
		req.Mounts[0].PartLabel = "shared data"
		req.Mounts[1].PartLabel = "system"
	}
	return req
}

// writtenTable builds the image of pt from the synthetic tree and reads
// its partition table back with sfdisk.
func writtenTable(t *testing.T, pt *disk.PartitionTable) sfdiskDump {
	t.Helper()
	image := filepath.Join(t.TempDir(), "disk.raw")
	env, log := diskEnv(t, syntheticTree(t), image)
	require.NoError(t, (&DiskImage{Opts: manifest.DiskImage{PartitionTable: *pt, BIOSBootloader: "i386-pc"}}).Run(context.Background(), env), log.String())
	var dump sfdiskDump
	require.NoError(t, json.Unmarshal([]byte(command(t, "sfdisk", "--json", image)), &dump))
	return dump
}

func TestDiskImageWritesTheCustomLayoutGPT(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	pt, err := disk.NewPartitionTable(smallTemplate(), customRequest(disk.GPT, "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"), disk.NewIDs(7))
	require.NoError(t, err)
	dump := writtenTable(t, pt)

	type row struct{ Type, Name string }
	var got []row
	for _, p := range dump.PartitionTable.Partitions {
		got = append(got, row{strings.ToUpper(p.Type), p.Name})
	}
	assert.Equal(t, []row{
		{"21686148-6449-6E6F-744E-656564454649", "bios-boot"},
		{"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "esp"},
		{"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "shared data"},
		{"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "system"},
		{"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", ""},
	}, got, "types, names and order as asked, after the image type's boot partitions")
	require.Len(t, dump.PartitionTable.Partitions, 5)
	assert.Equal(t, uint64(3*disk.MiB/512), dump.PartitionTable.Partitions[0].Start, "start_offset leaves 2 MiB after the first")
}

func TestDiskImageWritesTheCustomLayoutDOS(t *testing.T) {
	t.Parallel()
	requireDiskTools(t)
	pt, err := disk.NewPartitionTable(smallTemplate(), customRequest(disk.DOS, "0x0C"), disk.NewIDs(7))
	require.NoError(t, err)
	dump := writtenTable(t, pt)

	var types []string
	var bootable []bool
	for _, p := range dump.PartitionTable.Partitions {
		types = append(types, p.Type)
		bootable = append(bootable, p.Bootable)
	}
	assert.Equal(t, []string{"ef", "c", "83", "82"}, types, "the ESP, then /var with the type byte asked for, root, swap")
	assert.Equal(t, []bool{false, false, true, false}, bootable)
}
