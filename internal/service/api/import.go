package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apimodel"
	"github.com/kiln-project/kiln/internal/service/store"
)

// importBlueprint stores a blueprint file in osbuild's format (TOML or
// JSON, by Content-Type) as a new blueprint that builds the image types
// the query names. Its name and description come from the file; every
// problem names the file's field in the file's own spelling, and a
// refused file changes nothing.
func (s *Server) importBlueprint(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	data, format, err := s.readBody(r)
	if err != nil {
		return err
	}
	if export, ok := imageBuilderExport(data, format); ok {
		return s.importExport(w, r, export)
	}
	bp, err := blueprint.Parse(data, format)
	if err != nil {
		return fileProblems(err)
	}
	cust, err := apimodel.CustomizationsFromBlueprint(bp)
	if err != nil {
		return unsupportedProblems(err)
	}
	q := r.URL.Query()
	req := &blueprintRequest{Name: bp.Name, Description: bp.Description, Distribution: q.Get("distribution"), Customizations: cust}
	for _, t := range q["image_type"] {
		req.ImageRequests = append(req.ImageRequests, imageRequest{Architecture: q.Get("architecture"), ImageType: t, UploadRequest: uploadRequest{Type: "local"}})
	}
	if _, err := s.checkImageRequests(bp, req.Distribution, req.ImageRequests, fileProblems); err != nil {
		return queryProblems(err)
	}
	// The stored request is checked as any created blueprint is.
	checked, err := s.checkRequest(r.Context(), req.Name, req.Distribution, req.ImageRequests, req.Customizations)
	if err != nil {
		return err
	}
	hashPasswords(req.Customizations, checked.bp)
	id, err := s.storeBlueprint(r, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	return nil
}

// readBody reads the request body and the blueprint format its
// Content-Type names.
func (s *Server) readBody(r *http.Request) ([]byte, blueprint.Format, error) {
	format := blueprint.FormatJSON
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/toml" {
		format = blueprint.FormatTOML
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		if e := s.bodyReadError(err); e != nil {
			return nil, format, e
		}
		return nil, format, err
	}
	return data, format, nil
}

// imageBuilderExport is a JSON body in image-builder's export shape (GET
// /blueprints/{id}/export): a blueprint request with metadata, which no
// osbuild blueprint file has.
func imageBuilderExport(data []byte, format blueprint.Format) (*blueprintRequest, bool) {
	if format != blueprint.FormatJSON {
		return nil, false
	}
	var probe struct {
		Metadata map[string]any `json:"metadata"`
	}
	if json.Unmarshal(data, &probe) != nil || probe.Metadata == nil {
		return nil, false
	}
	var req blueprintRequest
	if json.Unmarshal(data, &req) != nil {
		return nil, false
	}
	return &req, true
}

// importExport stores an export as a new blueprint, as POST /blueprints
// would: the query's image requests, when it names image types, replace
// the export's own.
func (s *Server) importExport(w http.ResponseWriter, r *http.Request, req *blueprintRequest) error {
	q := r.URL.Query()
	if d := q.Get("distribution"); d != "" {
		req.Distribution = d
	}
	if types := q["image_type"]; len(types) > 0 {
		req.ImageRequests = nil
		for _, t := range types {
			req.ImageRequests = append(req.ImageRequests, imageRequest{Architecture: q.Get("architecture"), ImageType: t, UploadRequest: uploadRequest{Type: "local"}})
		}
	}
	settlePasswords(req.Customizations, nil)
	if err := s.checkBlueprint(r, req); err != nil {
		return err
	}
	id, err := s.storeBlueprint(r, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	return nil
}

// fileProblems are a blueprint file's problems under its own field paths.
func fileProblems(err error) error {
	var errs blueprint.Errors
	if !errors.As(err, &errs) {
		return newError(http.StatusBadRequest, err.Error())
	}
	var ps []problem
	for _, p := range errs {
		ps = append(ps, problem{Field: p.Path, Message: p.Message})
	}
	return problemsError(http.StatusBadRequest, ps)
}

// unsupportedProblems names each field of the file the API cannot carry.
func unsupportedProblems(err error) error {
	var ue *apimodel.UnsupportedError
	if !errors.As(err, &ue) {
		return newError(http.StatusBadRequest, err.Error())
	}
	var ps []problem
	for _, f := range ue.Fields {
		ps = append(ps, problem{Field: f, Message: "the service's API cannot carry this field yet: build this blueprint with `kiln build`, or leave it out"})
	}
	return problemsError(http.StatusBadRequest, ps)
}

// queryProblems words the errors about an import's image requests, which
// come from its query, as about the query's parameters; problems with the
// file keep their fields.
func queryProblems(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	out := &apiError{Status: ae.Status, Header: ae.Header}
	for i, d := range ae.Details {
		field := ""
		if i < len(ae.Fields) {
			field = ae.Fields[i]
		}
		if param, ok := queryParams[trimIndex(field)]; ok {
			d, field = "query parameter "+param+": "+d[len(field)+2:], ""
		}
		out.Details = append(out.Details, d)
		out.Fields = append(out.Fields, field)
	}
	return out
}

// queryParams are the import's query parameters by the request field
// they fill.
var queryParams = map[string]string{
	"distribution":                         "distribution",
	"image_requests[].architecture":        "architecture",
	"image_requests[].image_type":          "image_type",
	"image_requests[].upload_request.type": "image_type",
}

// requestIndex is the index of an image request in a field path.
var requestIndex = regexp.MustCompile(`^image_requests\[\d+\]`)

// trimIndex drops the index of image_requests[i] from a field path.
func trimIndex(field string) string {
	return requestIndex.ReplaceAllString(field, "image_requests[]")
}

// storeBlueprint stores a checked request as version 1 of a new
// blueprint; a taken name is a 422 about the name.
func (s *Server) storeBlueprint(r *http.Request, req *blueprintRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	b := store.Blueprint{ID: store.NewID(), OrgID: orgOf(r.Context()), Name: req.Name, Description: req.Description, Body: body, UpdatedAt: s.cfg.Now().UTC()}
	if err := s.cfg.Store.CreateBlueprint(r.Context(), b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", fieldError(http.StatusUnprocessableEntity, "name", fmt.Sprintf("a blueprint named %q exists already: update it (PUT /blueprints/{id}) or choose another name", req.Name))
		}
		return "", err
	}
	return b.ID, nil
}
