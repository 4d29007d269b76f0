package api

import (
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/target"
)

// targetImage is what a target needs to know of an image type to check
// it can take its images, and to register them.
func targetImage(it *distro.ImageType, arch string) target.Image {
	boot := it.Bootloader
	if boot == "" || !it.Bootable {
		boot = distro.BootNone
	}
	return target.Image{Type: it.Name, Format: it.Output.Format, Compression: it.Output.Compression, BootMode: boot, Arch: arch}
}

// uploadName is the default name of what a target makes of the image:
// the compose's image_name, else kiln-<compose id>.
func uploadName(imageName, composeID string) string {
	if imageName != "" {
		return imageName
	}
	return "kiln-" + composeID
}
