package apimodel

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The mapping works on a copy: the request keeps what the client sent.
func TestDebianRepositoriesLeavesTheRequestAlone(t *testing.T) {
	repo := map[string]any{"id": "vendor", "baseurl": []any{"https://apt.example.org/vendor"}}
	cust := map[string]any{
		"custom_repositories":  []any{repo},
		"payload_repositories": []any{map[string]any{"id": "vendor", "rhsm": false}},
	}
	out, problems := DebianRepositories(cust, "bookworm")
	assert.Empty(t, problems)
	got := out["custom_repositories"].([]any)[0].(map[string]any)
	assert.Equal(t, "bookworm", got["suite"])
	assert.Equal(t, []any{"main"}, got["components"])
	assert.Equal(t, true, got["install_from"])
	assert.NotContains(t, out, "payload_repositories")
	assert.Equal(t, map[string]any{"id": "vendor", "baseurl": []any{"https://apt.example.org/vendor"}}, repo, "the request's repository is unchanged")
	assert.Contains(t, cust, "payload_repositories")

	// A flat repository or another suite is left as given.
	flat := map[string]any{"id": "flat", "suite": "./"}
	out, _ = DebianRepositories(map[string]any{"custom_repositories": []any{flat}}, "bookworm")
	assert.Equal(t, flat, out["custom_repositories"].([]any)[0])
}
