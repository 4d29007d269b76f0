package distro

import (
	"fmt"
	"regexp"
	"slices"

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
		if slices.ContainsFunc(dk.Partitions, func(p blueprint.PartitionCustomization) bool { return p.Type == "lvm" }) {
			return nil // refused on its own; there is no layout to check
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
