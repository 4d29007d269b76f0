package blueprint

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMountpointPolicyAllows lists mount points osbuild's policy accepts,
// which blueprints written for it use.
func TestMountpointPolicyAllows(t *testing.T) {
	t.Parallel()
	for _, mp := range []string{
		"/", "/boot", "/boot/efi", "/boot/firmware", "/usr", "/var", "/var/log", "/var/lib/containers",
		"/var/tmp", "/tmp", "/home", "/home/shadowman", "/opt", "/srv", "/media", "/mnt", "/root",
		"/foo", "/foo/bar", "/app", "/data", "/efi", "/var/runner", "/etcetera", "/binaries",
	} {
		assert.Empty(t, checkMountpoint(mp), "%s may be a mount point", mp)
		doc := fmt.Sprintf("name = \"test\"\n[[customizations.filesystem]]\nmountpoint = %q\nminsize = \"1 GiB\"\n", mp)
		_, err := Parse([]byte(doc), FormatTOML)
		assert.NoError(t, err, "%s in a blueprint", mp)
	}
}

// TestMountpointPolicyRefuses checks each refused mount point comes back
// with the reason.
func TestMountpointPolicyRefuses(t *testing.T) {
	t.Parallel()
	for mp, want := range map[string]string{
		"/etc":              `"/etc" cannot be a separate mount point: /etc is read before other filesystems are mounted`,
		"/etc/ssl":          `"/etc/ssl" cannot be a separate mount point: it is below /etc, which /etc is read before`,
		"/usr/local":        `"/usr/local" cannot be a separate mount point: /usr may be one, but nothing below it, because the initramfs mounts only / and /usr`,
		"/usr/share/doc":    "/usr may be one, but nothing below it",
		"/sys":              "the kernel mounts sysfs there",
		"/proc":             "the kernel mounts procfs there",
		"/dev":              "the kernel mounts devtmpfs there",
		"/dev/shm":          "it is below /dev, which the kernel mounts devtmpfs there",
		"/run":              "systemd mounts a tmpfs there",
		"/run/user":         "below /run",
		"/bin":              "a link to /usr/bin on Debian (merged /usr)",
		"/sbin":             "a link to /usr/sbin on Debian",
		"/lib":              "a link to /usr/lib on Debian",
		"/lib/modules":      "below /lib, which it is a link to /usr/lib",
		"/lib32":            "a link to /usr/lib32",
		"/lib64":            "a link to /usr/lib64",
		"/libx32":           "a link to /usr/libx32",
		"/sysroot":          "the initramfs mounts the root filesystem there",
		"/var/run":          "a link to /run, a tmpfs that is not on disk",
		"/var/run/postgres": "below /var/run",
		"/var/lock":         "a link to /run/lock",
		"/lost+found":       "may contain only",
		"":                  "required",
		"var":               "not an absolute path",
	} {
		assert.Contains(t, checkMountpoint(mp), want, "mount point %q", mp)
	}
}

func TestValidateDiskFields(t *testing.T) {
	t.Parallel()
	part := func(fields string) string {
		return "[customizations.disk]\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\nminsize = \"2 GiB\"\n[[customizations.disk.partitions]]\nminsize = \"1 GiB\"\n" + fields
	}
	runBadCases(t, []badCase{
		{"sector size 4096", "[customizations.disk]\nsector_size = 4096\n[[customizations.disk.partitions]]\nmountpoint = \"/\"", "customizations.disk.sector_size", "4096-byte sectors are not supported: the virtual disks"},
		{"sector size odd", "[customizations.disk]\nsector_size = 1000\n[[customizations.disk.partitions]]\nmountpoint = \"/\"", "customizations.disk.sector_size", "1000 is not a sector size"},
		{"start offset too large", "[customizations.disk]\nstart_offset = \"2 GiB\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"", "customizations.disk.start_offset", "limit of 1 GiB"},
		{"part uuid not a guid", part("mountpoint = \"/var\"\npart_uuid = \"1234\""), "customizations.disk.partitions[1].part_uuid", "not a GUID"},
		{"part uuid zero", part("mountpoint = \"/var\"\npart_uuid = \"00000000-0000-0000-0000-000000000000\""), "customizations.disk.partitions[1].part_uuid", "all-zero GUID"},
		{"part uuid dos", "[customizations.disk]\ntype = \"dos\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_uuid = \"6f1b2c3d-1111-4222-8333-444455556666\"", "customizations.disk.partitions[0].part_uuid", "dos partition table has no partition GUIDs"},
		{"part uuid twice", "[customizations.disk]\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_uuid = \"6F1B2C3D-1111-4222-8333-444455556666\"\n[[customizations.disk.partitions]]\nmountpoint = \"/var\"\npart_uuid = \"6f1b2c3d-1111-4222-8333-444455556666\"", "customizations.disk.partitions[1].part_uuid", "also the GUID of customizations.disk.partitions[0].part_uuid"},
		{"part type unused gpt", part("mountpoint = \"/var\"\npart_type = \"00000000-0000-0000-0000-000000000000\""), "customizations.disk.partitions[1].part_type", "unused table entry"},
		{"part type unused dos", "[customizations.disk]\ntype = \"dos\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_type = \"00\"", "customizations.disk.partitions[0].part_type", "unused table entry"},
		{"part type extended", "[customizations.disk]\ntype = \"dos\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_type = \"0x0f\"", "customizations.disk.partitions[0].part_type", "dos extended partition"},
		{"part type bios boot", part("mountpoint = \"/var\"\npart_type = \"21686148-6449-6E6F-744E-656564454649\""), "customizations.disk.partitions[1].part_type", "GRUB overwrites"},
		{"esp of another type", part("mountpoint = \"/boot/efi\"\nfs_type = \"vfat\"\npart_type = \"0FC63DAF-8483-4772-8E79-3D69D8477DE4\""), "customizations.disk.partitions[1].part_type", "by which firmware finds /boot/efi"},
		{"esp not vfat", part("mountpoint = \"/boot/efi\"\nfs_type = \"ext4\""), "customizations.disk.partitions[1].fs_type", "firmware reads as FAT"},
	})
}

// TestValidateDiskFieldsAccepted: what osbuild blueprints write, and kiln
// builds, parses without a problem.
func TestValidateDiskFieldsAccepted(t *testing.T) {
	t.Parallel()
	doc := `name = "disk"
[customizations.disk]
type = "gpt"
minsize = "10 GiB"
start_offset = "8 MiB"
sector_size = 512
[[customizations.disk.partitions]]
mountpoint = "/data"
minsize = "1 GiB"
fs_type = "ext4"
part_type = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
part_label = "shared data"
part_uuid = "6f1b2c3d-1111-4222-8333-444455556666"
[[customizations.disk.partitions]]
mountpoint = "/boot/efi"
minsize = "200 MiB"
fs_type = "vfat"
part_type = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
[[customizations.disk.partitions]]
mountpoint = "/"
minsize = "3 GiB"
`
	bp, err := Parse([]byte(doc), FormatTOML)
	require.NoError(t, err)
	d := bp.Customizations.Disk
	assert.Equal(t, 8*MiB, d.StartOffset)
	assert.Equal(t, 512, d.SectorSize)
	assert.Equal(t, "6f1b2c3d-1111-4222-8333-444455556666", d.Partitions[0].PartUUID)

	dos := strings.NewReplacer(`type = "gpt"`, `type = "dos"`, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "0c", `part_label = "shared data"`, "", `part_uuid = "6f1b2c3d-1111-4222-8333-444455556666"`, "", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "ef").Replace(doc)
	_, err = Parse([]byte(dos), FormatTOML)
	require.NoError(t, err)
}

// TestDiskFieldsSurviveExport: the newer disk fields are written back when
// a blueprint is exported, in both formats.
func TestDiskFieldsSurviveExport(t *testing.T) {
	t.Parallel()
	doc := "name = \"disk\"\n[customizations.disk]\nstart_offset = \"8 MiB\"\nsector_size = 512\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_uuid = \"6f1b2c3d-1111-4222-8333-444455556666\"\npart_label = \"system\"\npart_type = \"0FC63DAF-8483-4772-8E79-3D69D8477DE4\"\n"
	bp, err := Parse([]byte(doc), FormatTOML)
	require.NoError(t, err)
	for _, f := range []Format{FormatTOML, FormatJSON} {
		var out []byte
		if f == FormatTOML {
			out, err = bp.ToTOML()
		} else {
			out, err = bp.ToJSON()
		}
		require.NoError(t, err)
		again, err := Parse(out, f)
		require.NoError(t, err, "%s", out)
		assert.Equal(t, bp.Customizations.Disk, again.Customizations.Disk, "%s", out)
	}
}
