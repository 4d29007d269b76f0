package distro

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/disk"
	"github.com/kiln-project/kiln/internal/manifest"
)

const customDiskBlueprint = `name = "custom-disk"
[customizations.disk]
minsize = "12 GiB"
start_offset = "4 MiB"
[[customizations.disk.partitions]]
mountpoint = "/data"
minsize = "2 GiB"
label = "data"
part_type = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
part_label = "shared"
part_uuid = "6f1b2c3d-1111-4222-8333-444455556666"
[[customizations.disk.partitions]]
mountpoint = "/"
minsize = "3 GiB"
part_label = "system"
[[customizations.disk.partitions]]
fs_type = "swap"
minsize = "1 GiB"
`

func TestManifestKeepsTheDiskCustomization(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp, err := blueprint.Parse([]byte(customDiskBlueprint), blueprint.FormatTOML)
	require.NoError(t, err)
	_, m := makeManifest(t, imageType(t, reg, "debian-12", "x86_64", "qcow2"), bp, Options{})
	pt := stageOf[*manifest.DiskImage](t, m, "image").PartitionTable

	var roles []disk.Role
	for _, p := range pt.Partitions {
		roles = append(roles, p.Role)
	}
	assert.Equal(t, []disk.Role{disk.RoleBIOSBoot, disk.RoleESP, disk.RoleLinux, disk.RoleRoot, disk.RoleSwap}, roles,
		"the image type's boot partitions first, then the blueprint's order")
	assert.Equal(t, 5*disk.MiB, pt.Partitions[0].Start, "start_offset leaves room before the first partition")
	assert.Equal(t, 12*disk.GiB, pt.Size)

	data := pt.Partitions[2]
	assert.Equal(t, "/data", data.Payload.Mountpoint)
	assert.Equal(t, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", data.Type)
	assert.Equal(t, "shared", data.Name)
	assert.Equal(t, "6f1b2c3d-1111-4222-8333-444455556666", data.UUID)
	assert.Equal(t, "data", data.Payload.Label)

	root := pt.Partitions[3]
	assert.Equal(t, "/", root.Payload.Mountpoint)
	assert.Equal(t, "system", root.Name)
	assert.Equal(t, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", root.Type, "without part_type the root type")
	assert.Equal(t, "swap", pt.Partitions[4].Payload.Type)

	// The boot loader and fstab follow the table as built.
	assert.Equal(t, root.Payload.UUID, stageOf[*manifest.Bootloader](t, m, "os").RootFSUUID)
	assert.Len(t, stageOf[*manifest.FSTab](t, m, "os").Entries, 4)
}

func TestManifestAddsARootPartition(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	bp, err := blueprint.Parse([]byte("name = \"no-root\"\n[[customizations.disk.partitions]]\nmountpoint = \"/home\"\nminsize = \"1 GiB\"\n"), blueprint.FormatTOML)
	require.NoError(t, err)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	_, m := makeManifest(t, it, bp, Options{})
	pt := stageOf[*manifest.DiskImage](t, m, "image").PartitionTable
	require.Len(t, pt.Partitions, 4)
	assert.Equal(t, "/home", pt.Partitions[2].Payload.Mountpoint)
	root := pt.Partitions[3]
	assert.Equal(t, "/", root.Payload.Mountpoint, "a root partition is added after the blueprint's")
	assert.Equal(t, disk.Size(it.DefaultSize), pt.Size, "and fills the image at the default size")
	assert.Equal(t, pt.Size-disk.MiB, root.Start+root.Size)
}

func TestCheckBlueprintDiskLayout(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	doc := `name = "bad-disk"
[customizations.disk]
[[customizations.disk.partitions]]
mountpoint = "/"
part_type = "83"
[[customizations.disk.partitions]]
mountpoint = "/var"
part_type = "0c"
`
	bp, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
	require.NoError(t, err, "the table type is the image type's to decide")
	var errs blueprint.Errors
	require.ErrorAs(t, it.CheckBlueprint(bp), &errs)
	require.Len(t, errs, 2, "%v", errs)
	assert.Equal(t, "customizations.disk.partitions[0].part_type", errs[0].Path)
	assert.Contains(t, errs[0].Message, `"83" is an MBR type, but image type qcow2 writes a gpt table`)
	assert.Equal(t, "customizations.disk.partitions[1].part_type", errs[1].Path)

	tooMany := "name = \"dos\"\n[customizations.disk]\ntype = \"dos\"\n"
	for _, mp := range []string{"/", "/var", "/home", "/srv"} {
		tooMany += "[[customizations.disk.partitions]]\nmountpoint = \"" + mp + "\"\n"
	}
	bp, err = blueprint.Parse([]byte(tooMany), blueprint.FormatTOML)
	require.NoError(t, err)
	require.ErrorAs(t, it.CheckBlueprint(bp), &errs)
	require.Len(t, errs, 1, "%v", errs)
	assert.Equal(t, "customizations.disk", errs[0].Path)
	assert.Contains(t, errs[0].Message, "a dos partition table holds at most 4 partitions, this layout needs 5")
}

func TestCheckBlueprintDoesNotRepeatTheBlueprintsProblems(t *testing.T) {
	t.Parallel()
	reg := loadRegistry(t)
	it := imageType(t, reg, "debian-12", "x86_64", "qcow2")
	bp := &blueprint.Blueprint{Name: "esp", Customizations: &blueprint.Customizations{Disk: &blueprint.DiskCustomization{
		Partitions: []blueprint.PartitionCustomization{{Mountpoint: "/"}, {Mountpoint: "/boot/efi", FSType: "ext4"}},
	}}}
	assert.Empty(t, it.diskProblems(bp.Customizations), "an ext4 /boot/efi is the blueprint checks' to report, at its fs_type")
	bp.Customizations.Disk.Partitions[1].FSType = "vfat"
	assert.Empty(t, it.diskProblems(bp.Customizations))
}
