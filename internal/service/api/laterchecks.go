package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// A request the OpenAPI document refuses is still checked as a blueprint
// as far as it can be, so that one answer lists every problem: the
// document's (a value of the wrong type, a property it does not know)
// and the blueprint validator's, the distribution's and the image
// requests' about the rest of the body.

// requestCheck decodes a body of one operation and runs its handler's
// checks, without acting.
type requestCheck func(ctx context.Context, s *Server, body []byte) error

// requestChecks are the operations whose body is a compose or a
// blueprint request, by operation ID.
var requestChecks = map[string]requestCheck{
	"composeImage": func(ctx context.Context, s *Server, body []byte) error {
		var req composeRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil
		}
		_, err := s.checkRequest(ctx, req.ImageName, req.Distribution, req.ImageRequests, req.Customizations)
		return err
	},
	"createBlueprint": checkBlueprintBody,
	"updateBlueprint": checkBlueprintBody,
	"renderBlueprint": checkBlueprintBody,
}

func checkBlueprintBody(ctx context.Context, s *Server, body []byte) error {
	var req blueprintRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil
	}
	_, err := s.checkRequest(ctx, req.Name, req.Distribution, req.ImageRequests, req.Customizations)
	return err
}

// furtherProblems are the problems the operation's own checks find in
// what is left of the request body once the values the document refused
// are taken out; problems about the refused values (or inside or above
// them) are left to the document's words. None when the body cannot be
// read back or is not a JSON object.
func (s *Server) furtherProblems(r *http.Request, opID string, validation error, schema []problem) []problem {
	check := requestChecks[opID]
	if check == nil || r.Body == nil {
		return nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body == nil {
		return nil
	}
	for _, ptr := range refusedValues(validation) {
		prune(body, ptr)
	}
	pruned, err := json.Marshal(body)
	if err != nil {
		return nil
	}
	var ae *apiError
	if err := check(r.Context(), s, pruned); err == nil || !errors.As(err, &ae) {
		return nil
	}
	var out []problem
	for i, d := range ae.Details {
		field := ""
		if i < len(ae.Fields) {
			field = ae.Fields[i]
		}
		if field == "" || overlaps(field, schema) {
			continue
		}
		out = append(out, problem{Field: field, Message: strings.TrimPrefix(d, field+": ")})
	}
	return out
}

// refusedValues are the JSON pointers of the body's values the document
// refused: the value itself, or the property it does not know.
func refusedValues(err error) [][]string {
	var out [][]string
	for _, leaf := range validationLeaves(err) {
		var re *openapi3filter.RequestError
		var se *openapi3.SchemaError
		if !errors.As(leaf, &re) || re.RequestBody == nil || !errors.As(leaf, &se) {
			continue
		}
		ptr := se.JSONPointer()
		if m := unsupportedProperty.FindStringSubmatch(se.Reason); m != nil {
			ptr = append(append([]string(nil), ptr...), m[1])
		}
		if len(ptr) > 0 {
			out = append(out, ptr)
		}
	}
	return out
}

// prune takes the value at ptr out of v: a property is deleted, an item
// of a list is set to null (the others keep their indexes, so that
// problems about them keep their fields).
func prune(v any, ptr []string) {
	for i, key := range ptr {
		last := i == len(ptr)-1
		switch c := v.(type) {
		case map[string]any:
			if last {
				delete(c, key)
				return
			}
			v = c[key]
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n >= len(c) {
				return
			}
			if last {
				c[n] = nil
				return
			}
			v = c[n]
		default:
			return
		}
	}
}

// overlaps says whether field is the field of one of the problems, or
// lies inside or around one.
func overlaps(field string, ps []problem) bool {
	within := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
	}
	for _, p := range ps {
		if p.Field != "" && (within(field, p.Field) || within(p.Field, field)) {
			return true
		}
	}
	return false
}
