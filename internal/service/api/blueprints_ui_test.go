package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

func createBlueprint(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	r := ts.do(t, "acme", "POST", "/blueprints", blueprintBody(name))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	return r.json(t)["id"].(string)
}

// A blueprint's versions are listed newest first, each with the name and
// description it had; a compose may build any of them.
func TestBlueprintVersionsAndComposingOne(t *testing.T) {
	ts := newTestServer(t, nil)
	id := createBlueprint(t, ts, "web")
	v2 := blueprintBody("web-tier")
	v2["description"] = "renamed"
	v2["customizations"].(map[string]any)["hostname"] = "web02"
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "PUT", "/blueprints/"+id, v2).status)

	r := ts.do(t, "acme", "GET", "/blueprints/"+id+"/versions", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/blueprints/"+id+"/versions", r)
	data := r.json(t)["data"].([]any)
	require.Len(t, data, 2)
	first, second := data[0].(map[string]any), data[1].(map[string]any)
	assert.Equal(t, float64(2), first["version"], "newest first")
	assert.Equal(t, "web-tier", first["name"])
	assert.Equal(t, "renamed", first["description"])
	assert.Equal(t, float64(1), second["version"])
	assert.Equal(t, "web", second["name"], "each version has the name it had")
	assert.Equal(t, "the web tier", second["description"])
	assert.NotEmpty(t, second["last_modified_at"])
	assert.Equal(t, http.StatusNotFound, ts.do(t, "other", "GET", "/blueprints/"+id+"/versions", nil).status)

	// Build version 1, then the latest.
	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"version": 1})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	old := r.json2(t)[0]["id"].(string)
	c, err := ts.db.GetCompose(context.Background(), "acme", old)
	require.NoError(t, err)
	assert.Equal(t, 1, c.BlueprintVersion)
	assert.Contains(t, string(c.Request), `"hostname":"web01"`, "version 1's customizations are built")
	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	c, err = ts.db.GetCompose(context.Background(), "acme", r.json2(t)[0]["id"].(string))
	require.NoError(t, err)
	assert.Equal(t, 2, c.BlueprintVersion)

	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"version": 3})
	assert.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	assert.Equal(t, "version", r.fields(t)[0].Field)
	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"version": 0})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "version", r.fields(t)[0].Field)
	assert.Equal(t, http.StatusNotFound, ts.do(t, "other", "POST", "/blueprints/"+id+"/compose", map[string]any{"version": 1}).status)
}

// Rendering answers the TOML the export would give, after the checks of
// create, and stores nothing.
func TestRenderBlueprint(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "acme", "POST", "/blueprints/render", blueprintBody("web"))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "POST", "/blueprints/render", r)
	toml := r.json(t)["toml"].(string)
	assert.Contains(t, toml, `name = "web"`)
	assert.Contains(t, toml, `hostname = "web01"`)
	assert.Contains(t, toml, `distro = "debian-12"`)
	assert.NotContains(t, toml, "hunter2")
	assert.NotContains(t, toml, "$6$", "no password hash either")

	// The same text as exporting the stored blueprint, but for the version.
	id := createBlueprint(t, ts, "web")
	exported := ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil, "Accept", "application/toml")
	require.Equal(t, http.StatusOK, exported.status)
	assert.Equal(t, strings.Replace(string(exported.body), "version = \"1.0.0\"\n", "", 1), toml)

	bad := blueprintBody("web2")
	bad["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
	r = ts.do(t, "acme", "POST", "/blueprints/render", bad)
	require.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "customizations.users[0].ssh_key", r.fields(t)[0].Field)
	_, total, err := ts.db.ListBlueprints(context.Background(), "acme", "", store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 1, total, "rendering stores nothing")
}

const importTOML = `name = "imported"
description = "from a file"

[[packages]]
name = "nginx"

[customizations]
hostname = "web03"

[[customizations.user]]
name = "ops"
password = "hunter2"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
`

const importQuery = "/blueprints/import?distribution=debian-12&architecture=x86_64&image_type=qcow2&image_type=tar"

// A blueprint file is imported as a new blueprint; bad files are refused
// with the file's field named, and change nothing.
func TestImportBlueprint(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "acme", "POST", importQuery, importTOML, "Content-Type", "application/toml")
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	conforms(t, "POST", importQuery, r)
	id := r.json(t)["id"].(string)

	r = ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status)
	got := r.json(t)
	assert.Equal(t, "imported", got["name"])
	assert.Equal(t, "from a file", got["description"])
	assert.Equal(t, "debian-12", got["distribution"])
	var types []string
	for _, ir := range got["image_requests"].([]any) {
		types = append(types, ir.(map[string]any)["image_type"].(string))
	}
	assert.Equal(t, []string{"qcow2", "tar"}, types)
	cust := got["customizations"].(map[string]any)
	assert.Equal(t, "web03", cust["hostname"])
	assert.Equal(t, []any{"nginx"}, cust["packages"])
	user := cust["users"].([]any)[0].(map[string]any)
	assert.Equal(t, true, user["hasPassword"])
	assert.NotContains(t, string(r.body), "hunter2")
	b, err := ts.db.GetBlueprint(context.Background(), "acme", id, 0)
	require.NoError(t, err)
	assert.NotContains(t, string(b.Body), "hunter2", "the stored password is a hash")

	// The same file as JSON.
	r = ts.do(t, "acme", "POST", importQuery, `{"name": "as-json", "customizations": {"hostname": "web04"}}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	for _, tc := range []struct {
		name, body, contentType, query string
		status                         int
		field, detail                  string
	}{
		{"malformed TOML", "name = \"x\"\n[customizations\n", "application/toml", importQuery, http.StatusBadRequest, "", "TOML"},
		{"unknown field", "name = \"x\"\n[customizations]\ncolour = \"blue\"\n", "application/toml", importQuery, http.StatusBadRequest, "customizations.colour", "colour"},
		{"bad key, in the file's spelling", strings.Replace(importTOML, "ssh-ed25519 AAAA", "not-a-key AAAA", 1), "application/toml", importQuery,
			http.StatusBadRequest, "customizations.user[0].key", "SSH public key"},
		{"hostile file path", "name = \"x\"\n[[customizations.files]]\npath = \"/etc/../../root/.ssh/authorized_keys\"\ndata = \"x\"\n", "application/toml", importQuery,
			http.StatusBadRequest, "customizations.files[0].path", "canonical"},
		{"a field the API cannot carry", "name = \"x\"\n[[modules]]\nname = \"nodejs\"\n", "application/toml", importQuery, http.StatusBadRequest, "modules", "cannot carry"},
		{"same name", importTOML, "application/toml", importQuery, http.StatusUnprocessableEntity, "name", `"imported" exists already`},
		{"unknown image type", "name = \"x\"\n", "application/toml", strings.Replace(importQuery, "image_type=tar", "image_type=floppy", 1),
			http.StatusBadRequest, "", "query parameter image_type"},
		{"no image type", "name = \"x\"\n", "application/toml", "/blueprints/import?distribution=debian-12&architecture=x86_64", http.StatusBadRequest, "", "image_type"},
		{"not JSON", "{", "application/json", importQuery, http.StatusBadRequest, "", "request body"},
		{"huge", "name = \"x\"\n# " + strings.Repeat("x", 100<<10) + "\n", "application/toml", importQuery, http.StatusRequestEntityTooLarge, "", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "acme", "POST", tc.query, tc.body, "Content-Type", tc.contentType)
			require.Equal(t, tc.status, r.status, string(r.body))
			items := r.fields(t)
			var fields []string
			for _, it := range items {
				fields = append(fields, it.Field)
			}
			if tc.field == "" {
				assert.Empty(t, strings.Join(fields, ""), "no field: %s", r.body)
			} else {
				assert.Contains(t, fields, tc.field, string(r.body))
			}
			assert.Contains(t, r.details(t), tc.detail)
		})
	}
	_, total, err := ts.db.ListBlueprints(context.Background(), "acme", "", store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 2, total, "refused files change nothing")
}
