package api

import (
	"encoding/json"
	"errors"
	"net/http"
)

// errorBody is every failing response: {errors: [{title, detail, field}]},
// with the request's ID so a user can quote it.
type errorBody struct {
	Errors    []errorItem `json:"errors"`
	RequestID string      `json:"request_id,omitempty"`
}

type errorItem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field is the JSON path (a.b[0].c) of the request body's field the
	// error is about, in the request's own spelling; empty when it is
	// about no one field.
	Field string `json:"field,omitempty"`
}

// apiError is an error with its HTTP status and what the user is told.
// Internal causes are logged, never sent.
type apiError struct {
	Status  int
	Details []string
	// Fields, when set, has the field of each detail ("" for none).
	Fields []string
	Header http.Header
}

// problem is one thing wrong with a request: the field it is about (may
// be empty) and the message, which does not repeat the field.
type problem struct {
	Field, Message string
}

// detail is what the user reads: "field: message".
func (p problem) detail() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// fieldError is an error about one field of the request body.
func fieldError(status int, field, message string) *apiError {
	return problemsError(status, []problem{{Field: field, Message: message}})
}

// problemsError is an error listing problems, each with its field.
func problemsError(status int, ps []problem) *apiError {
	e := &apiError{Status: status}
	for _, p := range ps {
		e.Details = append(e.Details, p.detail())
		e.Fields = append(e.Fields, p.Field)
	}
	return e
}

// joinProblems is one error listing the problems of all of errs (nil
// ones skipped), each once: the same blueprint problem found against two
// image requests is listed one time. An error that is not an apiError
// (an internal failure) wins over the rest; the first error's status is
// the answer's.
func joinProblems(errs ...error) error {
	var out *apiError
	seen := map[[2]string]bool{}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			return err
		}
		if out == nil {
			out = &apiError{Status: ae.Status, Header: ae.Header}
		}
		for i, d := range ae.Details {
			field := ""
			if i < len(ae.Fields) {
				field = ae.Fields[i]
			}
			if key := [2]string{field, d}; !seen[key] {
				seen[key] = true
				out.Details = append(out.Details, d)
				out.Fields = append(out.Fields, field)
			}
		}
	}
	if out == nil {
		return nil
	}
	return out
}

func (e *apiError) Error() string {
	if len(e.Details) == 0 {
		return http.StatusText(e.Status)
	}
	return e.Details[0]
}

func newError(status int, details ...string) *apiError {
	return &apiError{Status: status, Details: details}
}

var (
	errNotFound     = newError(http.StatusNotFound, "no such resource in your organization")
	errUnauthorized = newError(http.StatusUnauthorized, "authenticate with an API token (Authorization: Bearer ...)")
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if e.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// RFC 9110: a 401 says how to authenticate.
		w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
	}
	body := errorBody{RequestID: requestID(r.Context())}
	details := e.Details
	if len(details) == 0 {
		details = []string{http.StatusText(e.Status)}
	}
	for i, d := range details {
		it := errorItem{Title: http.StatusText(e.Status), Detail: d}
		if i < len(e.Fields) {
			it.Field = e.Fields[i]
		}
		body.Errors = append(body.Errors, it)
	}
	writeJSON(w, e.Status, body)
}
