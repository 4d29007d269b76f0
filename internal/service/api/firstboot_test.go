package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// firstbootScripts are two first-boot scripts as the API takes them: one
// with every field, one with only what is required.
func firstbootScripts() map[string]any {
	return map[string]any{"scripts": []any{
		map[string]any{"type": "custom", "name": "motd", "ignore_failure": true,
			"after": []any{"network-online.target"}, "before": []any{"nginx.service"},
			"contents": "#!/bin/sh\necho \"first boot of $(hostname)\" > /etc/motd\n"},
		map[string]any{"type": "custom", "contents": "true\n"},
	}}
}

// manifestOfJob is the manifest a worker makes of the compose's depsolve
// job: the job's blueprint planned for its image type and solved (by the
// fake resolver, which needs no repository).
func manifestOfJob(t *testing.T, ts *testServer, composeID string) *manifest.Manifest {
	t.Helper()
	js, err := ts.db.ComposeJobs(context.Background(), "acme", composeID)
	require.NoError(t, err)
	var args workerproto.DepsolveArgs
	require.NoError(t, json.Unmarshal(js[0].Args, &args))
	bp, err := blueprint.Parse(args.Blueprint, blueprint.FormatJSON)
	require.NoError(t, err)
	it, err := compose.ImageType(ts.server.cfg.Distros, bp, compose.Request{Distro: args.Distro, Arch: args.Arch, ImageType: args.ImageType}, compose.Defaults{})
	require.NoError(t, err)
	mirrors := map[string]string{"debian": "http://mirror.example/debian", "debian-security": "http://mirror.example/debian-security"}
	res, err := compose.Manifest(context.Background(), it, bp, distro.Options{Mirrors: mirrors}, depsolve.Fake{})
	require.NoError(t, err)
	return res.Manifest
}

// firstbootStage is the options of m's first-boot stage, or nil.
func firstbootStage(m *manifest.Manifest) *manifest.Firstboot {
	for _, p := range m.Pipelines {
		for _, s := range p.Stages {
			if fb, ok := s.Options.(*manifest.Firstboot); ok {
				return fb
			}
		}
	}
	return nil
}

// customizations.firstboot (a kiln extension) is the blueprint's: a
// blueprint with scripts is stored and returned as sent, exported in both
// formats, and built into the image's first-boot stage.
func TestFirstbootScriptsThroughTheAPI(t *testing.T) {
	ts := newTestServer(t, nil)
	body := blueprintBody("firstboot")
	body["customizations"].(map[string]any)["firstboot"] = firstbootScripts()
	r := ts.do(t, "acme", "POST", "/blueprints", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	r = ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, firstbootScripts(), r.json(t)["customizations"].(map[string]any)["firstboot"], "stored as sent")

	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil, "Accept", "application/toml")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	exported, err := blueprint.Parse(r.body, blueprint.FormatTOML)
	require.NoError(t, err, string(r.body))
	require.NotNil(t, exported.Customizations.Firstboot, string(r.body))
	assert.Equal(t, []blueprint.FirstbootScript{
		{Type: "custom", Name: "motd", IgnoreFailure: true, After: []string{"network-online.target"}, Before: []string{"nginx.service"},
			Contents: "#!/bin/sh\necho \"first boot of $(hostname)\" > /etc/motd\n"},
		{Type: "custom", Contents: "true\n"},
	}, exported.Customizations.Firstboot.Scripts)

	// The exported file imports as a blueprint with the same scripts.
	file := strings.Replace(string(r.body), `name = "firstboot"`, `name = "firstboot-copy"`, 1)
	r = ts.do(t, "acme", "POST", "/blueprints/import?distribution=debian-12&architecture=x86_64&image_type=qcow2", file, "Content-Type", "application/toml")
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = ts.do(t, "acme", "GET", "/blueprints/"+r.json(t)["id"].(string), nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, firstbootScripts(), r.json(t)["customizations"].(map[string]any)["firstboot"], "imported")

	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	fb := r.json(t)["customizations"].(map[string]any)["firstboot"].(map[string]any)["scripts"].([]any)
	require.Len(t, fb, 2)
	assert.Equal(t, "motd", fb[0].(map[string]any)["name"])

	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	stage := firstbootStage(manifestOfJob(t, ts, r.json2(t)[0]["id"].(string)))
	require.NotNil(t, stage, "the qcow2 image has a first-boot stage")
	assert.Equal(t, []manifest.FirstbootScript{
		{Name: "motd", Contents: "#!/bin/sh\necho \"first boot of $(hostname)\" > /etc/motd\n", IgnoreFailure: true,
			After: []string{"network-online.target"}, Before: []string{"nginx.service"}},
		{Name: "script-2", Contents: "true\n"},
	}, stage.Scripts)

	// A compose request takes them too.
	cb := composeBody()
	cb["customizations"].(map[string]any)["firstboot"] = firstbootScripts()
	r = ts.do(t, "acme", "POST", "/compose", cb)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	stage = firstbootStage(manifestOfJob(t, ts, r.json(t)["id"].(string)))
	require.NotNil(t, stage)
	assert.Len(t, stage.Scripts, 2)
}

// Only "custom" scripts with contents are taken; each problem comes back
// at its own field, all in one answer, saying how to fix it.
func TestFirstbootScriptsRefused(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 4 << 20 })
	body := composeBody()
	body["customizations"].(map[string]any)["firstboot"] = map[string]any{"scripts": []any{
		map[string]any{"type": "satellite", "contents": "true"},
		map[string]any{"type": "custom", "name": strings.Repeat("n", 65), "contents": "true"},
		map[string]any{"type": "custom", "name": "empty"},
		map[string]any{"type": "custom", "name": "huge", "contents": strings.Repeat("x", blueprint.MaxFileDataSize+1)},
		map[string]any{"contents": "true"},
		map[string]any{"type": "custom", "name": "order", "after": []any{"not a unit!"}, "contents": "true"},
	}}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	details := map[string]string{}
	for _, it := range r.fields(t) {
		details[it.Field] = it.Detail
	}
	want := map[string]string{
		"customizations.firstboot.scripts[0].type":     `use a script of type "custom"`,
		"customizations.firstboot.scripts[1].name":     "is not a script name: use up to 64 letters",
		"customizations.firstboot.scripts[2].contents": `required for a "custom" script`,
		"customizations.firstboot.scripts[3].contents": "",
		"customizations.firstboot.scripts[4].type":     `required; the only type Debian-family images can run is "custom"`,
		"customizations.firstboot.scripts[5].after[0]": "",
	}
	assert.Len(t, details, len(want), string(r.body))
	for field, fix := range want {
		d, ok := details[field]
		if assert.True(t, ok, "a problem at %s in %s", field, r.body) {
			assert.True(t, strings.HasPrefix(d, field+": "), "%q starts with its field", d)
			assert.Contains(t, d, fix)
		}
	}

	// A field the API does not know is refused at its name.
	body["customizations"].(map[string]any)["firstboot"] = map[string]any{"scripts": []any{
		map[string]any{"type": "satellite", "command": "register"},
	}}
	r = ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Contains(t, itemFields(t, r), "customizations.firstboot.scripts[0].command")

	// An image type that does not boot has no first boot.
	body = composeBody()
	body["image_requests"].([]any)[0].(map[string]any)["image_type"] = "tar"
	body["customizations"].(map[string]any)["firstboot"] = firstbootScripts()
	r = ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Contains(t, itemFields(t, r), "customizations.firstboot")
	assert.Contains(t, r.details(t), "not supported by image type tar")
}
