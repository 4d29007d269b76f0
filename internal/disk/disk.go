// Package disk describes partition tables as a tree: a table holds
// partitions, a partition holds a payload (today a filesystem). Sizes are a
// typed unit and every identifier (disk GUID, partition UUIDs, filesystem
// UUIDs) comes from an explicit seed, so the same inputs give the same layout.
package disk

import (
	"fmt"
)

// Size is a number of bytes.
type Size uint64

// Common sizes.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

// SectorSize is the logical sector size of the images kiln writes.
const SectorSize Size = 512

// String prints the size in the largest binary unit that divides it exactly.
func (s Size) String() string {
	switch {
	case s != 0 && s%GiB == 0:
		return fmt.Sprintf("%d GiB", s/GiB)
	case s != 0 && s%MiB == 0:
		return fmt.Sprintf("%d MiB", s/MiB)
	case s != 0 && s%KiB == 0:
		return fmt.Sprintf("%d KiB", s/KiB)
	}
	return fmt.Sprintf("%d B", uint64(s))
}

// AlignUp rounds s up to a multiple of a.
func AlignUp(s, a Size) Size {
	if a == 0 || s%a == 0 {
		return s
	}
	return s + a - s%a
}

// TableType is the partition table format.
type TableType string

// Partition table formats.
const (
	GPT TableType = "gpt"
	DOS TableType = "dos"
)

// Role says what a partition is for; it picks the partition type code.
type Role string

// Partition roles.
const (
	RoleBIOSBoot Role = "bios-boot" // GRUB's core image on GPT disks booted by BIOS
	RoleESP      Role = "esp"       // EFI system partition
	RoleLinux    Role = "linux"     // any Linux filesystem
	RoleRoot     Role = "root"      // the root filesystem (x86-64 root type on GPT)
	RoleSwap     Role = "swap"
)

// Partition type codes per role: GPT type GUIDs and MBR type bytes.
var (
	gptTypes = map[Role]string{
		RoleBIOSBoot: "21686148-6449-6E6F-744E-656564454649",
		RoleESP:      "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
		RoleLinux:    "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
		RoleRoot:     "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
		RoleSwap:     "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
	}
	dosTypes = map[Role]string{
		RoleESP:   "ef",
		RoleLinux: "83",
		RoleRoot:  "83",
		RoleSwap:  "82",
	}
)

// TypeCode returns the partition type code of a role in a table type.
func TypeCode(t TableType, r Role) (string, error) {
	m := gptTypes
	if t == DOS {
		m = dosTypes
	}
	code, ok := m[r]
	if !ok {
		return "", fmt.Errorf("a %s partition cannot be placed in a %s partition table", r, t)
	}
	return code, nil
}

// PartitionTable is a whole disk.
type PartitionTable struct {
	Type TableType `json:"type"`
	// UUID is the GPT disk GUID, or the DOS disk identifier (8 hex digits).
	UUID string `json:"uuid"`
	// Size is the size of the whole disk image.
	Size       Size        `json:"size"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one entry of a partition table.
type Partition struct {
	Role  Role   `json:"role"`
	Start Size   `json:"start"`
	Size  Size   `json:"size"`
	Type  string `json:"type"`
	// UUID is the GPT partition GUID (empty on DOS tables).
	UUID     string      `json:"uuid,omitempty"`
	Name     string      `json:"name,omitempty"`
	Bootable bool        `json:"bootable,omitempty"`
	Payload  *Filesystem `json:"filesystem,omitempty"`
}

// Filesystem is a filesystem on a partition.
type Filesystem struct {
	Type       string `json:"type"` // ext4, xfs, vfat, swap
	UUID       string `json:"uuid"`
	Label      string `json:"label,omitempty"`
	Mountpoint string `json:"mountpoint,omitempty"`
	// FSTabOptions are the mount options written to /etc/fstab.
	FSTabOptions string `json:"fstab_options,omitempty"`
	FSTabPassNo  int    `json:"fstab_passno"`
}

// Filesystems walks the tree and returns every filesystem, in partition order.
func (pt *PartitionTable) Filesystems() []*Filesystem {
	if pt == nil {
		return nil
	}
	var out []*Filesystem
	for i := range pt.Partitions {
		if fs := pt.Partitions[i].Payload; fs != nil {
			out = append(out, fs)
		}
	}
	return out
}

// FindMountpoint returns the partition holding the filesystem mounted at mp.
func (pt *PartitionTable) FindMountpoint(mp string) *Partition {
	if pt == nil {
		return nil
	}
	for i := range pt.Partitions {
		if fs := pt.Partitions[i].Payload; fs != nil && fs.Mountpoint == mp {
			return &pt.Partitions[i]
		}
	}
	return nil
}
