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
// separate mount point, or "". The rules are those of mountpointPolicy.
func checkMountpoint(mp string) string {
	switch {
	case mp == "":
		return "required; give an absolute path such as /var or /home"
	case !strings.HasPrefix(mp, "/"):
		return quote(mp) + " is not an absolute path; start it with /"
	case len(mp) > 1024:
		return fmt.Sprintf("is %d characters long; the limit is 1024", len(mp))
	case !mountpointRe.MatchString(mp):
		return quote(mp) + " may contain only letters, digits and / . _ -"
	case path.Clean(mp) != mp:
		return fmt.Sprintf("%s is not in canonical form (no '..', '.', '//' or trailing '/'); write %s", quote(mp), quote(path.Clean(mp)))
	}
	rule, at := mountpointRule(mp)
	switch {
	case rule.deny && at == mp:
		return quote(mp) + " cannot be a separate mount point: " + rule.why
	case rule.deny:
		return fmt.Sprintf("%s cannot be a separate mount point: it is below %s, which %s", quote(mp), at, rule.why)
	case rule.exact && at != mp:
		return fmt.Sprintf("%s cannot be a separate mount point: %s may be one, but nothing below it, because %s", quote(mp), at, rule.why)
	}
	return ""
}

// mountRule is the mount-point policy for a directory and what lies below
// it: deny forbids both, exact allows the directory itself but nothing
// below it. why says the reason, to follow "cannot be a separate mount
// point:".
type mountRule struct {
	deny, exact bool
	why         string
}

// mountpointPolicy follows osbuild's mount-point policy: anything may be a
// mount point except the directories that must stay on the root filesystem
// for the system to boot, those the kernel and systemd mount themselves,
// and links (osbuild's /lost+found is already refused by the characters a
// mount point may hold). On Debian /bin, /sbin and the /lib directories are links into
// /usr (merged /usr), as are /var/run and /var/lock into /run.
var mountpointPolicy = map[string]mountRule{
	"/":         {},
	"/etc":      {deny: true, why: "/etc is read before other filesystems are mounted and must stay on the root filesystem"},
	"/usr":      {exact: true, why: "the initramfs mounts only / and /usr before the system starts, and the programs that mount the rest live below /usr"},
	"/sys":      {deny: true, why: "the kernel mounts sysfs there at boot"},
	"/proc":     {deny: true, why: "the kernel mounts procfs there at boot"},
	"/dev":      {deny: true, why: "the kernel mounts devtmpfs there at boot"},
	"/run":      {deny: true, why: "systemd mounts a tmpfs there at boot"},
	"/bin":      {deny: true, why: "it is a link to /usr/bin on Debian (merged /usr)"},
	"/sbin":     {deny: true, why: "it is a link to /usr/sbin on Debian (merged /usr)"},
	"/lib":      {deny: true, why: "it is a link to /usr/lib on Debian (merged /usr)"},
	"/lib32":    {deny: true, why: "it is a link to /usr/lib32 on Debian (merged /usr)"},
	"/lib64":    {deny: true, why: "it is a link to /usr/lib64 on Debian (merged /usr)"},
	"/libx32":   {deny: true, why: "it is a link to /usr/libx32 on Debian (merged /usr)"},
	"/sysroot":  {deny: true, why: "the initramfs mounts the root filesystem there"},
	"/var/run":  {deny: true, why: "it is a link to /run, a tmpfs that is not on disk"},
	"/var/lock": {deny: true, why: "it is a link to /run/lock, a tmpfs that is not on disk"},
}

// mountpointRule returns the rule of mp's closest ancestor-or-self that
// has one, and that directory.
func mountpointRule(mp string) (mountRule, string) {
	for dir := mp; ; dir = path.Dir(dir) {
		if r, ok := mountpointPolicy[dir]; ok {
			return r, dir
		}
	}
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
	v.diskGeometry(at, d)
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
	partUUIDs := map[string]string{}
	for i, part := range d.Partitions {
		p := indexPath(pp, i)
		v.size(fieldPath(p, "minsize"), part.MinSize)
		v.partitionTableFields(p, d.Type, part)
		v.partitionIdentity(p, d.Type, part, partUUIDs)
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
	if part.Mountpoint == "/boot/efi" && part.FSType != "" && part.FSType != "vfat" {
		v.add(fieldPath(p, "fs_type"), "/boot/efi is the EFI system partition, which firmware reads as FAT; use \"vfat\" or leave fs_type out")
	}
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

// Partition type codes that the disk checks name.
const (
	espGUID      = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	biosBootGUID = "21686148-6449-6e6f-744e-656564454649"
	unusedGUID   = "00000000-0000-0000-0000-000000000000"
)

// diskGeometry checks start_offset and sector_size.
func (v validator) diskGeometry(at string, d *DiskCustomization) {
	if d.StartOffset > GiB {
		v.add(fieldPath(at, "start_offset"), "%s is more than the limit of 1 GiB of free room before the first partition", d.StartOffset)
	}
	switch d.SectorSize {
	case 0, 512:
	case 4096:
		v.add(fieldPath(at, "sector_size"), "4096-byte sectors are not supported: the virtual disks of the platforms these images run on present 512-byte sectors, where a table written for 4096-byte sectors is not found; leave sector_size out or set 512")
	default:
		v.add(fieldPath(at, "sector_size"), "%d is not a sector size; leave it out or set 512 (the only size built)", d.SectorSize)
	}
}

// partitionIdentity checks part_uuid, and that part_type does not name a
// kind of partition that would break the image: an unused table entry, a
// dos extended partition, GRUB's BIOS boot partition holding a filesystem,
// or an EFI system partition of another type. partUUIDs maps each GUID to
// the path of the field that claimed it.
func (v validator) partitionIdentity(p, tableType string, part PartitionCustomization, partUUIDs map[string]string) {
	if id := part.PartUUID; id != "" {
		up := fieldPath(p, "part_uuid")
		switch key := strings.ToLower(id); {
		case tableType == "dos":
			v.add(up, "a dos partition table has no partition GUIDs; use type gpt or remove part_uuid")
		case !guidRe.MatchString(id):
			v.add(up, "%s is not a GUID; write it as 8-4-4-4-12 hexadecimal digits", quote(id))
		case key == unusedGUID:
			v.add(up, "the all-zero GUID is not a partition GUID; give another or leave part_uuid out")
		default:
			if first, dup := partUUIDs[key]; dup {
				v.add(up, "%s is also the GUID of %s; each partition's GUID is unique", quote(id), first)
			} else {
				partUUIDs[key] = up
			}
		}
	}
	pt := strings.ToLower(strings.TrimPrefix(strings.ToLower(part.PartType), "0x"))
	if pt == "" {
		return
	}
	tp := fieldPath(p, "part_type")
	switch pt {
	case unusedGUID, "00", "0":
		v.add(tp, "%s marks an unused table entry, which would hide the partition; give the type of what it holds or leave part_type out", quote(part.PartType))
		return
	case "05", "5", "0f", "f", "85":
		v.add(tp, "%s is a dos extended partition, a container for logical partitions, which are not built; give the type of what it holds or leave part_type out", quote(part.PartType))
		return
	case biosBootGUID:
		if part.Type == "" || part.Type == "plain" {
			v.add(tp, "%s is the BIOS boot partition type, whose space GRUB overwrites with its core image; the image type adds that partition itself, so give this one another type", quote(part.PartType))
			return
		}
	}
	if part.Mountpoint == "/boot/efi" && pt != espGUID && pt != "ef" {
		v.add(tp, "%s is not the EFI system partition type, by which firmware finds /boot/efi; use %q (gpt) or \"ef\" (dos), or leave part_type out", quote(part.PartType), strings.ToUpper(espGUID))
	}
}
