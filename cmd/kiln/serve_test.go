package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/testhost"
)

type syncBuffer = testhost.SyncBuffer

// The service's user story without a worker: serve, create a token,
// submit a blueprint, see it pending and listed, cancel it; a revoked
// token stops working.
func TestServeTokenCompose(t *testing.T) {
	data := t.TempDir()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd := newRootCommand(stdout, stderr)
	cmd.SetArgs([]string{"--cache-dir", t.TempDir(), "serve", "--listen", "127.0.0.1:0", "--data", data, "--workers", "-1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	var server string
	addr := regexp.MustCompile(`kiln serves on (http://\S+)`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && server == ""; time.Sleep(50 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			server = m[1]
		}
	}
	require.NotEmpty(t, server, "serve did not start: %s", stderr.String())

	out, _, err := run(t, "token", "create", "--org", "acme", "--name", "ci", "--data", data)
	require.NoError(t, err)
	token := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(token, "kiln_"), token)
	_, _, err = run(t, "token", "create", "--org", "acme", "--data", data)
	assert.ErrorContains(t, err, "--name")

	svc := []string{"--server", server, "--token", token}
	out, errOut, err := run(t, append([]string{"compose", "start", "../../examples/base.toml", "-t", "qcow2"}, svc...)...)
	require.NoError(t, err, errOut)
	id := strings.TrimSpace(out)
	require.Regexp(t, `^[0-9a-f-]{36}$`, id)

	out, _, err = run(t, append([]string{"compose", "status", id}, svc...)...)
	require.NoError(t, err)
	// The service runs no worker: the status says what the compose waits for.
	assert.Equal(t, "pending: no connected worker builds x86_64; start one with `kiln worker --arch x86_64`\n", out)
	out, _, err = run(t, append([]string{"compose", "list"}, svc...)...)
	require.NoError(t, err)
	assert.Contains(t, out, id)

	resp, err := http.Get(server + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(metrics), `kiln_jobs{arch="",state="pending",type="depsolve"} 1`)
	assert.Contains(t, string(metrics), `kiln_jobs{arch="x86_64",state="pending",type="build"} 1`)
	assert.Contains(t, string(metrics), `kiln_http_request_duration_seconds_count{code="201",method="POST",route="composeImage"} 1`)
	assert.Contains(t, string(metrics), `kiln_workers_active 0`)
	assert.Contains(t, string(metrics), `kiln_composes{status="pending"} 1`)
	assert.Contains(t, out, "1 of 1")
	_, errOut, err = run(t, append([]string{"compose", "download", id, "-o", t.TempDir() + "/x"}, svc...)...)
	require.Error(t, err)
	assert.Contains(t, errOut, "no image (yet)")

	_, errOut, err = run(t, append([]string{"compose", "start", "../../examples/base.toml", "-t", "floppy"}, svc...)...)
	require.Error(t, err)
	assert.Contains(t, errOut, `unknown image type "floppy"`)

	// A blueprint file stored in the service, a new version on the second
	// push, and pulled back as TOML.
	out, errOut, err = run(t, append([]string{"blueprint", "push", "../../examples/base.toml", "-t", "qcow2"}, svc...)...)
	require.NoError(t, err, errOut)
	assert.Regexp(t, `^[0-9a-f-]{36} version 1\n$`, out)
	bpID := strings.Fields(out)[0]
	out, errOut, err = run(t, append([]string{"blueprint", "push", "../../examples/base.toml", "-t", "qcow2", "-t", "raw"}, svc...)...)
	require.NoError(t, err, errOut)
	assert.Equal(t, bpID+" version 2\n", out)
	out, errOut, err = run(t, append([]string{"blueprint", "pull", bpID}, svc...)...)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, `hostname = "base01"`)
	assert.Contains(t, out, `name = "ops"`)

	out, _, err = run(t, append([]string{"compose", "cancel", id}, svc...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "canceled")
	_, errOut, err = run(t, append([]string{"compose", "status", id}, svc...)...)
	require.Error(t, err)
	assert.Contains(t, errOut, "404")

	out, _, err = run(t, "token", "list", "--org", "acme", "--data", data, "--format", "json")
	require.NoError(t, err)
	tokID := regexp.MustCompile(`"id": "([0-9a-f-]{36})"`).FindStringSubmatch(out)
	require.NotNil(t, tokID, out)
	_, _, err = run(t, "token", "revoke", tokID[1], "--org", "other", "--data", data)
	assert.Error(t, err, "another org cannot revoke it")
	_, _, err = run(t, "token", "revoke", tokID[1], "--org", "acme", "--data", data)
	require.NoError(t, err)
	_, errOut, err = run(t, append([]string{"compose", "list"}, svc...)...)
	require.Error(t, err)
	assert.Contains(t, errOut, "unknown or revoked")
}

// startServe runs kiln serve with args on a free port until the test
// ends, and returns its address and its stderr.
func startServe(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd := newRootCommand(stdout, stderr)
	cmd.SetArgs(append([]string{"--cache-dir", t.TempDir(), "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	addr := regexp.MustCompile(`kiln serves on (http://\S+)`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stderr
		}
	}
	t.Fatalf("serve did not start: %s", stderr.String())
	return "", nil
}

// --workers 0 runs no in-process worker (an API host that builds nothing
// needs no root); -1 still means the same, as the deploy files say it.
func TestServeWithoutWorkers(t *testing.T) {
	for _, n := range []string{"0", "-1"} {
		t.Run(n, func(t *testing.T) {
			server, stderr := startServe(t, "--workers", n)
			assert.Contains(t, stderr.String(), `"workers":0`)
			// An in-process worker asks for a job as it starts; none does.
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				resp, err := http.Get(server + "/metrics")
				require.NoError(t, err)
				metrics, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Contains(t, string(metrics), "kiln_workers_active 0", "no worker asked for jobs")
			}
		})
	}
	_, errOut, err := run(t, "serve", "--workers", "-2", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, errOut, "--workers")
}

// useFakeBuilder makes the workers of the kiln commands this test runs
// in-process build with b, until the test ends.
func useFakeBuilder(t *testing.T, b *composetest.Builder) {
	testBuilder = b
	t.Cleanup(func() { testBuilder = nil })
}

// A compose through `kiln serve` and its in-process worker with the CLI's
// compose verbs: start, status --wait, download. The worker builds a fake
// image; the image downloaded is the one built from the compose's
// manifest.
func TestServeBuildsAComposeOnItsWorker(t *testing.T) {
	fake := &composetest.Builder{Size: 50 << 10}
	useFakeBuilder(t, fake)
	// The later --cache-dir and --data win over startServe's: a cache
	// whose repository metadata the run shares, for the depsolve, and a
	// data directory the test knows, for the token.
	data := t.TempDir()
	server, stderr := startServe(t, "--workers", "1", "--cache-dir", engineCache(t), "--data", data)
	tok, _, err := run(t, "token", "create", "--org", "acme", "--name", "fake", "--data", data)
	require.NoError(t, err)
	svc := []string{"--server", server, "--token", strings.TrimSpace(tok)}
	bp := writeBlueprint(t, "name = \"fake\"\n[customizations]\nhostname = \"built-on-the-worker\"\n")
	out, errOut, err := run(t, append([]string{"compose", "start", bp, "-t", "tar"}, svc...)...)
	require.NoError(t, err, errOut)
	id := strings.TrimSpace(out)

	out, errOut, err = run(t, append([]string{"compose", "status", id, "--wait"}, svc...)...)
	require.NoError(t, err, "%s\n%s", errOut, stderr.String())
	assert.Contains(t, out, "success")
	assert.Equal(t, 1, fake.Builds(), "the worker built with the test's builder")

	image := filepath.Join(t.TempDir(), "image")
	_, errOut, err = run(t, append([]string{"compose", "download", id, "-o", image}, svc...)...)
	require.NoError(t, err, errOut)
	got, err := os.ReadFile(image)
	require.NoError(t, err)
	header, _, _ := strings.Cut(strings.TrimPrefix(string(got), composetest.Magic), "\n")
	assert.Equal(t, "fake-debian-12-x86_64.tar.xz", header)
	assert.Contains(t, string(got), `"hostname": "built-on-the-worker"`)
	assert.Len(t, got, 50<<10)
}
