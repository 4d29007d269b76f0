package disk

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testTemplate() Template {
	return Template{Type: GPT, Partitions: []TemplatePartition{
		{Role: RoleBIOSBoot, Name: "bios-boot", Size: MiB},
		{Role: RoleESP, Name: "esp", Size: 127 * MiB, Filesystem: &TemplateFilesystem{Type: "vfat", Mountpoint: "/boot/efi", Label: "ESP"}},
		{Role: RoleRoot, Name: "root", MinSize: 2 * GiB, Filesystem: &TemplateFilesystem{Type: "ext4", Mountpoint: "/", Label: "root"}},
	}}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkGeometry asserts the invariants every layout must keep: partitions
// aligned, in order, not overlapping, inside the disk with room for the
// backup GPT.
func checkGeometry(t *testing.T, pt *PartitionTable) {
	t.Helper()
	next := Alignment
	for i, p := range pt.Partitions {
		assert.Zero(t, p.Start%Alignment, "partition %d start aligned", i)
		assert.Zero(t, p.Size%Alignment, "partition %d size aligned", i)
		assert.GreaterOrEqual(t, p.Start, next, "partition %d overlaps the one before", i)
		next = p.Start + p.Size
	}
	assert.LessOrEqual(t, next+gptFooter, pt.Size, "partitions leave room for the backup GPT")
}

func TestNewPartitionTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		req       Request
		wantMount []string
		wantSize  Size
		check     func(t *testing.T, pt *PartitionTable)
	}{
		{
			name:      "template alone fills the minimum disk size",
			req:       Request{MinDiskSize: 4 * GiB},
			wantMount: []string{"/boot/efi", "/"},
			wantSize:  4 * GiB,
			check: func(t *testing.T, pt *PartitionTable) {
				root := pt.FindMountpoint("/")
				assert.Equal(t, 4*GiB-MiB-MiB-127*MiB-gptFooter, root.Size, "root grows into the rest")
				assert.Equal(t, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", root.Type)
			},
		},
		{
			name:      "extra mount points come before the growing root",
			req:       Request{MinDiskSize: 4 * GiB, Mounts: []Mount{{Mountpoint: "/var", MinSize: 2 * GiB}, {Mountpoint: "/home", MinSize: 1000}}},
			wantMount: []string{"/boot/efi", "/var", "/home", "/"},
			wantSize:  MiB + MiB + 127*MiB + 2*GiB + MiB + 2*GiB + gptFooter,
			check: func(t *testing.T, pt *PartitionTable) {
				assert.Equal(t, 2*GiB, pt.FindMountpoint("/var").Size)
				assert.Equal(t, MiB, pt.FindMountpoint("/home").Size, "sizes round up to the alignment")
				assert.Equal(t, 2*GiB, pt.FindMountpoint("/").Size, "root keeps its minimum")
			},
		},
		{
			name:      "a larger root raises the root's minimum",
			req:       Request{MinDiskSize: 4 * GiB, Mounts: []Mount{{Mountpoint: "/", MinSize: 10 * GiB}}},
			wantMount: []string{"/boot/efi", "/"},
			wantSize:  MiB + MiB + 127*MiB + 10*GiB + gptFooter,
		},
		{
			name:      "dos tables drop the BIOS boot partition and mark root bootable",
			req:       Request{MinDiskSize: GiB * 4, Type: DOS},
			wantMount: []string{"/boot/efi", "/"},
			wantSize:  4 * GiB,
			check: func(t *testing.T, pt *PartitionTable) {
				assert.Len(t, pt.Partitions, 2)
				assert.Equal(t, "83", pt.FindMountpoint("/").Type)
				assert.True(t, pt.FindMountpoint("/").Bootable)
				assert.Regexp(t, `^[0-9a-f]{8}$`, pt.UUID)
			},
		},
		{
			name:      "replace keeps boot partitions first and the request's layout in its order",
			req:       Request{Replace: true, Mounts: []Mount{{Mountpoint: "/data", MinSize: GiB}, {Mountpoint: "/", MinSize: 3 * GiB, Label: "sys"}, {Mountpoint: "swap", FSType: "swap", MinSize: 512 * MiB}}},
			wantMount: []string{"/boot/efi", "/data", "/", "swap"},
			wantSize:  MiB + MiB + 127*MiB + GiB + 512*MiB + 3*GiB + gptFooter,
			check: func(t *testing.T, pt *PartitionTable) {
				assert.Equal(t, "sys", pt.FindMountpoint("/").Payload.Label)
				assert.Equal(t, RoleSwap, pt.FindMountpoint("swap").Role)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pt, err := NewPartitionTable(testTemplate(), tc.req, NewIDs(1))
			require.NoError(t, err)
			var mounts []string
			for _, fs := range pt.Filesystems() {
				mounts = append(mounts, fs.Mountpoint)
				if fs.Type == "vfat" {
					assert.Regexp(t, `^[0-9A-F]{4}-[0-9A-F]{4}$`, fs.UUID)
				} else {
					assert.Regexp(t, uuidRE, fs.UUID)
				}
			}
			assert.Equal(t, tc.wantMount, mounts)
			assert.Equal(t, tc.wantSize, pt.Size)
			checkGeometry(t, pt)
			if tc.check != nil {
				tc.check(t, pt)
			}
		})
	}
}

func TestNewPartitionTableErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		noRoot bool // the template has no root partition
		req    Request
		want   string
	}{
		{"no root in the template either", true, Request{Replace: true, Mounts: []Mount{{Mountpoint: "/data", MinSize: GiB}}}, "no root filesystem"},
		{"too many dos partitions", false, Request{Type: DOS, Mounts: []Mount{{Mountpoint: "/a"}, {Mountpoint: "/b"}, {Mountpoint: "/c"}}}, "at most 4 partitions"},
		{"bios boot in dos", false, Request{Type: DOS, Replace: true, Mounts: []Mount{{Mountpoint: "/"}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tpl := testTemplate()
			if tc.noRoot {
				tpl.Partitions = tpl.Partitions[:2]
			}
			_, err := NewPartitionTable(tpl, tc.req, NewIDs(1))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestIdentifiersFollowTheSeed(t *testing.T) {
	t.Parallel()
	a, err := NewPartitionTable(testTemplate(), Request{MinDiskSize: 4 * GiB}, NewIDs(42))
	require.NoError(t, err)
	b, err := NewPartitionTable(testTemplate(), Request{MinDiskSize: 4 * GiB}, NewIDs(42))
	require.NoError(t, err)
	c, err := NewPartitionTable(testTemplate(), Request{MinDiskSize: 4 * GiB}, NewIDs(43))
	require.NoError(t, err)
	assert.Equal(t, a, b, "same seed, same identifiers")
	assert.NotEqual(t, a.UUID, c.UUID, "another seed, other identifiers")
	assert.NotEqual(t, a.FindMountpoint("/").Payload.UUID, c.FindMountpoint("/").Payload.UUID)
	seen := map[string]bool{}
	for _, p := range a.Partitions {
		assert.False(t, seen[p.UUID], "partition UUIDs are unique")
		seen[p.UUID] = true
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()
	for s, want := range map[Size]string{0: "0 B", 512: "512 B", 2 * KiB: "2 KiB", 127 * MiB: "127 MiB", 4 * GiB: "4 GiB", GiB + 1: "1073741825 B"} {
		assert.Equal(t, want, s.String())
	}
	assert.Equal(t, 2*MiB, AlignUp(MiB+1, MiB))
	assert.Equal(t, MiB, AlignUp(MiB, MiB))
}
