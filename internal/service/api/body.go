package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kiln-project/kiln/internal/service/bodydeadline"
)

// decodeJSON reads the request body as exactly one JSON value into v:
// anything after it but white space (a second value, stray bytes) is
// refused, so what a client sent is never read only in part. The error
// is the decoder's, or the API's when something follows the value.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return err
	}
	_, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return newError(http.StatusBadRequest, fmt.Sprintf("the request body goes on after the JSON value, at byte %d: send exactly one JSON value", dec.InputOffset()))
}

// bodyError is what a handler answers when its body does not decode:
// the API's own errors as they are, else a 400 saying what the body
// should have been.
func (s *Server) bodyError(err error, what string) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if e := s.bodyReadError(err); e != nil {
		return e
	}
	return newError(http.StatusBadRequest, what+err.Error())
}

// bodyReadError is the API's answer when reading the request body failed
// for a reason the client must hear: 413 past the size limit, 408 when
// the body did not arrive in time (the connection then closes). Nil for
// any other error.
func (s *Server) bodyReadError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit))
	}
	if bodydeadline.Exceeded(err) {
		e := newError(http.StatusRequestTimeout, fmt.Sprintf("the request body did not arrive within %s of its headers: send it at once", s.cfg.BodyTimeout))
		e.Header = http.Header{"Connection": []string{"close"}}
		return e
	}
	return nil
}

// unsupportedMediaType refuses a request body whose Content-Type the
// operation does not take (nil when it takes it, or when there is no
// body).
func unsupportedMediaType(r *http.Request, op *openapi3.Operation) *apiError {
	if op.RequestBody == nil || op.RequestBody.Value == nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	content := op.RequestBody.Value.Content
	ct := r.Header.Get("Content-Type")
	if len(content) == 0 || content.Get(ct) != nil {
		return nil
	}
	takes := make([]string, 0, len(content))
	for mt := range content {
		takes = append(takes, mt)
	}
	slices.Sort(takes)
	got := "no Content-Type"
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		got = "Content-Type " + mt
	} else if ct != "" {
		got = fmt.Sprintf("Content-Type %q", ct)
	}
	return newError(http.StatusUnsupportedMediaType, fmt.Sprintf("the request body has %s; this operation takes %s", got, strings.Join(takes, " or ")))
}

// allowedMethods are the methods the document has operations for at r's
// path, in alphabetical order; none when it does not know the path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPost, http.MethodPut} {
		try := *r
		try.Method = m
		// The router lets a path parameter match nothing (/blueprints
		// as /blueprints/{id}): such a match is another path.
		if _, params, err := s.spec.router.FindRoute(&try); err == nil && !slices.Contains(slices.Collect(maps.Values(params)), "") {
			out = append(out, m)
		}
	}
	return out
}
