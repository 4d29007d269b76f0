package blueprint

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// MaxSize is the largest size accepted in any minsize field: 1 PiB. It keeps
// sums of sizes far from overflowing.
const MaxSize Size = 1 << 50

var (
	mountpointRe = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
	lvmNameRe    = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)
	fsLabelRe    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	partLabelRe  = regexp.MustCompile(`^[A-Za-z0-9 _.-]+$`)
	guidRe       = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	mbrTypeRe    = regexp.MustCompile(`^(0x)?[0-9A-Fa-f]{2}$`)
)

// checkMountpoint returns a problem message for a path that may not be a
// separate mount point, or "". Mount points are "/", "/boot", "/usr", and
// /var, /home, /opt, /srv, /tmp, /app, /data and anything below them; the
// rest of the tree must stay on the root filesystem for the system to boot.
func checkMountpoint(mp string) string {
	const allowed = "mount points may be /, /boot, /usr, or /var, /home, /opt, /srv, /tmp, /app, /data or a directory below them"
	switch {
	case mp == "":
		return "required; " + allowed
	case !strings.HasPrefix(mp, "/"):
		return quote(mp) + " is not an absolute path; start it with /"
	case len(mp) > 1024:
		return fmt.Sprintf("is %d characters long; the limit is 1024", len(mp))
	case !mountpointRe.MatchString(mp):
		return quote(mp) + " may contain only letters, digits and / . _ -"
	case path.Clean(mp) != mp:
		return fmt.Sprintf("%s is not in canonical form (no '..', '.', '//' or trailing '/'); write %s", quote(mp), quote(path.Clean(mp)))
	}
	switch mp {
	case "/", "/boot", "/usr":
		return ""
	case "/var/run", "/var/lock":
		return quote(mp) + " is a link to /run, which is not on disk; " + allowed
	}
	for _, root := range []string{"/var", "/home", "/opt", "/srv", "/tmp", "/app", "/data"} {
		if mp == root || strings.HasPrefix(mp, root+"/") {
			if strings.HasPrefix(mp, "/var/run/") || strings.HasPrefix(mp, "/var/lock/") {
				return quote(mp) + " is under a link to /run, which is not on disk; " + allowed
			}
			return ""
		}
	}
	return quote(mp) + " cannot be a separate mount point; " + allowed
}

// checkSize returns a problem message for a size above MaxSize, or "".
func checkSize(s Size) string {
	if s > MaxSize {
		return fmt.Sprintf("%s is larger than the limit of %s", s, MaxSize)
	}
	return ""
}

func (v validator) size(at string, s Size) {
	if msg := checkSize(s); msg != "" {
		v.add(at, "%s", msg)
	}
}

func (v validator) filesystems(at string, fss []FilesystemCustomization) {
	if !v.maxItems(at, len(fss), MaxMountpoints) {
		return
	}
	seen := map[string]string{}
	for i, fs := range fss {
		p := indexPath(at, i)
		v.mountpoint(fieldPath(p, "mountpoint"), fs.Mountpoint, seen)
		v.size(fieldPath(p, "minsize"), fs.MinSize)
	}
}

// mountpoint checks one mount point and that it is not already used;
// seen maps each mount point to the path of the field that claimed it.
func (v validator) mountpoint(at, mp string, seen map[string]string) {
	if msg := checkMountpoint(mp); msg != "" {
		v.add(at, "%s", msg)
		return
	}
	if first, dup := seen[mp]; dup {
		v.add(at, "%s is also mounted by %s; each mount point is used once", quote(mp), first)
		return
	}
	seen[mp] = at
}

func (v validator) disk(at string, d *DiskCustomization) {
	if d == nil {
		return
	}
	switch d.Type {
	case "", "gpt", "dos":
	default:
		v.add(fieldPath(at, "type"), `%s is not a partition table type; use "gpt" or "dos", or leave it out for the image type's default`, quote(d.Type))
	}
	v.size(fieldPath(at, "minsize"), d.MinSize)
	pp := fieldPath(at, "partitions")
	if len(d.Partitions) == 0 {
		v.add(pp, "required; list at least one partition")
		return
	}
	if !v.maxItems(pp, len(d.Partitions), MaxMountpoints) {
		return
	}
	seen := map[string]string{}
	vgs := map[string]string{}
	for i, part := range d.Partitions {
		p := indexPath(pp, i)
		v.size(fieldPath(p, "minsize"), part.MinSize)
		v.partitionTableFields(p, d.Type, part)
		switch part.Type {
		case "", "plain":
			v.plainPartition(p, part, seen)
		case "lvm":
			v.lvmPartition(p, part, seen, vgs)
		case "btrfs":
			v.add(fieldPath(p, "type"), `btrfs partitions are not supported yet; use "plain" or "lvm"`)
		default:
			v.add(fieldPath(p, "type"), `%s is not a partition type; use "plain" (the default) or "lvm"`, quote(part.Type))
		}
	}
}

// partitionTableFields checks part_type and part_label against the table type.
func (v validator) partitionTableFields(p, tableType string, part PartitionCustomization) {
	if pt := part.PartType; pt != "" {
		switch {
		case guidRe.MatchString(pt):
			if tableType == "dos" {
				v.add(fieldPath(p, "part_type"), "%s is a GPT type GUID, but the table is dos; give an MBR type such as \"83\"", quote(pt))
			}
		case mbrTypeRe.MatchString(pt):
			if tableType == "gpt" {
				v.add(fieldPath(p, "part_type"), "%s is an MBR type, but the table is gpt; give a type GUID such as \"0fc63daf-8483-4772-8e79-3d69d8477de4\"", quote(pt))
			}
		default:
			v.add(fieldPath(p, "part_type"), "%s is not a partition type; give a GPT type GUID or a two-digit hexadecimal MBR type", quote(pt))
		}
	}
	if pl := part.PartLabel; pl != "" {
		switch {
		case tableType == "dos":
			v.add(fieldPath(p, "part_label"), "a dos partition table has no partition labels; use type gpt or give a filesystem label")
		case len(pl) > 36 || !partLabelRe.MatchString(pl):
			v.add(fieldPath(p, "part_label"), "%s is not a partition label: at most 36 letters, digits, spaces, '_', '.' and '-'", quote(pl))
		}
	}
}

func (v validator) plainPartition(p string, part PartitionCustomization, seen map[string]string) {
	if part.Name != "" {
		v.add(fieldPath(p, "name"), `only an lvm partition has a name; set type = "lvm" or remove name`)
	}
	if len(part.LogicalVolumes) > 0 {
		v.add(fieldPath(p, "logical_volumes"), `only an lvm partition has logical volumes; set type = "lvm"`)
	}
	v.filesystem(p, part.FSType, part.Mountpoint, part.Label, seen, true)
}

func (v validator) lvmPartition(p string, part PartitionCustomization, seen, vgs map[string]string) {
	for _, f := range []struct{ name, value string }{{"mountpoint", part.Mountpoint}, {"fs_type", part.FSType}, {"label", part.Label}} {
		if f.value != "" {
			v.add(fieldPath(p, f.name), "an lvm partition holds logical volumes, not a filesystem; move %s into a logical_volumes entry", f.name)
		}
	}
	if part.Name != "" {
		if msg := checkLVMName(part.Name); msg != "" {
			v.add(fieldPath(p, "name"), "%s", msg)
		} else if first, dup := vgs[part.Name]; dup {
			v.add(fieldPath(p, "name"), "volume group %s is also defined at %s", quote(part.Name), first)
		} else {
			vgs[part.Name] = p
		}
	}
	lp := fieldPath(p, "logical_volumes")
	if len(part.LogicalVolumes) == 0 {
		v.add(lp, "required for an lvm partition; list at least one logical volume")
		return
	}
	if !v.maxItems(lp, len(part.LogicalVolumes), MaxMountpoints) {
		return
	}
	lvs := map[string]string{}
	for i, lv := range part.LogicalVolumes {
		q := indexPath(lp, i)
		if lv.Name != "" {
			if msg := checkLVMName(lv.Name); msg != "" {
				v.add(fieldPath(q, "name"), "%s", msg)
			} else if first, dup := lvs[lv.Name]; dup {
				v.add(fieldPath(q, "name"), "logical volume %s is also defined at %s", quote(lv.Name), first)
			} else {
				lvs[lv.Name] = q
			}
		}
		v.size(fieldPath(q, "minsize"), lv.MinSize)
		v.filesystem(q, lv.FSType, lv.Mountpoint, lv.Label, seen, false)
	}
}

// filesystem checks the fs_type, mountpoint and label of a partition or
// logical volume.
func (v validator) filesystem(p, fsType, mountpoint, label string, seen map[string]string, vfatOK bool) {
	maxLabel := 16
	switch fsType {
	case "", "ext4":
	case "xfs":
		maxLabel = 12
	case "vfat":
		maxLabel = 11
		if !vfatOK {
			v.add(fieldPath(p, "fs_type"), `vfat belongs on a plain partition; use ext4 or xfs on a logical volume`)
		}
	case "swap":
		maxLabel = 15
		if mountpoint != "" {
			v.add(fieldPath(p, "mountpoint"), "swap is not mounted; remove mountpoint")
		}
	default:
		v.add(fieldPath(p, "fs_type"), `%s is not a supported filesystem; use "ext4", "xfs", "vfat" or "swap"`, quote(fsType))
	}
	if fsType != "swap" {
		v.mountpoint(fieldPath(p, "mountpoint"), mountpoint, seen)
	}
	if label != "" && (len(label) > maxLabel || !fsLabelRe.MatchString(label)) {
		v.add(fieldPath(p, "label"), "%s is not a filesystem label: at most %d letters, digits, '_', '.' and '-'", quote(label), maxLabel)
	}
}

// checkLVMName returns a problem message for a name that LVM refuses for a
// volume group or logical volume, or "".
func checkLVMName(name string) string {
	switch {
	case len(name) > 127:
		return fmt.Sprintf("is %d characters long; the limit is 127", len(name))
	case name == "." || name == ".." || name == "snapshot" || name == "pvmove":
		return quote(name) + " is reserved by LVM; choose another name"
	case !lvmNameRe.MatchString(name):
		return quote(name) + " is not an LVM name: use letters, digits and + _ . -, not starting with '-'"
	}
	return ""
}
