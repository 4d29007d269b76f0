package service

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/service/ui"
	"github.com/kiln-project/kiln/internal/testhost"
)

// The status page, its JSON and its feed answer without a token, carry
// the web UI's CSP and a short cache lifetime, and show nothing of any
// tenant: a compose made from a blueprint with distinctive names is
// queued, and none of its names appears (but the queue says jobs wait).
func TestStatusPageIsPublicAndShowsNoTenantData(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	secret := tokenForAcme(ctx, t, data)
	reg, err := distro.Load()
	require.NoError(t, err)
	base, done := startService(ctx, t, Config{Listen: "127.0.0.1:0", DataDir: data, Workers: -1, Distros: reg, StatusInterval: 100 * time.Millisecond})
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("the service did not stop")
		}
	}()

	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		return testhost.APICall(t, method, base+"/api/image-builder/v1"+path, secret, body)
	}
	code, body := call("POST", "/blueprints", map[string]any{
		"name": "zebra-blueprint-7431", "description": "zebra-description-7431", "distribution": "debian-12",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "tar",
			"upload_request": map[string]any{"type": "local", "options": map[string]any{}}}},
		"customizations": map[string]any{"hostname": "zebra-host-7431"},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var bp struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &bp))
	code, body = call("POST", "/blueprints/"+bp.ID+"/compose", nil)
	require.Equal(t, http.StatusCreated, code, string(body))
	var composes []struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &composes))
	require.Len(t, composes, 1)

	// An incident, opened as `kiln incident` does, through the store.
	db, err := sqlite.Open(ctx, filepath.Join(data, "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	inc := store.Incident{ID: store.NewID(), Title: "Builds wait longer than usual", Impact: store.ImpactMinor, Components: []string{"queue"}, CreatedAt: time.Now()}
	require.NoError(t, db.CreateIncident(ctx, inc, store.IncidentUpdate{ID: store.NewID(), IncidentID: inc.ID, Status: store.IncidentInvestigating, Body: "We are looking into it.", CreatedAt: time.Now()}))
	require.NoError(t, db.Close())

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + path) // no token
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path+": "+string(b))
		assert.Equal(t, ui.CSP, resp.Header.Get("Content-Security-Policy"), path)
		assert.Regexp(t, `^public, max-age=[0-9]+$`, resp.Header.Get("Cache-Control"), path)
		return resp, string(b)
	}

	// The queue reports the compose's waiting jobs once checked.
	var rep struct {
		Overall    string `json:"overall"`
		Components []struct {
			Name, State, Message string
			UptimePercent        *float64 `json:"uptime_percent"`
			Uptime               []struct {
				Date    string   `json:"date"`
				Percent *float64 `json:"percent"`
				Samples int64    `json:"samples"`
				NoData  bool     `json:"no_data"`
			} `json:"uptime"`
		} `json:"components"`
		Incidents []struct {
			ID, Title, Impact, Status string
			Components                []string
			Updates                   []struct{ Status, Body string } `json:"updates"`
		} `json:"incidents"`
	}
	states := map[string]string{}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, body := get("/status.json")
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.NoError(t, json.Unmarshal([]byte(body), &rep), body)
		for _, c := range rep.Components {
			states[c.Name] = c.State
		}
		if states["queue"] == "degraded" {
			break
		}
	}
	assert.Equal(t, "degraded", states["queue"], "jobs wait and no worker takes them")
	assert.Equal(t, "down", states["workers/x86_64"], "no worker is connected")
	assert.Equal(t, "operational", states["api"])
	assert.Equal(t, "operational", states["database"])
	assert.Equal(t, "operational", states["artifact-store"])
	assert.Equal(t, "operational", states["upload/local"])
	assert.Equal(t, "degraded", rep.Overall)
	for _, c := range rep.Components {
		require.Len(t, c.Uptime, 90, c.Name)
		today := c.Uptime[89]
		assert.False(t, today.NoData, "%s was sampled today", c.Name)
		assert.Positive(t, today.Samples, c.Name)
		assert.True(t, c.Uptime[0].NoData, "%s: no samples 89 days ago", c.Name)
		assert.Nil(t, c.Uptime[0].Percent)
		require.NotNil(t, c.UptimePercent, c.Name)
		if c.Name == "api" {
			assert.Equal(t, 100.0, *c.UptimePercent)
		}
		if c.Name == "workers/x86_64" {
			assert.Equal(t, 0.0, *c.UptimePercent)
		}
	}
	require.Len(t, rep.Incidents, 1)
	assert.Equal(t, "Builds wait longer than usual", rep.Incidents[0].Title)
	assert.Equal(t, []string{"queue"}, rep.Incidents[0].Components)
	require.Len(t, rep.Incidents[0].Updates, 1)
	assert.Equal(t, "We are looking into it.", rep.Incidents[0].Updates[0].Body)

	_, jsonBody := get("/status.json")
	resp, page := get("/status")
	assert.Equal(t, "public, max-age=10", resp.Header.Get("Cache-Control"), "a state is at most seconds old")
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, page, "Build workers (x86_64)")
	assert.Contains(t, page, "Builds wait longer than usual")
	assert.Contains(t, page, `href="/status/status.css"`)
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, "style=")
	resp, feedBody := get("/status/feed.atom")
	assert.Equal(t, "application/atom+xml; charset=utf-8", resp.Header.Get("Content-Type"))
	var feed struct {
		XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
		ID      string   `xml:"id"`
		Updated string   `xml:"updated"`
		Entries []struct {
			ID      string `xml:"id"`
			Title   string `xml:"title"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	require.NoError(t, xml.Unmarshal([]byte(feedBody), &feed), feedBody)
	assert.NotEmpty(t, feed.ID)
	require.Len(t, feed.Entries, 1)
	assert.Equal(t, "urn:uuid:"+inc.ID, feed.Entries[0].ID)
	assert.Equal(t, "Builds wait longer than usual", feed.Entries[0].Title)
	assert.Contains(t, feed.Entries[0].Content, "We are looking into it.")
	_, css := get("/status/status.css")
	assert.Contains(t, css, ".bars")

	for _, secretish := range []string{"zebra-blueprint-7431", "zebra-description-7431", "zebra-host-7431", bp.ID, composes[0].ID, "acme", secret} {
		for name, b := range map[string]string{"/status": page, "/status.json": jsonBody, "/status/feed.atom": feedBody} {
			assert.NotContains(t, b, secretish, "%s shows tenant data", name)
		}
	}
}
