package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storedUser is the stored request's user of a blueprint version, with
// its password hash.
func storedUser(t *testing.T, ts *testServer, id string, version int) map[string]any {
	t.Helper()
	b, err := ts.db.GetBlueprint(context.Background(), "acme", id, version)
	require.NoError(t, err)
	var req blueprintRequest
	require.NoError(t, json.Unmarshal(b.Body, &req))
	return req.Customizations["users"].([]any)[0].(map[string]any)
}

// A client sends users back as it read them (hasPassword, no password):
// the update keeps the stored password; an empty password removes it,
// and so does hasPassword false.
func TestUpdateKeepsPasswordLikeImageBuilder(t *testing.T) {
	ts := newTestServer(t, nil)
	id := createBlueprint(t, ts, "web")
	hash := storedUser(t, ts, id, 1)["password"]
	require.NotEmpty(t, hash)

	r := ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	read := r.json(t)
	body := map[string]any{"name": read["name"], "description": read["description"], "distribution": read["distribution"],
		"image_requests": read["image_requests"], "customizations": read["customizations"]}
	user := body["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any)
	require.Equal(t, true, user["hasPassword"])
	r = ts.do(t, "acme", "PUT", "/blueprints/"+id, body)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	v2 := storedUser(t, ts, id, 2)
	assert.Equal(t, hash, v2["password"], "the password is kept")
	assert.NotContains(t, v2, "hasPassword", "hasPassword is not stored")
	assert.Contains(t, string(ts.do(t, "acme", "GET", "/blueprints/"+id, nil).body), `"hasPassword":true`)

	user["password"] = ""
	delete(user, "hasPassword")
	r = ts.do(t, "acme", "PUT", "/blueprints/"+id, body)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.NotContains(t, storedUser(t, ts, id, 3), "password", "an empty password removes it")

	user["password"] = "hunter3"
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "PUT", "/blueprints/"+id, body).status)
	delete(user, "password")
	user["hasPassword"] = false
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "PUT", "/blueprints/"+id, body).status)
	assert.NotContains(t, storedUser(t, ts, id, 5), "password", "hasPassword false leaves none")
}

// version=-1 and blueprint_version=-1 mean the latest version; 0 is no
// version and is refused.
func TestLatestVersionIsMinusOne(t *testing.T) {
	ts := newTestServer(t, nil)
	id := createBlueprint(t, ts, "web")
	v2 := blueprintBody("web")
	v2["customizations"].(map[string]any)["hostname"] = "web02"
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "PUT", "/blueprints/"+id, v2).status)

	r := ts.do(t, "acme", "GET", "/blueprints/"+id+"?version=-1", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, float64(2), r.json(t)["version"])
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"?version=0", nil)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Contains(t, r.details(t), "query parameter version")

	require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"version": 1}).status)
	require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", nil).status)
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes?blueprint_version=-1", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	m := r.json(t)
	assert.Equal(t, float64(1), m["meta"].(map[string]any)["count"])
	assert.Equal(t, float64(2), m["data"].([]any)[0].(map[string]any)["blueprint_version"])
	assert.Equal(t, http.StatusBadRequest, ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes?blueprint_version=0", nil).status)
}

// search matches the name or the description, in any case, and pages
// over the matches.
func TestSearchBlueprints(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, name := range []string{"web-a", "web-b", "db"} {
		createBlueprint(t, ts, name)
	}
	other := blueprintBody("cache")
	other["description"] = "Memcached for the WEB tier"
	require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/blueprints", other).status)

	names := func(query string) (int, []string) {
		r := ts.do(t, "acme", "GET", "/blueprints?"+query, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		m := r.json(t)
		var out []string
		for _, it := range m["data"].([]any) {
			out = append(out, it.(map[string]any)["name"].(string))
		}
		return int(m["meta"].(map[string]any)["count"].(float64)), out
	}
	n, got := names("search=memcached")
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"cache"}, got)
	n, got = names("search=WEB-")
	assert.Equal(t, 2, n)
	assert.ElementsMatch(t, []string{"web-a", "web-b"}, got)
	n, got = names("search=web-&limit=1&offset=1")
	assert.Equal(t, 2, n)
	assert.Len(t, got, 1)
	n, _ = names("search=nothing-like-it")
	assert.Equal(t, 0, n)
	n, got = names("search=web&name=web-b")
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"web-b"}, got)
}

// The export is image-builder's shape without passwords; posted back to
// POST /blueprints it makes the same blueprint.
func TestExportReimports(t *testing.T) {
	ts := newTestServer(t, nil)
	body := blueprintBody("web")
	r := ts.do(t, "acme", "POST", "/blueprints", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/blueprints/"+id+"/export", r)
	assert.NotContains(t, string(r.body), "$6$")
	export := r.json(t)
	meta := export["metadata"].(map[string]any)
	assert.Equal(t, id, meta["parent_id"])
	assert.Equal(t, false, meta["is_on_prem"])
	assert.NotEmpty(t, meta["exported_at"])
	for _, k := range []string{"name", "description", "distribution", "customizations"} {
		assert.Contains(t, export, k)
	}

	before := ts.do(t, "acme", "GET", "/blueprints/"+id, nil).json(t)
	require.Equal(t, http.StatusNoContent, ts.do(t, "acme", "DELETE", "/blueprints/"+id, nil).status)
	r = ts.do(t, "acme", "POST", "/blueprints", string(mustJSON(t, export)))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	after := ts.do(t, "acme", "GET", "/blueprints/"+r.json(t)["id"].(string), nil).json(t)
	// The password is not exported, so the re-import has none.
	bu := before["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any)
	require.Equal(t, true, bu["hasPassword"])
	delete(bu, "hasPassword")
	for _, k := range []string{"name", "description", "distribution", "image_requests", "customizations", "lint"} {
		assert.Equal(t, before[k], after[k], k)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// A stored blueprint carries what its checks find now, in image-builder's
// lint shape: nothing for a good one.
func TestBlueprintLint(t *testing.T) {
	ts := newTestServer(t, nil)
	id := createBlueprint(t, ts, "web")
	r := ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/blueprints/"+id, r)
	assert.Equal(t, map[string]any{"errors": []any{}, "warnings": []any{}}, r.json(t)["lint"])

	// A blueprint stored when its image type existed lints with an error
	// naming the field once the type is gone.
	b, err := ts.db.GetBlueprint(context.Background(), "acme", id, 0)
	require.NoError(t, err)
	var req blueprintRequest
	require.NoError(t, json.Unmarshal(b.Body, &req))
	req.ImageRequests[0].ImageType = "retired-type"
	b.Body = mustJSON(t, req)
	_, err = ts.db.UpdateBlueprint(context.Background(), b)
	require.NoError(t, err)
	r = ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/blueprints/"+id, r)
	errs := r.json(t)["lint"].(map[string]any)["errors"].([]any)
	require.Len(t, errs, 1)
	item := errs[0].(map[string]any)
	assert.Equal(t, "image_requests[0].image_type", item["name"])
	assert.Contains(t, item["description"], "retired-type")
}

// kiln's import takes image-builder's export too: the query names what
// to build, as for a blueprint file, and the rest is the same blueprint.
func TestImportTakesAnExport(t *testing.T) {
	ts := newTestServer(t, nil)
	id := createBlueprint(t, ts, "web")
	r := ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	export := string(r.body)
	before := ts.do(t, "acme", "GET", "/blueprints/"+id, nil).json(t)
	require.Equal(t, http.StatusNoContent, ts.do(t, "acme", "DELETE", "/blueprints/"+id, nil).status)

	r = ts.do(t, "acme", "POST", "/blueprints/import?distribution=debian-12&architecture=x86_64&image_type=qcow2", export)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	after := ts.do(t, "acme", "GET", "/blueprints/"+r.json(t)["id"].(string), nil).json(t)
	delete(before["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any), "hasPassword")
	for _, k := range []string{"name", "description", "distribution", "customizations"} {
		assert.Equal(t, before[k], after[k], k)
	}
	assert.Equal(t, "qcow2", after["image_requests"].([]any)[0].(map[string]any)["image_type"])

	// An export's problems name its fields, as POST /blueprints does.
	bad := strings.Replace(export, `"hostname":"web01"`, `"hostname":"-web"`, 1)
	require.NotEqual(t, export, bad)
	r = ts.do(t, "acme", "POST", "/blueprints/import?distribution=debian-12&architecture=x86_64&image_type=qcow2", bad)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Contains(t, itemFields(t, r), "customizations.hostname")
}

// Composing a blueprint picks its image requests by any name of their
// type: image-builder's aws is kiln's ami, guest-image is qcow2.
func TestComposeBlueprintPicksTypesByAnyName(t *testing.T) {
	ts := newTestServer(t, nil)
	body := blueprintBody("two")
	irs := body["image_requests"].([]any)
	body["image_requests"] = append(irs, map[string]any{"architecture": "x86_64", "image_type": "ami", "upload_request": map[string]any{"type": "local"}})
	r := ts.do(t, "acme", "POST", "/blueprints", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	for _, tc := range []struct {
		types []any
		want  int
	}{{[]any{"aws"}, 1}, {[]any{"guest-image"}, 1}, {[]any{"qcow2", "aws"}, 2}} {
		r := ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"image_types": tc.types})
		require.Equal(t, http.StatusCreated, r.status, "%v: %s", tc.types, r.body)
		assert.Len(t, r.json2(t), tc.want, "%v", tc.types)
	}
	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"image_types": []any{"azure"}})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Contains(t, itemFields(t, r), "image_types")
}
