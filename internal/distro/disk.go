package distro

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/disk"
)

// diskRequest is what a blueprint's customizations.filesystem or
// customizations.disk ask of an image type's partition table.
func diskRequest(it *ImageType, c *blueprint.Customizations) disk.Request {
	req := disk.Request{MinDiskSize: it.DefaultSize}
	for _, fs := range c.Filesystem {
		req.Mounts = append(req.Mounts, disk.Mount{Mountpoint: fs.Mountpoint, MinSize: disk.Size(fs.MinSize)})
	}
	if dk := c.Disk; dk != nil {
		req.Replace, req.Type = true, disk.TableType(dk.Type)
		req.MinDiskSize = max(req.MinDiskSize, disk.Size(dk.MinSize))
		req.StartOffset = disk.Size(dk.StartOffset)
		for _, part := range dk.Partitions {
			if part.Type != "" && part.Type != "plain" {
				continue // lvm and btrfs are refused on their own; the rest of the layout is still checked
			}
			req.Mounts = append(req.Mounts, disk.Mount{
				Mountpoint: part.Mountpoint, MinSize: disk.Size(part.MinSize), FSType: part.FSType, Label: part.Label,
				PartType: part.PartType, PartLabel: part.PartLabel, PartUUID: part.PartUUID,
			})
		}
	}
	return req
}

var (
	gptTypeRe = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	dosTypeRe = regexp.MustCompile(`^(0x)?[0-9A-Fa-f]{2}$`)
)

// diskProblems checks the blueprint's disk layout against the image type's
// partition table, so that what the manifest would refuse is reported with
// the other problems: partition fields that do not fit the image type's
// table type (when the blueprint leaves the type to the image type), and
// layouts the table cannot hold.
func (it *ImageType) diskProblems(c *blueprint.Customizations) blueprint.Errors {
	if it.PartitionTable == nil || (len(c.Filesystem) == 0 && c.Disk == nil) {
		return nil
	}
	var errs blueprint.Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, blueprint.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	field := "customizations.filesystem"
	if dk := c.Disk; dk != nil {
		field = "customizations.disk"
		if slices.ContainsFunc(dk.Partitions, func(p blueprint.PartitionCustomization) bool {
			return p.Type == "lvm" || (p.Mountpoint == "/boot/efi" && p.FSType != "" && p.FSType != "vfat")
		}) {
			return nil // refused on their own (an ESP that is not vfat by the blueprint's checks); no layout to try
		}
		if dk.Type == "" {
			tableType := it.PartitionTable.Type
			for i, p := range dk.Partitions {
				at := fmt.Sprintf("customizations.disk.partitions[%d]", i)
				switch {
				case tableType == disk.GPT && dosTypeRe.MatchString(p.PartType):
					add(at+".part_type", "%q is an MBR type, but image type %s writes a gpt table; give a type GUID such as \"0FC63DAF-8483-4772-8E79-3D69D8477DE4\", or set customizations.disk.type = \"dos\"", p.PartType, it.Name)
				case tableType == disk.DOS && gptTypeRe.MatchString(p.PartType):
					add(at+".part_type", "%q is a GPT type GUID, but image type %s writes a dos table; give an MBR type such as \"83\", or set customizations.disk.type = \"gpt\"", p.PartType, it.Name)
				}
				if tableType == disk.DOS && p.PartLabel != "" {
					add(at+".part_label", "image type %s writes a dos table, which has no partition labels; set customizations.disk.type = \"gpt\" or remove part_label", it.Name)
				}
				if tableType == disk.DOS && p.PartUUID != "" {
					add(at+".part_uuid", "image type %s writes a dos table, which has no partition GUIDs; set customizations.disk.type = \"gpt\" or remove part_uuid", it.Name)
				}
			}
		}
	}
	if _, err := disk.NewPartitionTable(*it.PartitionTable, diskRequest(it, c), disk.NewIDs(0)); err != nil {
		add(field, "%v", err)
	}
	return errs
}

// Reasons for the disk customizations no image type builds. CheckBlueprint
// gives them as the problem, and kiln describe lists them.
const (
	lvmRefusal = "LVM partitions cannot be built: kiln writes disk images as plain files, without the device-mapper devices LVM needs to create its volumes; use plain partitions"
	xfsRefusal = "xfs filesystems cannot be built yet: use ext4"
)

// DiskCustomization says what customizations.disk builds for an image type
// and why the rest is refused.
type DiskCustomization struct {
	// TableTypes are the partition table types a blueprint may ask for,
	// the image type's default first.
	TableTypes []string `json:"table_types"`
	// Filesystems are the fs_type values built.
	Filesystems []string `json:"filesystems"`
	// Order says where the partitions end up.
	Order string `json:"order"`
	// Refused maps each refused feature to the reason.
	Refused map[string]string `json:"refused"`
}

// DiskCustomization returns what customizations.disk does for this image
// type, or nil when the type does not take it.
func (it *ImageType) DiskCustomization() *DiskCustomization {
	if it.PartitionTable == nil || !slices.Contains(it.SupportedOptions, "customizations.disk") {
		return nil
	}
	types := []string{string(disk.GPT), string(disk.DOS)}
	if it.PartitionTable.Type == disk.DOS {
		types[0], types[1] = types[1], types[0]
	}
	var boot []string
	for _, p := range it.PartitionTable.Partitions {
		if p.Role == disk.RoleBIOSBoot || p.Role == disk.RoleESP {
			boot = append(boot, string(p.Role))
		}
	}
	order := "the blueprint's partitions in the order given"
	if len(boot) > 0 {
		order = "the image type's boot partitions first (" + strings.Join(boot, ", ") + "; a dos table has no bios-boot), then " + order
	}
	order += "; without a \"/\" partition, a root partition that fills the disk is added last"
	return &DiskCustomization{
		TableTypes:  types,
		Filesystems: []string{"ext4", "vfat", "swap"},
		Order:       order,
		Refused: map[string]string{
			"lvm":                    lvmRefusal,
			"btrfs":                  "btrfs partitions are not supported yet; use plain partitions",
			"xfs":                    xfsRefusal,
			"sector_size = 4096":     "the virtual disks of the platforms these images run on present 512-byte sectors, where a table written for 4096-byte sectors is not found",
			"dos extended partition": "only primary partitions are written: at most 4 on a dos table, counting the ESP",
		},
	}
}
