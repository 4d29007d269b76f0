package disk

import (
	"fmt"
	"slices"
	"strings"
)

// Template is an image type's partition layout before sizes and identifiers
// are decided.
type Template struct {
	Type       TableType
	Partitions []TemplatePartition
}

// TemplatePartition is one partition of a Template. A Size of zero means the
// partition grows to fill the disk (at least MinSize); only one may grow.
type TemplatePartition struct {
	Role     Role
	Name     string
	Size     Size
	MinSize  Size
	Bootable bool
	// Type, when set, replaces the type code the role picks.
	Type string
	// UUID, when set, is the GPT partition GUID instead of a generated one.
	UUID       string
	Filesystem *TemplateFilesystem
}

// TemplateFilesystem is the filesystem a template partition carries.
type TemplateFilesystem struct {
	Type         string
	Mountpoint   string
	Label        string
	FSTabOptions string
}

// Mount asks for a filesystem at Mountpoint of at least MinSize.
type Mount struct {
	Mountpoint string
	MinSize    Size
	FSType     string // default ext4
	Label      string
	// PartType, when set, is written as the partition's type instead of
	// the one its role picks: a GPT type GUID or an MBR type byte.
	PartType string
	// PartLabel, when set, is the GPT partition name.
	PartLabel string
	// PartUUID, when set, is the GPT partition GUID.
	PartUUID string
}

// Request is what a blueprint asks of the disk.
type Request struct {
	// Mounts are extra filesystems (or larger ones, for mount points the
	// template already has).
	Mounts []Mount
	// MinDiskSize is the smallest acceptable image size.
	MinDiskSize Size
	// Type, when set, replaces the template's table type.
	Type TableType
	// Replace drops the template's filesystems (keeping only its boot
	// partitions, BIOS boot and ESP, first) and uses Mounts, in their
	// order, as the rest of the layout; the root filesystem grows where it
	// stands. Without a mount for "/", the template's root partition is
	// added after them.
	Replace bool
	// StartOffset is room left free between the first MiB (the partition
	// table) and the first partition, rounded up to the alignment.
	StartOffset Size
}

// Alignment of partition starts and sizes.
const Alignment = MiB

// gptFooter is room left at the end of the disk for the backup GPT.
const gptFooter = MiB

// NewPartitionTable lays out a disk from a template and a request, taking
// identifiers from ids in a fixed order.
//
// The order of the partitions is the template's boot partitions (BIOS boot,
// ESP) first, then: with Replace, the request's mounts in the order given
// (a root partition from the template after them when none is "/"); without
// it, the template's other partitions with the request's new mount points
// placed before the partition that grows.
func NewPartitionTable(tpl Template, req Request, ids *IDs) (*PartitionTable, error) {
	tableType := tpl.Type
	if req.Type != "" {
		tableType = req.Type
	}
	var templateRoot *TemplatePartition
	parts := make([]TemplatePartition, 0, len(tpl.Partitions)+len(req.Mounts)+1)
	for _, p := range tpl.Partitions {
		if p.Filesystem != nil {
			fs := *p.Filesystem
			p.Filesystem = &fs
		}
		if req.Replace && p.Role != RoleBIOSBoot && p.Role != RoleESP {
			if p.Filesystem != nil && p.Filesystem.Mountpoint == "/" {
				root := p
				templateRoot = &root
			}
			continue
		}
		if tableType == DOS && p.Role == RoleBIOSBoot {
			continue // DOS tables embed GRUB's core image in the gap before the first partition
		}
		parts = append(parts, p)
	}
	growIdx := slices.IndexFunc(parts, func(p TemplatePartition) bool { return p.Size == 0 })
	hasRoot := false
	for _, m := range req.Mounts {
		hasRoot = hasRoot || m.Mountpoint == "/"
		if i := slices.IndexFunc(parts, func(p TemplatePartition) bool {
			// A mount without a mount point (swap) is always a partition of its own.
			return m.Mountpoint != "" && p.Filesystem != nil && p.Filesystem.Mountpoint == m.Mountpoint
		}); i >= 0 {
			if err := mergeMount(&parts[i], m); err != nil {
				return nil, err
			}
			continue
		}
		np := newPartition(m)
		if np.Size == 0 {
			if growIdx >= 0 {
				return nil, fmt.Errorf("two partitions grow to fill the disk: %s and %s", parts[growIdx].Filesystem.Mountpoint, m.Mountpoint)
			}
			parts = append(parts, np)
			growIdx = len(parts) - 1
			continue
		}
		if growIdx >= 0 && !req.Replace {
			parts = slices.Insert(parts, growIdx, np)
			growIdx++
		} else {
			parts = append(parts, np)
		}
	}
	if req.Replace && !hasRoot && templateRoot != nil {
		if growIdx >= 0 {
			return nil, fmt.Errorf("two partitions grow to fill the disk: %s and the root partition added for \"/\"", parts[growIdx].Filesystem.Mountpoint)
		}
		parts = append(parts, *templateRoot)
		growIdx = len(parts) - 1
	}
	if !slices.ContainsFunc(parts, func(p TemplatePartition) bool {
		return p.Filesystem != nil && p.Filesystem.Mountpoint == "/"
	}) {
		return nil, fmt.Errorf("the layout has no root filesystem: add a filesystem for mount point \"/\"")
	}
	if tableType == DOS && len(parts) > 4 {
		return nil, fmt.Errorf("a dos partition table holds at most 4 partitions, this layout needs %d: use a gpt table or fewer filesystems", len(parts))
	}

	// Sizes: everything fixed first, then the growing partition takes the rest.
	first := Alignment + AlignUp(req.StartOffset, Alignment) // the first MiB holds the partition table
	used := first
	for _, p := range parts {
		used += AlignUp(max(p.Size, p.MinSize), Alignment)
	}
	total := AlignUp(max(req.MinDiskSize, used+gptFooter), Alignment)

	pt := &PartitionTable{Type: tableType, Size: total}
	if tableType == GPT {
		pt.UUID = ids.UUID()
	} else {
		pt.UUID = ids.DiskID()
	}
	start := first
	for i, p := range parts {
		size := AlignUp(max(p.Size, p.MinSize), Alignment)
		if i == growIdx {
			size += total - used - gptFooter
		}
		code := p.Type
		if code == "" {
			var err error
			if code, err = TypeCode(tableType, p.Role); err != nil {
				return nil, err
			}
		}
		part := Partition{Role: p.Role, Start: start, Size: size, Type: normalizeTypeCode(tableType, code), Name: p.Name, Bootable: p.Bootable}
		if tableType == GPT {
			// Drawn even when the request fixes the GUID, so that the
			// other identifiers do not depend on it.
			part.UUID = ids.UUID()
			if p.UUID != "" {
				part.UUID = strings.ToLower(p.UUID)
			}
		}
		if tableType == DOS && p.Role == RoleRoot && !slices.ContainsFunc(parts, func(p TemplatePartition) bool { return p.Bootable }) {
			part.Bootable = true
		}
		if f := p.Filesystem; f != nil {
			fs := &Filesystem{Type: f.Type, Label: f.Label, Mountpoint: f.Mountpoint, FSTabOptions: f.FSTabOptions}
			switch {
			case f.Type == "vfat":
				fs.UUID = ids.VolumeID()
			default:
				fs.UUID = ids.UUID()
			}
			switch {
			case f.Type == "swap":
				fs.FSTabPassNo = 0
			case f.Mountpoint == "/":
				fs.FSTabPassNo = 1
			default:
				fs.FSTabPassNo = 2
			}
			part.Payload = fs
		}
		pt.Partitions = append(pt.Partitions, part)
		start += size
	}
	return pt, nil
}

// newPartition is the template partition for a mount point the template
// does not have.
func newPartition(m Mount) TemplatePartition {
	fsType := m.FSType
	if fsType == "" {
		fsType = "ext4"
	}
	np := TemplatePartition{
		Role: RoleLinux, Size: AlignUp(max(m.MinSize, MiB), Alignment),
		Name: m.PartLabel, Type: m.PartType, UUID: m.PartUUID,
		Filesystem: &TemplateFilesystem{Type: fsType, Mountpoint: m.Mountpoint, Label: m.Label, FSTabOptions: "defaults"},
	}
	switch {
	case fsType == "swap":
		np.Role = RoleSwap
		np.Filesystem.FSTabOptions = "sw"
	case m.Mountpoint == "/":
		np.Role = RoleRoot
		np.Size, np.MinSize = 0, AlignUp(m.MinSize, Alignment)
		np.Filesystem.FSTabOptions = "errors=remount-ro"
	}
	return np
}

// mergeMount applies a mount to the template partition that already has its
// mount point: the size grows to the mount's minimum, and the labels, type
// and GUID it sets replace the template's. Its filesystem type cannot
// change, because the image type relies on it (a vfat ESP).
func mergeMount(p *TemplatePartition, m Mount) error {
	if m.FSType != "" && m.FSType != p.Filesystem.Type {
		return fmt.Errorf("%s is a %s filesystem in this image type, not %s", m.Mountpoint, p.Filesystem.Type, m.FSType)
	}
	if p.Size == 0 {
		p.MinSize = max(p.MinSize, AlignUp(m.MinSize, Alignment))
	} else {
		p.Size = max(p.Size, AlignUp(m.MinSize, Alignment))
	}
	if m.Label != "" {
		p.Filesystem.Label = m.Label
	}
	if m.PartLabel != "" {
		p.Name = m.PartLabel
	}
	if m.PartType != "" {
		p.Type = m.PartType
	}
	if m.PartUUID != "" {
		p.UUID = m.PartUUID
	}
	return nil
}

// normalizeTypeCode writes a GPT type GUID in upper case and an MBR type
// as two lower-case hex digits without "0x".
func normalizeTypeCode(t TableType, code string) string {
	if t == DOS {
		code = strings.TrimPrefix(strings.ToLower(code), "0x")
		if len(code) == 1 {
			code = "0" + code
		}
		return code
	}
	return strings.ToUpper(code)
}
