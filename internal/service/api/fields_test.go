package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fields are the error items' fields of a failing reply, by detail.
func (r reply) fields(t *testing.T) []errorItem {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal(r.body, &e), string(r.body))
	require.NotEmpty(t, e.Errors)
	return e.Errors
}

// Every error about one field of the request body names it, in the
// request's spelling, whether the OpenAPI document or the blueprint
// validator found it; errors about no one field name none.
func TestErrorsNameTheField(t *testing.T) {
	ts := newTestServer(t, nil)
	cust := func(m map[string]any) map[string]any { return m["customizations"].(map[string]any) }
	ir := func(m map[string]any) map[string]any { return m["image_requests"].([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name, field string
		change      func(m map[string]any)
	}{
		{"bad ssh key", "customizations.users[0].ssh_key", func(m map[string]any) {
			cust(m)["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
		}},
		{"bad hostname", "customizations.hostname", func(m map[string]any) { cust(m)["hostname"] = "-web" }},
		{"hostname of the wrong type", "customizations.hostname", func(m map[string]any) { cust(m)["hostname"] = 42 }},
		{"unknown image type", "image_requests[0].image_type", func(m map[string]any) { ir(m)["image_type"] = "floppy" }},
		{"unknown distribution", "distribution", func(m map[string]any) { m["distribution"] = "debian-99" }},
		{"unknown property", "customizations.colour", func(m map[string]any) { cust(m)["colour"] = true }},
		{"missing property", "distribution", func(m map[string]any) { delete(m, "distribution") }},
		{"one of two shapes", "customizations.filesystem[0].min_size", func(m map[string]any) {
			cust(m)["filesystem"] = []any{map[string]any{"mountpoint": "/var/log", "min_size": "lots"}}
		}},
		{"bad timezone", "customizations.timezone.timezone", func(m map[string]any) {
			cust(m)["timezone"] = map[string]any{"timezone": "Mars/Olympus"}
		}},
		{"upload option", "image_requests[0].upload_request.options.bucket", func(m map[string]any) {
			ir(m)["upload_request"] = map[string]any{"type": "local", "options": map[string]any{"bucket": "b"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := composeBody()
			tc.change(b)
			r := ts.do(t, "acme", "POST", "/compose", b)
			require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
			items := r.fields(t)
			require.Len(t, items, 1, string(r.body))
			assert.Equal(t, tc.field, items[0].Field)
			assert.Regexp(t, `^`+regexpQuote(tc.field)+`: .+`, items[0].Detail, "the detail starts with the field it names")
		})
	}

	// Not about a field: no field.
	r := ts.do(t, "acme", "POST", "/compose", "{")
	require.Equal(t, http.StatusBadRequest, r.status)
	assert.Empty(t, r.fields(t)[0].Field)
	r = ts.do(t, "acme", "GET", "/composes?limit=0", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	assert.Empty(t, r.fields(t)[0].Field, "a query parameter is not a body field")
	assert.NotContains(t, string(r.body), `"field"`, "an error without a field leaves the key out")

	// Several problems, each with its own field.
	b := composeBody()
	cust(b)["hostname"] = "ok"
	cust(b)["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
	cust(b)["files"] = []any{map[string]any{"path": "/etc/../x", "data": "x"}}
	r = ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status)
	var fields []string
	for _, it := range r.fields(t) {
		fields = append(fields, it.Field)
	}
	assert.ElementsMatch(t, []string{"customizations.users[0].ssh_key", "customizations.files[0].path"}, fields)
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

// json2 decodes a reply that is a JSON array of objects.
func (r reply) json2(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &out), string(r.body))
	return out
}
