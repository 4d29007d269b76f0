package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// itemFields are the fields of a failing reply's error items, in order.
func itemFields(t *testing.T, r reply) []string {
	t.Helper()
	var fields []string
	for _, it := range r.fields(t) {
		fields = append(fields, it.Field)
	}
	return fields
}

// A compose request with several fields the OpenAPI document refuses
// gets one error item per field, each naming it, however deep it is.
func TestSchemaProblemsOneItemEach(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	cust := b["customizations"].(map[string]any)
	cust["hostname"] = 42
	cust["users"].([]any)[0].(map[string]any)["name"] = []any{"ops"}
	b["image_requests"].([]any)[0].(map[string]any)["image_type"] = 7
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	t.Log(string(r.body))
	assert.ElementsMatch(t, []string{"customizations.hostname", "customizations.users[0].name", "image_requests[0].image_type"}, itemFields(t, r))
}

// Problems the blueprint validator finds, those the distribution finds
// and those of the image requests come back together, one item each,
// under the request's own field paths (the blueprint's user[0].key is
// the request's users[0].ssh_key).
func TestRequestProblemsOfEveryLayerTogether(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	cust := b["customizations"].(map[string]any)
	cust["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
	cust["files"] = []any{map[string]any{"path": "/etc/../x", "data": "x"}}
	b["image_requests"].([]any)[0].(map[string]any)["image_type"] = "floppy"
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.ElementsMatch(t, []string{
		"customizations.users[0].ssh_key", "customizations.files[0].path", "image_requests[0].image_type",
	}, itemFields(t, r), string(r.body))

	// The distribution's checks run past the blueprint layer's problems:
	// a bad key (blueprint layer), an unknown time zone and a wheel group
	// (distribution) and a hostname file that conflicts with the hostname
	// come back together, each once.
	b = composeBody()
	cust = b["customizations"].(map[string]any)
	cust["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
	cust["users"].([]any)[0].(map[string]any)["groups"] = []any{"wheel"}
	cust["timezone"] = map[string]any{"timezone": "Mars/Olympus"}
	cust["hostname"] = "web01"
	cust["files"] = []any{map[string]any{"path": "/etc/hostname", "data": "other\n"}}
	r = ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.ElementsMatch(t, []string{
		"customizations.users[0].ssh_key", "customizations.users[0].groups[0]", "customizations.timezone.timezone", "customizations.files[0].path",
	}, itemFields(t, r), string(r.body))
	for _, it := range r.fields(t) {
		assert.Regexp(t, `^`+regexpQuote(it.Field)+`: .+`, it.Detail, "each detail names its own field")
	}

	// A blueprint with three image requests: the problems of each, and
	// the distribution's verdict on the customizations once, not once per
	// image request it was checked against.
	cust = composeBody()["customizations"].(map[string]any)
	cust["timezone"] = map[string]any{"timezone": "Mars/Olympus"}
	good := map[string]any{"architecture": "x86_64", "image_type": "qcow2", "upload_request": map[string]any{"type": "local", "options": map[string]any{}}}
	bad := map[string]any{"architecture": "x86_64", "image_type": "floppy", "upload_request": map[string]any{"type": "local", "options": map[string]any{}}}
	bpBody := map[string]any{"name": "web", "distribution": "debian-12", "image_requests": []any{good, bad, good}, "customizations": cust}
	r = ts.do(t, "acme", "POST", "/blueprints", bpBody)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.ElementsMatch(t, []string{
		"customizations.timezone.timezone", "image_requests[1].image_type",
	}, itemFields(t, r), string(r.body))
}

// A request the OpenAPI document refuses is still checked as a blueprint
// past the refused values: one answer has the document's problems and
// those of the later checks, each once, each under its field.
func TestSchemaAndLaterProblemsTogether(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	cust := b["customizations"].(map[string]any)
	cust["hostname"] = "-web"                                                // the document's pattern
	cust["users"].([]any)[0].(map[string]any)["groups"] = "sudo"             // the document's type
	cust["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"       // the blueprint validator
	cust["files"] = []any{map[string]any{"path": "/etc/../x", "data": "x"}}  // the blueprint validator
	cust["colour"] = "blue"                                                  // the document: unknown
	b["image_requests"].([]any)[0].(map[string]any)["image_type"] = "floppy" // the distribution
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.ElementsMatch(t, []string{
		"customizations.hostname", "customizations.users[0].groups", "customizations.colour",
		"customizations.users[0].ssh_key", "customizations.files[0].path", "image_requests[0].image_type",
	}, itemFields(t, r), string(r.body))

	// The same for a blueprint.
	bpBody := map[string]any{"name": "web", "distribution": "debian-12", "image_requests": b["image_requests"], "customizations": cust}
	r = ts.do(t, "acme", "POST", "/blueprints", bpBody)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.ElementsMatch(t, []string{
		"customizations.hostname", "customizations.users[0].groups", "customizations.colour",
		"customizations.users[0].ssh_key", "customizations.files[0].path", "image_requests[0].image_type",
	}, itemFields(t, r), string(r.body))
}

// A value that fits none of a field's forms is told what the field
// takes.
func TestOneOfProblemSaysWhatTheFieldTakes(t *testing.T) {
	ts := newTestServer(t, nil)
	b := composeBody()
	b["customizations"].(map[string]any)["filesystem"] = []any{map[string]any{"mountpoint": "/var/log", "min_size": "lots"}}
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	items := r.fields(t)
	require.Len(t, items, 1, string(r.body))
	assert.Equal(t, "customizations.filesystem[0].min_size", items[0].Field)
	assert.Equal(t, `customizations.filesystem[0].min_size: the value has none of the forms this field takes: Minimum size, in bytes or as a string such as "2 GiB"`, items[0].Detail)
}

// packageIndex stands in for the repositories' package names; broken
// makes it fail, as when no metadata can be had.
type packageIndex struct {
	fakeSearcher
	names  []string
	broken bool
}

func (p packageIndex) Missing(_ context.Context, distro, arch string, names []string) ([]string, error) {
	if p.broken {
		return nil, errors.New("no metadata")
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(p.names, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// A package that does not exist comes back with the request's other
// problems, at its field, rather than later from the depsolve job; when
// the names cannot be checked, the request goes on and the job decides.
func TestMissingPackagesInTheSameAnswer(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Packages = packageIndex{names: []string{"nginx", "task-ssh-server"}} })
	b := composeBody()
	cust := b["customizations"].(map[string]any)
	cust["packages"] = []any{"nginx", "nginxx", "no-such-tool"}
	cust["timezone"] = map[string]any{"timezone": "Mars/Olympus"}
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.ElementsMatch(t, []string{"customizations.packages[1]", "customizations.packages[2]", "customizations.timezone.timezone"}, itemFields(t, r), string(r.body))
	assert.Contains(t, r.details(t), `package "nginxx" does not exist in debian-12 for x86_64`)

	cust["packages"] = []any{"nginx"}
	delete(cust, "timezone")
	require.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/compose", b).status, "every name exists")

	key, err := os.ReadFile(filepath.Join("..", "..", "keyfetch", "testdata", "key.asc"))
	require.NoError(t, err)
	// A package from the blueprint's own repository is not in the
	// distribution's metadata: the depsolve job, which reads that
	// repository too, decides.
	cust["packages"] = []any{"vendor-tool"}
	cust["custom_repositories"] = []any{map[string]any{"id": "vendor", "baseurl": []any{"https://deb.example.org/vendor"}, "suite": "stable", "components": []any{"main"},
		"gpgkey": []any{string(key)}, "check_gpg": true, "install_from": true}}
	r = ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	delete(cust, "custom_repositories")

	broken := newTestServer(t, func(c *Config) { c.Packages = packageIndex{broken: true} })
	cust["packages"] = []any{"nginxx"}
	r = broken.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusCreated, r.status, "unchecked names are left to the depsolve job: %s", r.body)
}
