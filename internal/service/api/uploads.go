package api

import (
	"net/http"
	"strings"

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

// uploadTypeItem is one upload type this server delivers to and, for a
// distribution and architecture, the image types it takes.
type uploadTypeItem struct {
	Type       string   `json:"type"`
	ImageTypes []string `json:"image_types,omitempty"`
}

// getUploadTypes lists the upload types this server is configured for (a
// kiln extension: image-builder's are fixed). With distribution and
// architecture it names, for each, the image types it takes, so a client
// offers only what will be accepted: a target whose check refuses only
// the (absent) options takes the image.
func (s *Server) getUploadTypes(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	q := r.URL.Query()
	dist, arch := q.Get("distribution"), q.Get("architecture")
	var types []*distro.ImageType
	if dist != "" || arch != "" {
		if dist == "" || arch == "" {
			return fieldError(http.StatusBadRequest, "distribution", "give distribution and architecture together, or neither")
		}
		d, err := s.cfg.Distros.Distro(dist)
		if err != nil {
			return fieldError(http.StatusBadRequest, "distribution", err.Error())
		}
		a, err := d.Arch(arch)
		if err != nil {
			return fieldError(http.StatusBadRequest, "architecture", err.Error())
		}
		types = a.ImageTypes()
	}
	out := []uploadTypeItem{}
	for _, name := range s.cfg.Targets.Types() {
		tg := s.cfg.Targets[name]
		item := uploadTypeItem{Type: name}
		for _, it := range types {
			if err := tg.Check(targetImage(it, arch), nil); err == nil || strings.HasPrefix(err.Error(), "options.") {
				item.ImageTypes = append(item.ImageTypes, it.Name)
			}
		}
		if types != nil && item.ImageTypes == nil {
			item.ImageTypes = []string{}
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}
