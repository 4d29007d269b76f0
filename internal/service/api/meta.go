package api

import (
	"net/http"
)

type distributionItem struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

func (s *Server) getDistributions(w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	var out []distributionItem
	for _, d := range s.cfg.Distros.Distros() {
		out = append(out, distributionItem{Name: d.Name, Description: d.Product})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getDistribution(w http.ResponseWriter, _ *http.Request, params map[string]string) error {
	d, err := s.cfg.Distros.Distro(params["distribution"])
	if err != nil {
		return newError(http.StatusNotFound, err.Error())
	}
	arches := []string{}
	types := []*imageTypeInfo{}
	byName := map[string]*imageTypeInfo{}
	for _, a := range d.Arches() {
		if a.NotBuildable != "" {
			continue
		}
		arches = append(arches, a.Name)
		for _, it := range a.ImageTypes() {
			info := byName[it.Name]
			if info == nil {
				info = &imageTypeInfo{Name: it.Name, Aliases: it.Aliases, Description: it.Description, Filename: it.Filename("<name>"), MIMEType: it.MIMEType, Bootable: it.Bootable}
				if info.Aliases == nil {
					info.Aliases = []string{}
				}
				byName[it.Name] = info
				types = append(types, info)
			}
			info.Architectures = append(info.Architectures, a.Name)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": d.Name, "description": d.Product, "architectures": arches, "image_types": types})
	return nil
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
		item := architectureItem{Arch: a.Name, Repositories: []repository{}}
		for _, it := range a.ImageTypes() {
			item.ImageTypes = append(item.ImageTypes, it.Name)
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
