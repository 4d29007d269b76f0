package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusReport is what the test reads of /status.json.
type statusReport struct {
	Overall    string `json:"overall"`
	Components []struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Message string `json:"message"`
	} `json:"components"`
	Incidents []struct {
		ID     string `json:"id"`
		Title  string `json:"title"`
		Status string `json:"status"`
	} `json:"incidents"`
}

// TestStatusPageFollowsBreakage runs a real `kiln serve` and one remote
// `kiln worker`, breaks components and repairs them, and watches
// /status.json and /status report each change: the worker stopped (its
// architecture's workers go down, and the queue degrades once a compose
// waits), the artifact directory made read-only by a read-only bind mount
// (tests run as root, whom file modes do not stop). An incident opened
// with `kiln incident` shows on both pages and in the feed.
func TestStatusPageFollowsBreakage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := fakeKiln(t)
	env := append(os.Environ(), "KILN_FAKE_STAGE_TIME=50ms", "KILN_FAKE_SIZE=4096", "KILN_DATABASE=")
	data := t.TempDir()
	cache := engineCache(t)
	admin := adminCommand(t, ctx, bin, env, "--data", data)
	admin("migrate")
	workerToken := admin("worker-token", "create", "--name", "status-test")
	token := admin("token", "create", "--org", "acme", "--name", "status-test")
	arts := filepath.Join(data, "artifacts")
	require.NoError(t, os.MkdirAll(arts, 0o750))

	// The prober checks every 200ms, and a worker that asks for jobs every
	// second is gone after about five.
	serve := startProc(t, ctx, "serve", bin, env, "--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", data,
		"--workers", "-1", "--rate-limit", "-1", "--status-interval", "200ms", "--worker-poll", "1s")
	startWorker := func() *proc {
		return startProc(t, ctx, "worker", bin, env, "--cache-dir", cache, "worker", "--server", serve.url,
			"--worker-token", workerToken, "--name", "w1", "--arch", "x86_64", "--grace", "0s")
	}
	worker := startWorker()

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(serve.url + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		return string(b)
	}
	report := func() (statusReport, map[string]string) {
		t.Helper()
		var r statusReport
		require.NoError(t, json.Unmarshal([]byte(get("/status.json")), &r))
		states := map[string]string{}
		for _, c := range r.Components {
			states[c.Name] = c.State
		}
		return r, states
	}
	// await polls /status.json until want holds for every component it
	// names, and returns the report.
	await := func(what string, want map[string]string) statusReport {
		t.Helper()
		var (
			r      statusReport
			states map[string]string
		)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			r, states = report()
			ok := true
			for name, state := range want {
				ok = ok && states[name] == state
			}
			if ok {
				return r
			}
		}
		t.Fatalf("%s: /status.json never said %v; last: %v", what, want, states)
		return r
	}
	// The page says the same as the JSON: each component's state is
	// written next to its title.
	pageSays := func(title, state string) {
		t.Helper()
		page := get("/status")
		i := strings.Index(page, "<h3>"+title+"</h3>")
		require.GreaterOrEqual(t, i, 0, "the page shows %s", title)
		rest := page[i:]
		end := strings.Index(rest, "</p>")
		require.Greater(t, end, 0)
		assert.Contains(t, rest[:end], ">"+state, "%s on /status", title)
	}

	await("with the worker running", map[string]string{"api": "operational", "database": "operational", "queue": "operational",
		"workers/x86_64": "operational", "artifact-store": "operational"})
	pageSays("Build workers (x86_64)", "operational")

	// The worker stops: its architecture has no worker, and a compose
	// submitted now waits with nobody to take it.
	require.NoError(t, worker.cmd.Process.Signal(syscall.SIGTERM))
	<-worker.exited
	await("with the worker stopped", map[string]string{"workers/x86_64": "down"})
	client := apiClient{url: serve.url, token: token, http: &http.Client{Timeout: 30 * time.Second}}
	var created struct{ ID string }
	_, err := client.do(ctx, http.MethodPost, "/compose", map[string]any{
		"distribution": "debian-12",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "tar",
			"upload_request": map[string]any{"type": "local", "options": map[string]any{}}}},
		"customizations": map[string]any{"hostname": "status-test"},
	}, &created)
	require.NoError(t, err)
	r := await("with a compose waiting", map[string]string{"workers/x86_64": "down", "queue": "degraded"})
	assert.Equal(t, "degraded", r.Overall)
	pageSays("Build workers (x86_64)", "down")
	pageSays("Job queue", "degraded")

	// The worker comes back and takes the work.
	worker = startWorker()
	await("with the worker back", map[string]string{"workers/x86_64": "operational", "queue": "operational"})
	pageSays("Build workers (x86_64)", "operational")
	_ = worker

	// The artifact store stops taking files.
	// mount tries again when the mount system call fails: mounts by
	// other processes of a busy host can make one fail (the log keeps
	// every failure).
	mount := func(args ...string) {
		t.Helper()
		var (
			out []byte
			err error
		)
		for attempt := 1; attempt <= 3; attempt++ {
			if out, err = exec.Command("mount", args...).CombinedOutput(); err == nil {
				return
			}
			t.Logf("mount %v, attempt %d: %v: %s", args, attempt, err, out)
		}
		require.NoError(t, err, "mount %v: %s", args, out)
	}
	mount("--bind", arts, arts)
	mounted := true
	unmount := func() {
		if mounted {
			out, err := exec.Command("umount", arts).CombinedOutput()
			assert.NoError(t, err, "umount: %s", out)
			mounted = false
		}
	}
	t.Cleanup(unmount)
	mount("-o", "remount,ro,bind", arts)
	require.Error(t, os.WriteFile(filepath.Join(arts, "x"), nil, 0o600), "the directory is read-only")
	r = await("with the artifact store read-only", map[string]string{"artifact-store": "down"})
	assert.Equal(t, "down", r.Overall, "no image can be stored or downloaded")
	pageSays("Artifact store (image downloads)", "down")
	unmount()
	await("with the artifact store writable", map[string]string{"artifact-store": "operational"})
	pageSays("Artifact store (image downloads)", "operational")

	// An incident shows on the page, in the JSON and in the feed.
	id := admin("incident", "open", "Image downloads failed", "--impact", "critical", "--component", "artifact-store",
		"--message", "The artifact store refused writes.")
	// An open critical incident makes the service down though the checks
	// find only aarch64 without workers (degraded): the operator saw what
	// the checks cannot.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, _ = report(); len(r.Incidents) > 0 {
			break
		}
	}
	assert.Equal(t, "down", r.Overall, "with a critical incident open: %+v", r.Components)
	admin("incident", "resolve", id, "--message", "The store takes files again.")
	// The pages are built at most every 200ms here (the interval).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, _ = report(); len(r.Incidents) > 0 && r.Incidents[0].Status == "resolved" {
			break
		}
	}
	require.Len(t, r.Incidents, 1)
	assert.Equal(t, id, r.Incidents[0].ID)
	assert.Equal(t, "resolved", r.Incidents[0].Status)
	assert.Equal(t, "degraded", r.Overall, "once the incident is resolved, only the checks count (aarch64 has no worker): %+v", r.Components)
	page := get("/status")
	assert.Contains(t, page, "Image downloads failed")
	assert.Contains(t, page, "The store takes files again.")
	var feed struct {
		Entries []struct {
			ID    string `xml:"id"`
			Title string `xml:"title"`
		} `xml:"entry"`
	}
	require.NoError(t, xml.Unmarshal([]byte(get("/status/feed.atom")), &feed))
	require.Len(t, feed.Entries, 1)
	assert.Equal(t, "urn:uuid:"+id, feed.Entries[0].ID)
	assert.Equal(t, "Resolved: Image downloads failed", feed.Entries[0].Title)
	assert.NotContains(t, page, created.ID, "no compose is named")
	assert.NotContains(t, get("/status.json"), fmt.Sprint("acme"))
}

// --status-interval comes from $KILN_STATUS_INTERVAL unless given; a bad
// value names where it came from.
func TestServeStatusFlags(t *testing.T) {
	t.Setenv("KILN_STATUS_INTERVAL", "soon")
	_, _, err := run(t, "serve", "--workers", "0", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `$KILN_STATUS_INTERVAL "soon": give a duration such as 30s or 1m`)
	t.Setenv("KILN_STATUS_INTERVAL", "10ms")
	_, _, err = run(t, "serve", "--workers", "0", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--status-interval 10ms: give at least 100ms")
	_, _, err = run(t, "serve", "--workers", "0", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--status-interval", "1s", "--worker-poll", "0s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--worker-poll 0s: give at least 100ms")
}
