package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// Package is one search hit.
type Package struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
	Version string `json:"version"`
}

// PackageSearcher searches a distribution's repository metadata.
type PackageSearcher interface {
	Search(ctx context.Context, distro, arch, query string, limit, offset int) ([]Package, int, error)
}

// getPackages searches the packages of a distribution and architecture.
func (s *Server) getPackages(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	q := r.URL.Query()
	d, err := s.cfg.Distros.Distro(q.Get("distribution"))
	if err != nil {
		return newError(http.StatusBadRequest, "query parameter distribution: "+err.Error())
	}
	a, err := d.Arch(q.Get("architecture"))
	if err != nil {
		return newError(http.StatusBadRequest, "query parameter architecture: "+err.Error())
	}
	if s.cfg.Packages == nil {
		return newError(http.StatusServiceUnavailable, "package search is not configured on this server")
	}
	p := pageOf(r)
	if v, err := strconv.Atoi(q.Get("limit")); err == nil {
		p.Limit = v
	}
	found, total, err := s.cfg.Packages.Search(r.Context(), d.Name, a.Name, q.Get("search"), p.Limit, p.Offset)
	if err != nil {
		s.cfg.Log.Error("package search", "err", err, "request_id", requestID(r.Context()))
		return newError(http.StatusBadGateway, fmt.Sprintf("the repository metadata of %s could not be read", d.Name))
	}
	if found == nil {
		found = []Package{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": listMeta{Count: total}, "links": links(r, p, total), "data": found})
	return nil
}
