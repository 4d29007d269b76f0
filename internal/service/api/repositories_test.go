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

// A repository without a suite is refused at its field.
func TestCustomRepositoryNeedsASuite(t *testing.T) {
	ts := newTestServer(t, nil)
	repo := customRepository()
	delete(repo, "suite")
	body := blueprintBody("repos")
	body["customizations"].(map[string]any)["custom_repositories"] = []any{repo}
	r := ts.do(t, "acme", "POST", "/blueprints", body)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Contains(t, r.details(t), "customizations.custom_repositories[0].suite")
}
