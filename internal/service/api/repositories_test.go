package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// customRepository is an API custom repository with every field the
// blueprint has, suite and components included.
func customRepository() map[string]any {
	return map[string]any{
		"id": "vendor", "name": "Vendor packages", "baseurl": []any{"https://apt.example.org/vendor"},
		"suite": "stable", "components": []any{"main", "contrib"}, "check_gpg": false,
		"enabled": false, "priority": 700, "filename": "vendor.list",
	}
}

// A compose with a Debian custom repository is accepted, and the job's
// blueprint holds the repository with its suite and components.
func TestComposeWithCustomRepository(t *testing.T) {
	ts := newTestServer(t, nil)
	body := composeBody()
	body["customizations"].(map[string]any)["custom_repositories"] = []any{customRepository()}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	js, err := ts.db.ComposeJobs(context.Background(), "acme", id)
	require.NoError(t, err)
	args := string(js[0].Args)
	for _, want := range []string{`"suite":"stable"`, `"components":["main","contrib"]`, `"priority":700`, `"filename":"vendor.list"`, `"enabled":false`, `"baseurls":["https://apt.example.org/vendor"]`} {
		assert.Contains(t, args, want)
	}

	r = ts.do(t, "acme", "GET", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	repos := r.json(t)["request"].(map[string]any)["customizations"].(map[string]any)["custom_repositories"].([]any)
	require.Len(t, repos, 1)
	got := repos[0].(map[string]any)
	assert.Equal(t, "stable", got["suite"])
	assert.Equal(t, []any{"main", "contrib"}, got["components"])
	assert.Equal(t, float64(700), got["priority"])
}

// An image-builder-shaped repository (no suite, no components) reads
// the distribution's own suite and main from its archive root; the stored
// request keeps what the client sent.
func TestCustomRepositoryDefaultsToTheDistributionSuite(t *testing.T) {
	ts := newTestServer(t, nil)
	repo := customRepository()
	delete(repo, "suite")
	delete(repo, "components")
	body := composeBody()
	body["customizations"].(map[string]any)["custom_repositories"] = []any{repo}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	js, err := ts.db.ComposeJobs(context.Background(), "acme", id)
	require.NoError(t, err)
	args := string(js[0].Args)
	assert.Contains(t, args, `"suite":"bookworm"`)
	assert.Contains(t, args, `"components":["main"]`)
	got := ts.do(t, "acme", "GET", "/composes/"+id, nil).json(t)["request"].(map[string]any)["customizations"].(map[string]any)["custom_repositories"].([]any)[0].(map[string]any)
	assert.NotContains(t, got, "suite")

	// Components given without a suite are kept, with the default suite.
	repo["components"] = []any{"contrib"}
	body["customizations"].(map[string]any)["custom_repositories"] = []any{repo}
	r = ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	js, err = ts.db.ComposeJobs(context.Background(), "acme", r.json(t)["id"].(string))
	require.NoError(t, err)
	assert.Contains(t, string(js[0].Args), `"components":["contrib"]`)
}

// image-builder sends the repositories to build from as payload
// repositories beside the same custom repositories: they make those
// install_from; one without its custom repository, or one of
// subscription content, is refused at its field.
func TestPayloadRepositories(t *testing.T) {
	ts := newTestServer(t, nil)
	repo := customRepository()
	delete(repo, "suite")
	delete(repo, "components")
	repo["check_gpg"] = true
	repo["gpgkey"] = []any{"https://apt.example.org/vendor/key.asc"}
	repo["enabled"] = true
	body := composeBody()
	cust := body["customizations"].(map[string]any)
	cust["custom_repositories"] = []any{repo}
	cust["payload_repositories"] = []any{map[string]any{"baseurl": "https://apt.example.org/vendor/", "rhsm": false, "check_gpg": true}}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	js, err := ts.db.ComposeJobs(context.Background(), "acme", r.json(t)["id"].(string))
	require.NoError(t, err)
	assert.Contains(t, string(js[0].Args), `"install_from":true`)

	cust["payload_repositories"] = []any{
		map[string]any{"baseurl": "https://elsewhere.example.org/debian", "rhsm": false},
		map[string]any{"id": "vendor", "rhsm": true},
	}
	r = ts.do(t, "acme", "POST", "/compose", body)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	fields := itemFields(t, r)
	assert.Contains(t, fields, "customizations.payload_repositories[0]")
	assert.Contains(t, fields, "customizations.payload_repositories[1].rhsm")
}
