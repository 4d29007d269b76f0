package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apimodel"
	"github.com/kiln-project/kiln/internal/service/store"
)

// blueprintRequest is a stored blueprint as the API takes it.
type blueprintRequest = apimodel.BlueprintRequest

// readBlueprint decodes and checks a blueprint request, and replaces any
// plaintext password by its hash: a stored blueprint never holds one.
func (s *Server) readBlueprint(r *http.Request) (*blueprintRequest, error) {
	req, err := decodeBlueprint(r)
	if err != nil {
		return nil, s.bodyError(err, "the request body is not a blueprint: ")
	}
	settlePasswords(req.Customizations, nil)
	return req, s.checkBlueprint(r, req)
}

// decodeBlueprint decodes a blueprint request; the document has checked
// its shape.
func decodeBlueprint(r *http.Request) (*blueprintRequest, error) {
	var req blueprintRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// checkBlueprint checks a blueprint request and hashes its passwords.
func (s *Server) checkBlueprint(r *http.Request, req *blueprintRequest) error {
	checked, err := s.checkRequest(r.Context(), req.Name, req.Distribution, req.ImageRequests, req.Customizations)
	if err != nil {
		return err
	}
	hashPasswords(req.Customizations, checked.bp)
	return nil
}

// settlePasswords decides each requested user's password as image-builder
// does: a password given is the new one, an empty one removes it, and a
// user given without one keeps the password its namesake in stored has
// (the previous version, on an update) unless hasPassword is false.
// hasPassword itself, which clients send back as they read it, is not
// stored.
func settlePasswords(cust, stored map[string]any) {
	kept := map[any]any{}
	storedUsers, _ := stored["users"].([]any)
	for _, u := range storedUsers {
		if m, ok := u.(map[string]any); ok && m["password"] != nil {
			kept[m["name"]] = m["password"]
		}
	}
	users, _ := cust["users"].([]any)
	for _, u := range users {
		m, ok := u.(map[string]any)
		if !ok {
			continue
		}
		has, said := m["hasPassword"].(bool)
		delete(m, "hasPassword")
		pw, given := m["password"]
		switch {
		case given && pw == "":
			delete(m, "password")
		case !given && (has || !said) && kept[m["name"]] != nil:
			m["password"] = kept[m["name"]]
		}
	}
}

// hashPasswords puts the parsed blueprint's password hashes in place of
// what the request gave.
func hashPasswords(cust map[string]any, bp *blueprint.Blueprint) {
	users, _ := cust["users"].([]any)
	for _, u := range users {
		m, ok := u.(map[string]any)
		if !ok || m["password"] == nil || bp.Customizations == nil {
			continue
		}
		for _, bu := range bp.Customizations.User {
			if bu.Name == m["name"] && bu.Password != nil {
				m["password"] = *bu.Password
			}
		}
	}
}

func (s *Server) createBlueprint(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	req, err := s.readBlueprint(r)
	if err != nil {
		return err
	}
	id, err := s.storeBlueprint(r, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	return nil
}

func (s *Server) updateBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	req, err := decodeBlueprint(r)
	if err != nil {
		return s.bodyError(err, "the request body is not a blueprint: ")
	}
	_, prev, err := s.loadBlueprint(r, params["id"], 0)
	if err != nil {
		return err
	}
	settlePasswords(req.Customizations, prev.Customizations)
	if err := s.checkBlueprint(r, req); err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	b := store.Blueprint{ID: params["id"], OrgID: orgOf(r.Context()), Name: req.Name, Description: req.Description, Body: body, UpdatedAt: s.cfg.Now().UTC()}
	if _, err := s.cfg.Store.UpdateBlueprint(r.Context(), b); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return errNotFound
		case errors.Is(err, store.ErrConflict):
			return fieldError(http.StatusUnprocessableEntity, "name", fmt.Sprintf("a blueprint named %q exists already", req.Name))
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": b.ID})
	return nil
}

// loadBlueprint returns the caller's blueprint (version 0: the latest).
func (s *Server) loadBlueprint(r *http.Request, id string, version int) (store.Blueprint, *blueprintRequest, error) {
	b, err := s.cfg.Store.GetBlueprint(r.Context(), orgOf(r.Context()), id, version)
	if errors.Is(err, store.ErrNotFound) {
		return b, nil, errNotFound
	}
	if err != nil {
		return b, nil, err
	}
	var req blueprintRequest
	if err := json.Unmarshal(b.Body, &req); err != nil {
		return b, nil, err
	}
	return b, &req, nil
}

// versionParam reads a blueprint version from the query: omitted or -1
// (image-builder's "latest") is 0, the store's latest.
func versionParam(r *http.Request, name string) (int, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return 0, nil
	}
	v, err := strconv.Atoi(q.Get(name))
	if err != nil || v == 0 || v < -1 {
		return 0, newError(http.StatusBadRequest, fmt.Sprintf("query parameter %s: %q is no version; give a version (1 or more), or -1 or nothing for the latest", name, q.Get(name)))
	}
	if v == -1 {
		return 0, nil
	}
	return v, nil
}

func (s *Server) getBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	version, err := versionParam(r, "version")
	if err != nil {
		return err
	}
	b, req, err := s.loadBlueprint(r, params["id"], version)
	if err != nil {
		return err
	}
	lint, err := s.lint(r, req)
	if err != nil {
		return err
	}
	redactPasswords(req.Customizations)
	cust := req.Customizations
	if cust == nil {
		cust = map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": b.ID, "name": b.Name, "description": b.Description, "distribution": req.Distribution,
		"image_requests": req.ImageRequests, "customizations": cust, "version": b.Version, "last_modified_at": b.UpdatedAt,
		"lint": lint,
	})
	return nil
}

// blueprintLint is what a stored blueprint's checks find in it now, in
// image-builder's BlueprintLint shape: a blueprint that was fine when it
// was stored may not be after the service changed (an image type or
// package gone), and its errors say what to fix before it builds again.
type blueprintLint struct {
	Errors   []lintItem `json:"errors"`
	Warnings []lintItem `json:"warnings"`
}

// lintItem is one finding: name is the field it is about ("blueprint"
// when none), description what is wrong.
type lintItem struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// lint runs the checks a new blueprint gets on a stored one. The stored
// request is not changed.
func (s *Server) lint(r *http.Request, req *blueprintRequest) (blueprintLint, error) {
	out := blueprintLint{Errors: []lintItem{}, Warnings: []lintItem{}}
	cust, err := cloneMap(req.Customizations)
	if err != nil {
		return out, err
	}
	_, err = s.checkRequest(r.Context(), req.Name, req.Distribution, req.ImageRequests, cust)
	var ae *apiError
	if !errors.As(err, &ae) {
		return out, err
	}
	for i, d := range ae.Details {
		name := "blueprint"
		if i < len(ae.Fields) && ae.Fields[i] != "" {
			name = ae.Fields[i]
		}
		out.Errors = append(out.Errors, lintItem{Name: name, Description: d})
	}
	return out, nil
}

type blueprintItem struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Version        int       `json:"version"`
	LastModifiedAt time.Time `json:"last_modified_at"`
}

func (s *Server) getBlueprints(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	p := pageOf(r)
	q := r.URL.Query()
	var list []store.Blueprint
	var total int
	var err error
	if search := q.Get("search"); search != "" {
		list, total, err = s.searchBlueprints(r, q.Get("name"), search, p)
	} else {
		list, total, err = s.cfg.Store.ListBlueprints(r.Context(), orgOf(r.Context()), q.Get("name"), p)
	}
	if err != nil {
		return err
	}
	data := make([]blueprintItem, 0, len(list))
	for _, b := range list {
		data = append(data, blueprintItem{ID: b.ID, Name: b.Name, Description: b.Description, Version: b.Version, LastModifiedAt: b.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": listMeta{Count: total}, "links": links(r, p, total), "data": data})
	return nil
}

// searchBlueprints is a page of the org's blueprints (of the name, when
// given) whose name or description holds search, in any case, in the
// listing's order. The store lists by exact name only, so the org's
// blueprints are read a page at a time and matched here.
func (s *Server) searchBlueprints(r *http.Request, name, search string, p store.Page) ([]store.Blueprint, int, error) {
	const batch = 500
	needle := strings.ToLower(search)
	var matched []store.Blueprint
	for off := 0; ; off += batch {
		list, total, err := s.cfg.Store.ListBlueprints(r.Context(), orgOf(r.Context()), name, store.Page{Limit: batch, Offset: off})
		if err != nil {
			return nil, 0, err
		}
		for _, b := range list {
			if strings.Contains(strings.ToLower(b.Name), needle) || strings.Contains(strings.ToLower(b.Description), needle) {
				matched = append(matched, b)
			}
		}
		if len(list) < batch || off+batch >= total {
			break
		}
	}
	total := len(matched)
	lo, hi := min(p.Offset, total), min(p.Offset+p.Limit, total)
	return matched[lo:hi], total, nil
}

type blueprintVersion struct {
	Version        int       `json:"version"`
	LastModifiedAt time.Time `json:"last_modified_at"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
}

// getBlueprintVersions lists a blueprint's versions, newest first, each
// with the name and description it had.
func (s *Server) getBlueprintVersions(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	list, err := s.cfg.Store.ListBlueprintVersions(r.Context(), orgOf(r.Context()), params["id"])
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	data := make([]blueprintVersion, 0, len(list))
	for _, b := range list {
		var req blueprintRequest
		if err := json.Unmarshal(b.Body, &req); err != nil {
			return err
		}
		data = append(data, blueprintVersion{Version: b.Version, LastModifiedAt: b.UpdatedAt, Name: req.Name, Description: req.Description})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

func (s *Server) deleteBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	if err := s.cfg.Store.DeleteBlueprint(r.Context(), orgOf(r.Context()), params["id"]); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// composeBlueprint makes one compose per image request of the latest
// version, or of the version asked for (or per image type asked for).
func (s *Server) composeBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	var body struct {
		ImageTypes []string `json:"image_types"`
		Version    int      `json:"version"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r.Body, &body); err != nil && (r.ContentLength > 0 || !errors.Is(err, io.EOF)) {
			return s.bodyError(err, "the request body: ")
		}
	}
	b, req, err := s.loadBlueprint(r, params["id"], body.Version)
	if errors.Is(err, errNotFound) && body.Version > 0 {
		if _, _, lerr := s.loadBlueprint(r, params["id"], 0); lerr == nil {
			return fieldError(http.StatusUnprocessableEntity, "version", fmt.Sprintf("the blueprint has no version %d: GET /blueprints/{id}/versions lists them", body.Version))
		}
	}
	if err != nil {
		return err
	}
	// A type asked for picks the image requests of its type by any of
	// its names: image-builder's aws is kiln's ami.
	var wanted []string
	for _, t := range body.ImageTypes {
		if name := s.imageTypeName(t); name != "" {
			t = name
		}
		wanted = append(wanted, t)
	}
	var irs []imageRequest
	for _, ir := range req.ImageRequests {
		name := ir.ImageType
		if n := s.imageTypeName(name); n != "" {
			name = n
		}
		if len(wanted) == 0 || slices.Contains(wanted, name) {
			irs = append(irs, ir)
		}
	}
	if len(irs) == 0 {
		return fieldError(http.StatusBadRequest, "image_types", fmt.Sprintf("the blueprint has no image request of types %v", body.ImageTypes))
	}
	// Every compose is checked and made before any is stored, then all
	// are stored at once: a refused request (a check, the quota) changes
	// nothing.
	var cs []store.NewCompose
	for _, ir := range irs {
		cust, err := cloneMap(req.Customizations)
		if err != nil {
			return err
		}
		nc, err := s.newCompose(r, composeRequest{Distribution: req.Distribution, ImageName: b.Name, ImageDescription: b.Description,
			ClientID: "api", ImageRequests: []imageRequest{ir}, Customizations: cust}, b.ID, b.Version)
		if err != nil {
			return err
		}
		cs = append(cs, nc)
	}
	if err := s.storeComposes(r, cs); err != nil {
		return err
	}
	out := []map[string]string{}
	for _, nc := range cs {
		out = append(out, map[string]string{"id": nc.Compose.ID})
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func cloneMap(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

// blueprintComposesItem is a compose made from a blueprint, as listed.
type blueprintComposesItem struct {
	composesItem
	BlueprintID      string `json:"blueprint_id"`
	BlueprintVersion int    `json:"blueprint_version"`
}

func (s *Server) getBlueprintComposes(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	org, id := orgOf(r.Context()), params["id"]
	latest, _, err := s.loadBlueprint(r, id, 0)
	if err != nil {
		return err
	}
	version, err := versionParam(r, "blueprint_version")
	if err != nil {
		return err
	}
	if r.URL.Query().Get("blueprint_version") == "-1" {
		version = latest.Version
	}
	f, err := s.composeFilter(r)
	if err != nil {
		return err
	}
	f.BlueprintID, f.BlueprintVersion = id, version
	p := pageOf(r)
	list, total, err := s.cfg.Store.ListComposes(r.Context(), org, f, p)
	if err != nil {
		return err
	}
	items, err := s.composesItems(r, list)
	if err != nil {
		return err
	}
	data := make([]blueprintComposesItem, 0, len(items))
	for i, c := range list {
		data = append(data, blueprintComposesItem{composesItem: items[i], BlueprintID: c.BlueprintID, BlueprintVersion: c.BlueprintVersion})
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": listMeta{Count: total}, "links": links(r, p, total), "data": data})
	return nil
}

// blueprintExport is image-builder's BlueprintExportResponse: the
// blueprint's definition without its users' passwords, and where it was
// exported from. ImageRequests is kiln's extension, so that the export
// posted back to POST /blueprints makes the same blueprint.
type blueprintExport struct {
	Name           string         `json:"name"`
	Description    string         `json:"description"`
	Distribution   string         `json:"distribution"`
	Customizations map[string]any `json:"customizations"`
	Metadata       exportMetadata `json:"metadata"`
	ImageRequests  []imageRequest `json:"image_requests"`
}

// exportMetadata says where an export came from: parent_id is the
// blueprint exported, is_on_prem is false as from the hosted service,
// whose API this is.
type exportMetadata struct {
	ParentID   *string `json:"parent_id"`
	ExportedAt string  `json:"exported_at"`
	IsOnPrem   bool    `json:"is_on_prem"`
}

// exportBlueprint writes the latest version in image-builder's export
// shape, or in osbuild's blueprint format as TOML when asked for (kiln's
// extension). Passwords and their hashes are left out.
func (s *Server) exportBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	b, req, err := s.loadBlueprint(r, params["id"], 0)
	if err != nil {
		return err
	}
	if r.Header.Get("Accept") != "application/toml" {
		cust := req.Customizations
		if cust == nil {
			cust = map[string]any{}
		}
		users, _ := cust["users"].([]any)
		for _, u := range users {
			if m, ok := u.(map[string]any); ok {
				delete(m, "password")
			}
		}
		writeJSON(w, http.StatusOK, blueprintExport{Name: b.Name, Description: b.Description, Distribution: req.Distribution, Customizations: cust,
			ImageRequests: req.ImageRequests, Metadata: exportMetadata{ParentID: &b.ID, ExportedAt: s.cfg.Now().UTC().Format(time.RFC3339)}})
		return nil
	}
	if req.Customizations, err = s.imageBuilderFields(req.Distribution, req.Customizations); err != nil {
		return err
	}
	bp, err := osbuildBlueprint(b.Name, b.Description, req)
	if err != nil {
		return err
	}
	bp.Version = fmt.Sprintf("%d.0.0", b.Version)
	data, err := bp.ToTOML()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/toml")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", bp.Name+".toml"))
	_, _ = w.Write(data)
	return nil
}

// osbuildBlueprint is a stored blueprint request in osbuild's blueprint
// format, without its users' passwords. Its customizations are those
// imageBuilderFields gives.
func osbuildBlueprint(name, description string, req *blueprintRequest) (*blueprint.Blueprint, error) {
	users, _ := req.Customizations["users"].([]any)
	for _, u := range users {
		if m, ok := u.(map[string]any); ok {
			delete(m, "password")
		}
	}
	bp, err := blueprintFromRequest(blueprintName(name), req.Customizations)
	if err != nil {
		return nil, err
	}
	bp.Description, bp.Distro = description, req.Distribution
	return bp, nil
}

// renderBlueprint answers the TOML that exporting the blueprint request
// would give, after the checks creating it makes; it stores nothing.
func (s *Server) renderBlueprint(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	req, err := s.readBlueprint(r)
	if err != nil {
		return err
	}
	if req.Customizations, err = s.imageBuilderFields(req.Distribution, req.Customizations); err != nil {
		return err
	}
	bp, err := osbuildBlueprint(req.Name, req.Description, req)
	if err != nil {
		return err
	}
	data, err := bp.ToTOML()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"toml": string(data)})
	return nil
}
