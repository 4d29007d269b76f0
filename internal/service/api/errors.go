package api

import (
	"encoding/json"
	"net/http"
)

// errorBody is every failing response: {errors: [{title, detail}]}, with
// the request's ID so a user can quote it.
type errorBody struct {
	Errors    []errorItem `json:"errors"`
	RequestID string      `json:"request_id,omitempty"`
}

type errorItem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// apiError is an error with its HTTP status and what the user is told.
// Internal causes are logged, never sent.
type apiError struct {
	Status  int
	Details []string
	Header  http.Header
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
	body := errorBody{RequestID: requestID(r.Context())}
	details := e.Details
	if len(details) == 0 {
		details = []string{http.StatusText(e.Status)}
	}
	for _, d := range details {
		body.Errors = append(body.Errors, errorItem{Title: http.StatusText(e.Status), Detail: d})
	}
	writeJSON(w, e.Status, body)
}
