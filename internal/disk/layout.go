package disk

import (
	"fmt"
	"slices"
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
	Role       Role
	Name       string
	Size       Size
	MinSize    Size
	Bootable   bool
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
	// partitions, BIOS boot and ESP) and uses Mounts as the whole layout;
	// the root filesystem then grows.
	Replace bool
}

// Alignment of partition starts and sizes.
const Alignment = MiB

// gptFooter is room left at the end of the disk for the backup GPT.
const gptFooter = MiB

// NewPartitionTable lays out a disk from a template and a request, taking
// identifiers from ids in a fixed order.
func NewPartitionTable(tpl Template, req Request, ids *IDs) (*PartitionTable, error) {
	tableType := tpl.Type
	if req.Type != "" {
		tableType = req.Type
	}
	parts := make([]TemplatePartition, 0, len(tpl.Partitions)+len(req.Mounts))
	for _, p := range tpl.Partitions {
		if req.Replace && p.Role != RoleBIOSBoot && p.Role != RoleESP {
			continue
		}
		if tableType == DOS && p.Role == RoleBIOSBoot {
			continue // DOS tables embed GRUB's core image in the gap before the first partition
		}
		if p.Filesystem != nil {
			fs := *p.Filesystem
			p.Filesystem = &fs
		}
		parts = append(parts, p)
	}
	growIdx := slices.IndexFunc(parts, func(p TemplatePartition) bool { return p.Size == 0 })
	for _, m := range req.Mounts {
		if i := slices.IndexFunc(parts, func(p TemplatePartition) bool {
			return p.Filesystem != nil && p.Filesystem.Mountpoint == m.Mountpoint
		}); i >= 0 {
			if parts[i].Size == 0 {
				parts[i].MinSize = max(parts[i].MinSize, AlignUp(m.MinSize, Alignment))
			} else {
				parts[i].Size = max(parts[i].Size, AlignUp(m.MinSize, Alignment))
			}
			continue
		}
		fsType := m.FSType
		if fsType == "" {
			fsType = "ext4"
		}
		np := TemplatePartition{
			Role: RoleLinux, Size: AlignUp(max(m.MinSize, MiB), Alignment),
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
		if np.Size == 0 {
			if growIdx >= 0 {
				return nil, fmt.Errorf("two partitions grow to fill the disk: %s and %s", parts[growIdx].Filesystem.Mountpoint, m.Mountpoint)
			}
			parts = append(parts, np)
			growIdx = len(parts) - 1
			continue
		}
		if growIdx >= 0 {
			parts = slices.Insert(parts, growIdx, np)
			growIdx++
		} else {
			parts = append(parts, np)
		}
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
	used := Alignment // the first partition starts at 1 MiB
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
	start := Alignment
	for i, p := range parts {
		size := AlignUp(max(p.Size, p.MinSize), Alignment)
		if i == growIdx {
			size += total - used - gptFooter
		}
		code, err := TypeCode(tableType, p.Role)
		if err != nil {
			return nil, err
		}
		part := Partition{Role: p.Role, Start: start, Size: size, Type: code, Name: p.Name, Bootable: p.Bootable}
		if tableType == GPT {
			part.UUID = ids.UUID()
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
