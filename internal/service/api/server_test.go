package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

// testServer is the API on loopback over a fresh SQLite database, with a
// token for orgs "acme" and "other".
type testServer struct {
	server *Server
	url    string
	db     *sqlite.DB
	tokens map[string]string
}

func newTestServer(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	reg, err := distro.Load()
	require.NoError(t, err)
	cfg := Config{Store: db, Distros: reg, MaxBodyBytes: 64 << 10}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ts := &testServer{server: s, url: srv.URL, db: db, tokens: map[string]string{}}
	for _, org := range []string{"acme", "other"} {
		secret, hash := store.NewSecret("kiln_")
		require.NoError(t, db.CreateToken(context.Background(), store.Token{ID: store.NewID(), OrgID: org, Name: "test", Hash: hash, CreatedAt: time.Now()}))
		ts.tokens[org] = secret
	}
	return ts
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

// details are the error details of a failing reply.
func (r reply) details(t *testing.T) string {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal(r.body, &e), string(r.body))
	require.NotEmpty(t, e.Errors)
	var out []string
	for _, it := range e.Errors {
		out = append(out, it.Detail)
	}
	return strings.Join(out, "\n")
}

func (ts *testServer) do(t *testing.T, org, method, path string, body any, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	url := ts.url + path
	if !strings.HasPrefix(path, "/livez") && !strings.HasPrefix(path, "/readyz") {
		url = ts.url + Prefix + path
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if org != "" {
		req.Header.Set("Authorization", "Bearer "+ts.tokens[org])
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

func composeBody() map[string]any {
	return map[string]any{
		"distribution": "debian-12",
		"image_name":   "web server",
		"client_id":    "api",
		"image_requests": []any{map[string]any{
			"architecture": "x86_64", "image_type": "qcow2",
			"upload_request": map[string]any{"type": "local", "options": map[string]any{}},
		}},
		"customizations": map[string]any{
			"packages": []any{"nginx", "curl"},
			"hostname": "web01",
			"users": []any{map[string]any{
				"name": "ops", "groups": []any{"sudo"}, "password": "hunter2",
				"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example",
			}},
			"timezone":   map[string]any{"timezone": "Europe/Berlin"},
			"filesystem": []any{map[string]any{"mountpoint": "/var/log", "min_size": "1 GiB"}},
			"services":   map[string]any{"enabled": []any{"nginx"}},
		},
	}
}

func TestComposeLifecycle(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "acme", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	r = ts.do(t, "acme", "GET", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	st := r.json(t)
	is := st["image_status"].(map[string]any)
	assert.Equal(t, "pending", is["status"])
	assert.Equal(t, "local", is["upload_status"].(map[string]any)["type"])
	req := st["request"].(map[string]any)
	user := req["customizations"].(map[string]any)["users"].([]any)[0].(map[string]any)
	assert.NotContains(t, user, "password", "passwords are never returned")
	assert.Equal(t, true, user["hasPassword"])
	assert.NotContains(t, string(r.body), "hunter2")

	// The jobs: depsolve → build (routed by arch) → upload.
	js, err := ts.db.ComposeJobs(context.Background(), "acme", id)
	require.NoError(t, err)
	require.Len(t, js, 3)
	assert.Equal(t, []string{"depsolve", "build", "upload"}, []string{js[0].Type, js[1].Type, js[2].Type})
	assert.Equal(t, "x86_64", js[1].Arch)
	assert.NotContains(t, string(js[0].Args), "hunter2", "the blueprint in the job holds the password's hash")

	r = ts.do(t, "acme", "DELETE", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, http.StatusNotFound, ts.do(t, "acme", "GET", "/composes/"+id, nil).status)
	js, err = ts.db.ComposeJobs(context.Background(), "acme", id)
	require.NoError(t, err)
	for _, j := range js {
		assert.Equal(t, store.JobCanceled, j.State, "deleting a compose cancels its jobs")
	}
}

func TestComposeValidation(t *testing.T) {
	ts := newTestServer(t, nil)
	with := func(f func(m map[string]any)) map[string]any {
		b := composeBody()
		f(b)
		return b
	}
	cust := func(m map[string]any) map[string]any { return m["customizations"].(map[string]any) }
	ir := func(m map[string]any) map[string]any { return m["image_requests"].([]any)[0].(map[string]any) }
	cases := []struct {
		name string
		body any
		want string
	}{
		{"not json", "{", "request body"},
		{"unknown field", with(func(m map[string]any) { m["colour"] = "blue" }), "colour"},
		{"unknown customization", with(func(m map[string]any) { cust(m)["sshd"] = true }), "sshd"},
		{"missing distribution", with(func(m map[string]any) { delete(m, "distribution") }), "distribution"},
		{"wrong type", with(func(m map[string]any) { cust(m)["hostname"] = 42 }), "customizations.hostname"},
		{"two images", with(func(m map[string]any) { m["image_requests"] = []any{ir(m), ir(m)} }), "image_requests"},
		{"unknown distribution", with(func(m map[string]any) { m["distribution"] = "debian-99" }), "debian-99"},
		{"unknown image type", with(func(m map[string]any) { ir(m)["image_type"] = "floppy" }), "floppy"},
		{"unknown arch", with(func(m map[string]any) { ir(m)["architecture"] = "riscv64" }), "image_requests[0].architecture"},
		{"upload type kiln lacks", with(func(m map[string]any) { ir(m)["upload_request"] = map[string]any{"type": "ftp"} }), "upload_request.type"},
		{"upload type this server has not configured", with(func(m map[string]any) { ir(m)["upload_request"] = map[string]any{"type": "gcp"} }), "upload_request.type"},
		{"bad ssh key", with(func(m map[string]any) {
			cust(m)["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
		}), "customizations.users[0].ssh_key"},
		{"bad min size", with(func(m map[string]any) {
			cust(m)["filesystem"] = []any{map[string]any{"mountpoint": "/var/log", "min_size": "lots"}}
		}), "customizations.filesystem[0].min_size"},
		{"bad timezone", with(func(m map[string]any) { cust(m)["timezone"] = map[string]any{"timezone": "Mars/Olympus"} }), "Mars/Olympus"},
		{"shell in hostname", with(func(m map[string]any) { cust(m)["hostname"] = "web;rm -rf /" }), "customizations.hostname"},
		{"hostile file path", with(func(m map[string]any) {
			cust(m)["files"] = []any{map[string]any{"path": "/etc/../../root/x", "data": "x"}}
		}), "customizations.files[0].path"},
		{"package shape", with(func(m map[string]any) { cust(m)["packages"] = []any{"bad name!"} }), "customizations.packages[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "acme", "POST", "/compose", tc.body)
			require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
			t.Log(r.details(t))
			assert.Contains(t, r.details(t), tc.want)
		})
	}
	_, total, err := ts.db.ListComposes(context.Background(), "acme", store.ComposeFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total, "a refused compose changes nothing")
}

func TestBodyLimit(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	b["customizations"].(map[string]any)["files"] = []any{map[string]any{"path": "/etc/big", "data": strings.Repeat("x", 100<<10)}}
	r := ts.do(t, "acme", "POST", "/compose", b)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.status, string(r.body))
	assert.Contains(t, r.details(t), "larger than")
}

func TestAuthentication(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "", "GET", "/composes", nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.details(t), "API token")
	r = ts.do(t, "", "GET", "/composes", nil, "Authorization", "Bearer kiln_nope")
	assert.Equal(t, http.StatusUnauthorized, r.status)

	// A revoked token stops working.
	secret, hash := store.NewSecret("kiln_")
	tok := store.Token{ID: store.NewID(), OrgID: "acme", Name: "old", Hash: hash, CreatedAt: time.Now()}
	require.NoError(t, ts.db.CreateToken(context.Background(), tok))
	assert.Equal(t, http.StatusOK, ts.do(t, "", "GET", "/composes", nil, "Authorization", "Bearer "+secret).status)
	require.NoError(t, ts.db.RevokeToken(context.Background(), "acme", tok.ID))
	assert.Equal(t, http.StatusUnauthorized, ts.do(t, "", "GET", "/composes", nil, "Authorization", "Bearer "+secret).status)

	// The identity header is ignored unless the server trusts a gateway.
	identity := base64.StdEncoding.EncodeToString([]byte(`{"identity":{"org_id":"acme"}}`))
	assert.Equal(t, http.StatusUnauthorized, ts.do(t, "", "GET", "/composes", nil, "x-rh-identity", identity).status)
	trusted := newTestServer(t, func(c *Config) { c.TrustIdentityHeader = true })
	assert.Equal(t, http.StatusOK, trusted.do(t, "", "GET", "/composes", nil, "x-rh-identity", identity).status)
	internal := base64.StdEncoding.EncodeToString([]byte(`{"identity":{"internal":{"org_id":"acme"}}}`))
	assert.Equal(t, http.StatusOK, trusted.do(t, "", "GET", "/composes", nil, "x-rh-identity", internal).status)
	noOrg := base64.StdEncoding.EncodeToString([]byte(`{"identity":{}}`))
	r = trusted.do(t, "", "GET", "/composes", nil, "x-rh-identity", noOrg)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.details(t), "org_id")
	assert.Equal(t, http.StatusUnauthorized, trusted.do(t, "", "GET", "/composes", nil, "x-rh-identity", "%%%").status)

	// Public endpoints need no identity.
	for _, p := range []string{"/distributions", "/distributions/debian-12", "/architectures/debian-12", "/version", "/ready", "/openapi.json", "/livez", "/readyz"} {
		assert.Equal(t, http.StatusOK, ts.do(t, "", "GET", p, nil).status, p)
	}
}

// One org never reads, lists, cancels or learns of another's composes.
func TestTenantIsolation(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "acme", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	for _, op := range []struct{ method, path string }{
		{"GET", "/composes/" + id},
		{"GET", "/composes/" + id + "/logs"},
		{"GET", "/composes/" + id + "/metadata"},
		{"GET", "/composes/" + id + "/manifests"},
		{"GET", "/composes/" + id + "/sboms"},
		{"GET", "/composes/" + id + "/download"},
		{"DELETE", "/composes/" + id},
	} {
		r := ts.do(t, "other", op.method, op.path, nil)
		assert.Equal(t, http.StatusNotFound, r.status, "%s %s", op.method, op.path)
		assert.NotContains(t, string(r.body), "acme")
	}
	r = ts.do(t, "other", "GET", "/composes", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"])
	assert.Equal(t, http.StatusOK, ts.do(t, "acme", "GET", "/composes/"+id, nil).status, "the owner still has it")
}

func TestComposesPagination(t *testing.T) {
	ts := newTestServer(t, nil)
	var ids []string
	for range 5 {
		r := ts.do(t, "acme", "POST", "/compose", composeBody())
		require.Equal(t, http.StatusCreated, r.status)
		ids = append(ids, r.json(t)["id"].(string))
	}
	r := ts.do(t, "acme", "GET", "/composes?limit=2&offset=2", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	m := r.json(t)
	assert.Equal(t, float64(5), m["meta"].(map[string]any)["count"])
	data := m["data"].([]any)
	require.Len(t, data, 2)
	links := m["links"].(map[string]any)
	assert.Contains(t, links["first"], "offset=0")
	assert.Contains(t, links["last"], "offset=4")
	for _, bad := range []string{"limit=0", "limit=101", "offset=-1", "limit=ten"} {
		r := ts.do(t, "acme", "GET", "/composes?"+bad, nil)
		assert.Equal(t, http.StatusBadRequest, r.status, bad)
		assert.Contains(t, r.details(t), "parameter", bad)
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "", "GET", "/composes", nil, "X-Request-Id", "abc-123")
	assert.Equal(t, "abc-123", r.header.Get("X-Request-Id"))
	var e errorBody
	require.NoError(t, json.Unmarshal(r.body, &e))
	assert.Equal(t, "abc-123", e.RequestID)
	r = ts.do(t, "", "GET", "/version", nil)
	assert.Len(t, r.header.Get("X-Request-Id"), 24, "one is made when none is given")
	r = ts.do(t, "acme", "GET", "/nowhere", nil)
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestQuota(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ts := newTestServer(t, func(c *Config) {
		c.Quota = Quota{Composes: 2, Window: 24 * time.Hour, PerOrg: map[string]int{"other": 3}}
		c.Now = func() time.Time { return now }
	})
	for range 2 {
		require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/compose", composeBody()).status)
	}
	r := ts.do(t, "acme", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusForbidden, r.status, string(r.body))
	assert.Contains(t, r.details(t), "quota of 2 composes in 1 days")
	assert.Contains(t, r.details(t), "after 2026-03-02T12:00:00Z")
	for range 3 {
		require.Equal(t, http.StatusCreated, ts.do(t, "other", "POST", "/compose", composeBody()).status, "a per-org quota")
	}
	// Deleting does not give quota back; time does.
	now = now.Add(25 * time.Hour)
	assert.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/compose", composeBody()).status)
}

// A blueprint's compose over the quota creates none of its composes,
// not the ones that would still have fitted.
func TestQuotaRefusesABlueprintComposeWhole(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Quota = Quota{Composes: 3, Window: 24 * time.Hour} })
	bp := blueprintBody("three-types")
	irs := bp["image_requests"].([]any)
	for _, typ := range []string{"raw", "vmdk"} {
		ir := map[string]any{}
		for k, v := range irs[0].(map[string]any) {
			ir[k] = v
		}
		ir["image_type"] = typ
		irs = append(irs, ir)
	}
	bp["image_requests"] = irs
	r := ts.do(t, "acme", "POST", "/blueprints", bp)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/compose", composeBody()).status)

	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{})
	require.Equal(t, http.StatusForbidden, r.status, string(r.body))
	assert.Contains(t, r.details(t), "quota of 3 composes")
	assert.Contains(t, r.details(t), "asks for 3")
	list := ts.do(t, "acme", "GET", "/composes", nil)
	assert.Equal(t, float64(1), list.json(t)["meta"].(map[string]any)["count"], "none of the blueprint's composes was created")
	list = ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes", nil)
	assert.Equal(t, float64(0), list.json(t)["meta"].(map[string]any)["count"])

	// What fits is taken whole.
	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", map[string]any{"image_types": []any{"raw", "vmdk"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Len(t, r.json2(t), 2)
}

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 3} })
	for range 3 {
		require.Equal(t, http.StatusOK, ts.do(t, "acme", "GET", "/composes", nil).status)
	}
	r := ts.do(t, "acme", "GET", "/composes", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "2", r.header.Get("Retry-After"))
	assert.Contains(t, r.details(t), "retry in 2 s")
	assert.Equal(t, http.StatusOK, ts.do(t, "other", "GET", "/composes", nil).status, "each org has its own budget")
}

// fakeSearcher stands in for the repository metadata in these API tests;
// the service test searches the real metadata.
type fakeSearcher struct{}

func (fakeSearcher) Search(_ context.Context, distro, arch, query string, limit, offset int) ([]Package, int, error) {
	all := []Package{{Name: query + "-a"}, {Name: query + "-b"}, {Name: query + "-c"}}
	end := min(offset+limit, len(all))
	if offset > len(all) {
		return nil, len(all), nil
	}
	return all[offset:end], len(all), nil
}

func TestPackages(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Packages = fakeSearcher{} })
	r := ts.do(t, "acme", "GET", "/packages?distribution=debian-12&architecture=x86_64&search=vim&limit=2&offset=1", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	m := r.json(t)
	assert.Equal(t, float64(3), m["meta"].(map[string]any)["count"])
	data := m["data"].([]any)
	require.Len(t, data, 2)
	assert.Equal(t, "vim-b", data[0].(map[string]any)["name"])
	for q, want := range map[string]string{
		"distribution=debian-12&architecture=x86_64":            "search",
		"distribution=debian-99&architecture=x86_64&search=vim": "debian-99",
		"distribution=debian-12&architecture=sparc&search=vim":  "architecture",
		"architecture=x86_64&search=vim":                        "distribution",
	} {
		r := ts.do(t, "acme", "GET", "/packages?"+q, nil)
		assert.Equal(t, http.StatusBadRequest, r.status, q)
		assert.Contains(t, r.details(t), want, q)
	}
	assert.Equal(t, http.StatusUnauthorized, ts.do(t, "", "GET", "/packages?distribution=debian-12&architecture=x86_64&search=vim", nil).status)
}

func blueprintBody(name string) map[string]any {
	b := composeBody()
	delete(b, "image_name")
	delete(b, "client_id")
	b["name"] = name
	b["description"] = "the web tier"
	return b
}

func TestBlueprints(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "acme", "POST", "/blueprints", blueprintBody("web"))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	r = ts.do(t, "acme", "POST", "/blueprints", blueprintBody("web"))
	assert.Equal(t, http.StatusUnprocessableEntity, r.status)
	assert.Contains(t, r.details(t), `"web" exists already`)
	bad := blueprintBody("bad")
	bad["customizations"].(map[string]any)["hostname"] = "-nope"
	r = ts.do(t, "acme", "POST", "/blueprints", bad)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Contains(t, r.details(t), "customizations.hostname")

	r = ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	got := r.json(t)
	assert.Equal(t, float64(1), got["version"])
	assert.NotContains(t, string(r.body), "hunter2")
	assert.NotContains(t, string(r.body), "$6$", "no password hash is returned")
	assert.Contains(t, string(r.body), `"hasPassword":true`)

	v2 := blueprintBody("web")
	v2["customizations"].(map[string]any)["hostname"] = "web02"
	r = ts.do(t, "acme", "PUT", "/blueprints/"+id, v2)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	assert.Contains(t, string(r.body), "web02")
	assert.Equal(t, float64(2), r.json(t)["version"])
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"?version=1", nil)
	assert.Contains(t, string(r.body), `"hostname":"web01"`, "old versions stay readable")

	r = ts.do(t, "acme", "GET", "/blueprints?name=web", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, float64(1), r.json(t)["meta"].(map[string]any)["count"])

	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	assert.Contains(t, string(r.body), `"id"`)
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes", nil)
	require.Equal(t, http.StatusOK, r.status)
	m := r.json(t)
	assert.Equal(t, float64(1), m["meta"].(map[string]any)["count"])
	assert.Equal(t, float64(2), m["data"].([]any)[0].(map[string]any)["blueprint_version"])
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/composes?blueprint_version=1", nil)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"])

	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Contains(t, string(r.body), `"hostname":"web02"`)
	assert.NotContains(t, string(r.body), "$6$")
	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil, "Accept", "application/toml")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Contains(t, string(r.body), `hostname = "web02"`)

	for _, op := range []struct{ method, path string }{
		{"GET", "/blueprints/" + id}, {"PUT", "/blueprints/" + id}, {"DELETE", "/blueprints/" + id},
		{"POST", "/blueprints/" + id + "/compose"}, {"GET", "/blueprints/" + id + "/composes"}, {"GET", "/blueprints/" + id + "/export"},
	} {
		var body any
		if op.method == "PUT" {
			body = blueprintBody("web")
		}
		assert.Equal(t, http.StatusNotFound, ts.do(t, "other", op.method, op.path, body).status, "%s %s", op.method, op.path)
	}
	r = ts.do(t, "other", "GET", "/blueprints", nil)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"])

	assert.Equal(t, http.StatusNoContent, ts.do(t, "acme", "DELETE", "/blueprints/"+id, nil).status)
	assert.Equal(t, http.StatusNotFound, ts.do(t, "acme", "GET", "/blueprints/"+id, nil).status)
}

// Following the log of a compose that waits for a worker answers at once,
// before any log exists, and keeps the stream open.
func TestLogsOfAPendingComposeAnswerAtOnce(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Artifacts = artifacts.Local{Dir: t.TempDir()} })
	created := ts.do(t, "acme", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusCreated, created.status, string(created.body))
	id := created.json(t)["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+Prefix+"/composes/"+id+"/logs", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ts.tokens["acme"])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "the answer's headers come before the compose has a log")
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
}

// The distribution lists every image type with its aliases (the names the
// hosted service uses), file name and MIME type, and a compose may ask for
// a type by any of its names.
func TestDistributionListsImageTypes(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "", "GET", "/distributions/debian-12", nil)
	require.Equal(t, http.StatusOK, r.status)
	var d struct {
		ImageTypes []struct {
			Name, Filename string
			MIMEType       string `json:"mime_type"`
			Aliases        []string
			Bootable       bool
			Architectures  []string
		} `json:"image_types"`
	}
	require.NoError(t, json.Unmarshal(r.body, &d))
	byName := map[string]int{}
	for i, it := range d.ImageTypes {
		byName[it.Name] = i
		for _, a := range it.Aliases {
			byName[a] = i
		}
	}
	for _, name := range []string{"guest-image", "aws", "azure", "gcp", "vsphere", "vsphere-ova", "wsl", "oci", "image-installer", "live-iso", "tar", "minimal-raw"} {
		_, ok := byName[name]
		assert.True(t, ok, "image type %s is listed", name)
	}
	vhd := d.ImageTypes[byName["azure"]]
	assert.Equal(t, "vhd", vhd.Name)
	assert.Equal(t, "<name>-debian-12-x86_64.vhd", vhd.Filename)
	assert.Equal(t, "application/x-vhd", vhd.MIMEType)
	assert.True(t, vhd.Bootable)
	assert.Equal(t, []string{"x86_64", "aarch64"}, vhd.Architectures, "Azure has arm64")
	assert.False(t, d.ImageTypes[byName["oci"]].Bootable)

	for _, name := range []string{"aws", "azure", "gcp", "vsphere-ova", "wsl", "oci", "image-installer"} {
		body := composeBody()
		body["image_requests"].([]any)[0].(map[string]any)["image_type"] = name
		if name == "oci" || name == "wsl" {
			// Root trees have no disk or boot-time services to customize.
			body["customizations"] = map[string]any{"packages": []any{"jq"}}
		}
		r := ts.do(t, "acme", "POST", "/compose", body)
		assert.Equal(t, http.StatusCreated, r.status, "%s: %s", name, r.body)
	}
}

// The identity names the caller's own organization, and only with
// credentials.
func TestIdentity(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, org := range []string{"acme", "other"} {
		r := ts.do(t, org, "GET", "/identity", nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Equal(t, map[string]any{"org_id": org}, r.json(t))
	}
	assert.Equal(t, http.StatusUnauthorized, ts.do(t, "", "GET", "/identity", nil).status)
}
