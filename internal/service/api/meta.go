package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/apimodel"
	"github.com/kiln-project/kiln/internal/distro"
)

type distributionItem struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

func (s *Server) getDistributions(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := refuseBootcFilters(r.URL.Query()); err != nil {
		return err
	}
	var out []distributionItem
	for _, d := range s.cfg.Distros.Distros() {
		out = append(out, distributionItem{Name: d.Name, Description: d.Product})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// refuseBootcFilters refuses the listing's kind=bootc and the filters that
// only apply with it: kiln builds no image-mode (bootc) distributions, so
// honouring them would silently answer the classic ones.
func refuseBootcFilters(q url.Values) error {
	var ps []string
	if q.Has("kind") {
		ps = append(ps, fmt.Sprintf("query parameter kind: %q distributions are not built by this service; leave kind out for the distributions it builds", q.Get("kind")))
	}
	for _, name := range []string{"distro", "arch", "type"} {
		if q.Has(name) {
			ps = append(ps, fmt.Sprintf("query parameter %s: filters image-mode (kind=bootc) distributions only, which this service does not build; leave it out", name))
		}
	}
	if len(ps) > 0 {
		return newError(http.StatusBadRequest, ps...)
	}
	return nil
}

// distributionDetail is GET /distributions/{distribution}: image-builder's
// DistributionDetails (architectures as an object of image types keyed by
// name), plus kiln's flat list of image types, which the web UI reads.
type distributionDetail struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Product     string `json:"product"`
	Codename    string `json:"codename"`
	Releasever  string `json:"releasever"`
	OSVersion   string `json:"os_version"`
	// Architectures maps each buildable architecture to its image types.
	Architectures map[string]*architectureInfo `json:"architectures"`
	// ImageTypes is kiln's extension: each type once, with the
	// architectures that build it.
	ImageTypes []*imageTypeInfo `json:"image_types"`
}

// architectureInfo is one architecture of a distribution and its image
// types by name.
type architectureInfo struct {
	Name       string                    `json:"name"`
	ImageTypes map[string]*archImageType `json:"image_types"`
}

// archImageType is an image type of one architecture, in image-builder's
// ImageTypeInfo shape.
type archImageType struct {
	Name                      string   `json:"name"`
	Aliases                   []string `json:"aliases"`
	Filename                  string   `json:"filename"`
	MIMEType                  string   `json:"mime_type"`
	DefaultSize               uint64   `json:"default_size,omitempty"`
	BootMode                  string   `json:"boot_mode"`
	SupportedBlueprintOptions []string `json:"supported_blueprint_options,omitempty"`
}

// distributionFilter is what GET /distributions/{distribution} narrows its
// answer to; empty lists keep everything.
type distributionFilter struct {
	arches, types []string
}

// readDistributionFilter reads the architecture and image_type filters
// (repeatable) and refuses a name the distribution does not have.
func readDistributionFilter(d *distro.Distro, q url.Values) (distributionFilter, error) {
	var f distributionFilter
	var ps []string
	for _, name := range q["architecture"] {
		a, err := d.Arch(name)
		switch {
		case err != nil:
			ps = append(ps, "query parameter architecture: "+err.Error())
		case a.NotBuildable != "":
			ps = append(ps, fmt.Sprintf("query parameter architecture: %s images cannot be built yet: %s", name, a.NotBuildable))
		default:
			f.arches = append(f.arches, a.Name)
		}
	}
	for _, name := range q["image_type"] {
		it := imageTypeOf(d, name)
		if it == "" {
			ps = append(ps, "query parameter image_type: "+unknownImageType(d.Name, name))
			continue
		}
		f.types = append(f.types, it)
	}
	if len(ps) > 0 {
		return f, newError(http.StatusBadRequest, ps...)
	}
	return f, nil
}

func (f distributionFilter) keeps(arch, imageType string) bool {
	return (len(f.arches) == 0 || slices.Contains(f.arches, arch)) && (len(f.types) == 0 || slices.Contains(f.types, imageType))
}

// imageTypeOf is the name of d's image type that name names or is an alias
// of, on any architecture; "" when none.
func imageTypeOf(d *distro.Distro, name string) string {
	for _, a := range d.Arches() {
		for _, it := range a.ImageTypes() {
			if it.Name == name || slices.Contains(it.Aliases, name) {
				return it.Name
			}
		}
	}
	return ""
}

// unknownImageType says that distribution has no image type name, and
// why when it is one of image-builder's types that kiln does not build.
func unknownImageType(distribution, name string) string {
	if why, ok := apimodel.UnbuiltImageTypes[name]; ok {
		return fmt.Sprintf("%s is an image type of image-builder that this service does not build (%s); GET /distributions/%s lists the types it builds", name, why, distribution)
	}
	return fmt.Sprintf("%s has no image type or alias %q; GET /distributions/%s lists them", distribution, name, distribution)
}

func (s *Server) getDistribution(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	d, err := s.cfg.Distros.Distro(params["distribution"])
	if err != nil {
		return newError(http.StatusNotFound, err.Error())
	}
	f, err := readDistributionFilter(d, r.URL.Query())
	if err != nil {
		return err
	}
	out := distributionDetail{Name: d.Name, Description: d.Product, Product: d.Product, Codename: d.Codename,
		Releasever: releaseOf(d), OSVersion: releaseOf(d), Architectures: map[string]*architectureInfo{}, ImageTypes: []*imageTypeInfo{}}
	byName := map[string]*imageTypeInfo{}
	for _, a := range d.Arches() {
		if a.NotBuildable != "" || (len(f.arches) > 0 && !slices.Contains(f.arches, a.Name)) {
			continue
		}
		ai := &architectureInfo{Name: a.Name, ImageTypes: map[string]*archImageType{}}
		out.Architectures[a.Name] = ai
		for _, it := range a.ImageTypes() {
			if !f.keeps(a.Name, it.Name) {
				continue
			}
			aliases := it.Aliases
			if aliases == nil {
				aliases = []string{}
			}
			ai.ImageTypes[it.Name] = &archImageType{Name: it.Name, Aliases: aliases, Filename: it.Filename("<name>"), MIMEType: it.MIMEType,
				DefaultSize: uint64(it.DefaultSize), BootMode: bootMode(it.Bootloader), SupportedBlueprintOptions: it.SupportedOptions}
			info := byName[it.Name]
			if info == nil {
				info = &imageTypeInfo{Name: it.Name, Aliases: aliases, Description: it.Description, Filename: it.Filename("<name>"), MIMEType: it.MIMEType, Bootable: it.Bootable}
				byName[it.Name] = info
				out.ImageTypes = append(out.ImageTypes, info)
			}
			info.Architectures = append(info.Architectures, a.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// releaseOf is a distribution's release number: "12" of debian-12.
func releaseOf(d *distro.Distro) string {
	_, release, _ := strings.Cut(d.Name, "-")
	return release
}

// bootMode is image-builder's boot_mode of a bootloader: legacy, uefi,
// hybrid or none.
func bootMode(bootloader string) string {
	switch bootloader {
	case distro.BootBIOS:
		return "legacy"
	case distro.BootUEFI, distro.BootHybrid:
		return bootloader
	}
	return "none"
}

// imageTypeInfo is one image type of a distribution as the API lists it.
type imageTypeInfo struct {
	Name          string   `json:"name"`
	Aliases       []string `json:"aliases"`
	Description   string   `json:"description"`
	Filename      string   `json:"filename"`
	MIMEType      string   `json:"mime_type"`
	Bootable      bool     `json:"bootable"`
	Architectures []string `json:"architectures"`
}

type architectureItem struct {
	Arch         string       `json:"arch"`
	ImageTypes   []string     `json:"image_types"`
	Repositories []repository `json:"repositories"`
}

type repository struct {
	BaseURL string `json:"baseurl,omitempty"`
	RHSM    bool   `json:"rhsm"`
}

// getArchitectures lists each architecture's image types by every name a
// request may use for them: kiln's names and their aliases, which include
// image-builder's (guest-image, aws, azure, ...), so image-builder's
// frontend finds the targets it offers.
func (s *Server) getArchitectures(w http.ResponseWriter, _ *http.Request, params map[string]string) error {
	d, err := s.cfg.Distros.Distro(params["distribution"])
	if err != nil {
		return newError(http.StatusNotFound, err.Error())
	}
	out := []architectureItem{}
	for _, a := range d.Arches() {
		if a.NotBuildable != "" {
			continue
		}
		item := architectureItem{Arch: a.Name, ImageTypes: []string{}, Repositories: []repository{}}
		for _, it := range a.ImageTypes() {
			item.ImageTypes = append(item.ImageTypes, it.Name)
			item.ImageTypes = append(item.ImageTypes, it.Aliases...)
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getIdentity names the organization the caller acts for.
func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	writeJSON(w, http.StatusOK, map[string]string{"org_id": orgOf(r.Context())})
	return nil
}

func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
	return nil
}

// getReadiness reports ready when the database answers.
func (s *Server) getReadiness(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if _, err := s.cfg.Store.Counts(r.Context()); err != nil {
		s.cfg.Log.Error("not ready: the database does not answer", "err", err)
		writeError(w, r, newError(http.StatusServiceUnavailable, "the database does not answer"))
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"readiness": "ready"})
	return nil
}

func (s *Server) getOpenapi(w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.spec.json)
	return nil
}
