package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
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
	var req blueprintRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return nil, s.bodyError(err, "the request body is not a blueprint: ")
	}
	checked, err := s.checkRequest(r.Context(), req.Name, req.Distribution, req.ImageRequests, req.Customizations)
	if err != nil {
		return nil, err
	}
	hashPasswords(req.Customizations, checked.bp)
	return &req, nil
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
	req, err := s.readBlueprint(r)
	if err != nil {
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

func (s *Server) getBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	version, _ := strconv.Atoi(r.URL.Query().Get("version"))
	b, req, err := s.loadBlueprint(r, params["id"], version)
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
	})
	return nil
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
	list, total, err := s.cfg.Store.ListBlueprints(r.Context(), orgOf(r.Context()), r.URL.Query().Get("name"), p)
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
	var irs []imageRequest
	for _, ir := range req.ImageRequests {
		if len(body.ImageTypes) == 0 || slices.Contains(body.ImageTypes, ir.ImageType) {
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
	if _, _, err := s.loadBlueprint(r, id, 0); err != nil {
		return err
	}
	version, _ := strconv.Atoi(r.URL.Query().Get("blueprint_version"))
	p := pageOf(r)
	list, total, err := s.cfg.Store.ListBlueprintComposes(r.Context(), org, id, version, p)
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

// exportBlueprint writes the latest version in osbuild's blueprint format:
// JSON, or TOML when asked for. Password hashes are left out.
func (s *Server) exportBlueprint(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	b, req, err := s.loadBlueprint(r, params["id"], 0)
	if err != nil {
		return err
	}
	bp, err := osbuildBlueprint(b.Name, b.Description, req)
	if err != nil {
		return err
	}
	bp.Version = fmt.Sprintf("%d.0.0", b.Version)
	if r.Header.Get("Accept") == "application/toml" {
		data, err := bp.ToTOML()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/toml")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", bp.Name+".toml"))
		_, _ = w.Write(data)
		return nil
	}
	writeJSON(w, http.StatusOK, bp)
	return nil
}

// osbuildBlueprint is a stored blueprint request in osbuild's blueprint
// format, without its users' passwords.
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
