package disk

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mountpoints lists the mount points of pt's partitions in table order, ""
// for a partition without a filesystem.
func mountpoints(pt *PartitionTable) []string {
	var out []string
	for _, p := range pt.Partitions {
		mp := ""
		if p.Payload != nil {
			mp = p.Payload.Mountpoint
		}
		out = append(out, mp)
	}
	return out
}

func TestCustomLayoutKeepsTypesLabelsAndOrder(t *testing.T) {
	t.Parallel()
	req := Request{Replace: true, MinDiskSize: 8 * GiB, Mounts: []Mount{
		{Mountpoint: "/", MinSize: 3 * GiB, PartType: "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", PartLabel: "system"},
		{Mountpoint: "/var", MinSize: GiB, PartLabel: "var data", PartUUID: "0E1C3A55-7D5B-4C69-9D3A-1F6E2B4C8A90"},
		{Mountpoint: "swap", FSType: "swap", MinSize: 512 * MiB},
	}}
	pt, err := NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	checkGeometry(t, pt)
	assert.Equal(t, []string{"", "/boot/efi", "/", "/var", "swap"}, mountpoints(pt), "boot partitions first, then the request's order")

	root := pt.Partitions[2]
	assert.Equal(t, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", root.Type, "the given type GUID, not the role's")
	assert.Equal(t, "system", root.Name)
	assert.Equal(t, 8*GiB-MiB-MiB-127*MiB-GiB-512*MiB-gptFooter, root.Size, "root grows where it stands")
	assert.Equal(t, root.Start+root.Size, pt.Partitions[3].Start, "/var follows the grown root")

	v := pt.Partitions[3]
	assert.Equal(t, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", v.Type, "without part_type the role picks the type")
	assert.Equal(t, "var data", v.Name)
	assert.Equal(t, "0e1c3a55-7d5b-4c69-9d3a-1f6e2b4c8a90", v.UUID, "the given partition GUID")
	assert.Equal(t, "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", pt.Partitions[4].Type)
	assert.Empty(t, pt.Partitions[4].Name)

	// A fixed GUID does not move the other identifiers.
	req.Mounts[1].PartUUID = ""
	other, err := NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	assert.Equal(t, pt.FindMountpoint("/").Payload.UUID, other.FindMountpoint("/").Payload.UUID)
	assert.Equal(t, pt.Partitions[4].UUID, other.Partitions[4].UUID)
	assert.NotEqual(t, v.UUID, other.Partitions[3].UUID)
}

func TestCustomLayoutDOSTypeBytes(t *testing.T) {
	t.Parallel()
	req := Request{Replace: true, Type: DOS, Mounts: []Mount{
		{Mountpoint: "/data", MinSize: GiB, PartType: "0x0C"},
		{Mountpoint: "/", MinSize: 2 * GiB, PartType: "83"},
		{Mountpoint: "swap", FSType: "swap", MinSize: MiB, PartType: "a"},
	}}
	pt, err := NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	assert.Equal(t, []string{"/boot/efi", "/data", "/", "swap"}, mountpoints(pt))
	var types []string
	for _, p := range pt.Partitions {
		types = append(types, p.Type)
	}
	assert.Equal(t, []string{"ef", "0c", "83", "0a"}, types, "MBR types as given, written as two hex digits")
	assert.True(t, pt.FindMountpoint("/").Bootable)
}

func TestCustomLayoutWithoutRootGetsOne(t *testing.T) {
	t.Parallel()
	req := Request{Replace: true, MinDiskSize: 6 * GiB, Mounts: []Mount{
		{Mountpoint: "/home", MinSize: GiB},
		{Mountpoint: "/var/log", MinSize: 2 * GiB, FSType: "ext4"},
	}}
	pt, err := NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	checkGeometry(t, pt)
	assert.Equal(t, []string{"", "/boot/efi", "/home", "/var/log", "/"}, mountpoints(pt), "the root partition is added last")
	root := pt.FindMountpoint("/")
	assert.Equal(t, RoleRoot, root.Role)
	assert.Equal(t, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", root.Type)
	assert.Equal(t, "root", root.Payload.Label, "the image type's root filesystem")
	assert.Equal(t, "ext4", root.Payload.Type)
	assert.Equal(t, 6*GiB-MiB-MiB-127*MiB-GiB-2*GiB-gptFooter, root.Size, "it fills the disk at the default size")
	assert.Equal(t, 6*GiB, pt.Size)

	// A small default size still leaves root its minimum.
	req.MinDiskSize = 0
	pt, err = NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	assert.Equal(t, 2*GiB, pt.FindMountpoint("/").Size)
}

func TestCustomLayoutStartOffset(t *testing.T) {
	t.Parallel()
	for offset, wantFirst := range map[Size]Size{0: MiB, 8 * MiB: 9 * MiB, 100 * KiB: 2 * MiB} {
		pt, err := NewPartitionTable(testTemplate(), Request{MinDiskSize: 4 * GiB, StartOffset: offset}, NewIDs(1))
		require.NoError(t, err)
		checkGeometry(t, pt)
		assert.Equal(t, wantFirst, pt.Partitions[0].Start, "start offset %s", offset)
		last := pt.Partitions[len(pt.Partitions)-1]
		assert.Equal(t, pt.Size-gptFooter, last.Start+last.Size, "the disk keeps its size; root gives up the room")
	}
}

func TestCustomLayoutChangesTheImageTypesESP(t *testing.T) {
	t.Parallel()
	req := Request{Replace: true, Mounts: []Mount{
		{Mountpoint: "/", MinSize: 2 * GiB},
		{Mountpoint: "/boot/efi", MinSize: 200 * MiB, Label: "EFI", PartLabel: "EFI System"},
	}}
	pt, err := NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	assert.Equal(t, []string{"", "/boot/efi", "/"}, mountpoints(pt), "the ESP stays where the image type puts it")
	esp := pt.FindMountpoint("/boot/efi")
	assert.Equal(t, 200*MiB, esp.Size)
	assert.Equal(t, "EFI", esp.Payload.Label)
	assert.Equal(t, "EFI System", esp.Name)
	assert.Equal(t, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", esp.Type)

	req.Mounts[1].FSType = "ext4"
	_, err = NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.ErrorContains(t, err, "/boot/efi is a vfat filesystem in this image type, not ext4")
}

// Two swap partitions, which have no mount point, are two partitions: a
// mount point match never merges them.
func TestCustomLayoutKeepsEverySwap(t *testing.T) {
	t.Parallel()
	req := Request{Replace: true, Mounts: []Mount{
		{FSType: "swap", MinSize: GiB, Label: "swap-a"},
		{Mountpoint: "/", MinSize: 2 * GiB},
		{FSType: "swap", MinSize: GiB, Label: "swap-b"},
	}}
	pt, err := NewPartitionTable(testTemplate(), req, NewIDs(1))
	require.NoError(t, err)
	var labels []string
	for _, fs := range pt.Filesystems() {
		if fs.Type == "swap" {
			labels = append(labels, fs.Label)
		}
	}
	assert.Equal(t, []string{"swap-a", "swap-b"}, labels)
}
