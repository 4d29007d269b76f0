package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ignoreImageTypes (repeatable, by name or alias) leaves composes of
// those types out of both listings, and out of their counts; the edge
// types image-builder's frontend always ignores match nothing here, and
// a name no distribution has is refused.
func TestIgnoreImageTypes(t *testing.T) {
	ts := newTestServer(t, nil)
	q := composeOfType(t, ts, "qcow2")
	v := composeOfType(t, ts, "vhd")
	a := composeOfType(t, ts, "ami")

	for _, tc := range []struct {
		query string
		want  []string
		count int
	}{
		{"?ignoreImageTypes=qcow2", []string{a, v}, 2},
		{"?ignoreImageTypes=guest-image&ignoreImageTypes=azure", []string{a}, 1},
		{"?ignoreImageTypes=rhel-edge-installer&ignoreImageTypes=rhel-edge-commit", []string{a, v, q}, 3},
		{"?ignoreImageTypes=aws&limit=1&offset=1", []string{q}, 2},
	} {
		n, items := listed(t, ts, tc.query)
		assert.Equal(t, tc.want, idsOf(items), tc.query)
		assert.Equal(t, tc.count, n, "%s: meta.count counts what is left", tc.query)
	}
	r := ts.do(t, "acme", "GET", "/composes?ignoreImageTypes=floppy", nil)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Contains(t, r.details(t), "query parameter ignoreImageTypes")

	// From a blueprint with two image requests: one compose each.
	body := blueprintBody("two")
	irs := body["image_requests"].([]any)
	second := map[string]any{"architecture": "x86_64", "image_type": "aws", "upload_request": map[string]any{"type": "local"}}
	body["image_requests"] = append(irs, second)
	r = ts.do(t, "acme", "POST", "/blueprints", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", nil).status)
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes?ignoreImageTypes=ami", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	m := r.json(t)
	assert.Equal(t, float64(1), m["meta"].(map[string]any)["count"])
	data := m["data"].([]any)
	require.Len(t, data, 1)
	assert.Equal(t, "qcow2", data[0].(map[string]any)["request"].(map[string]any)["image_requests"].([]any)[0].(map[string]any)["image_type"])
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes?ignoreImageTypes=guest-image&ignoreImageTypes=aws", nil)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"])
}
