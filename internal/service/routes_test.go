package service

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/distro"
)

// The web UI is served at / beside the API, the probes, the metrics and
// the worker API, none of which it shadows.
func TestRoutesUIBesideTheAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := distro.Load()
	require.NoError(t, err)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Workers: -1, Distros: reg,
			Ready: func(a string) { addr <- a }})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("the service did not stop")
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("the service did not start: %v", err)
	}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	resp, body := get("/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, `src="/app.js"`)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")

	resp, body = get("/api/image-builder/v1/no-such-operation")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, `"errors"`)

	resp, body = get("/api/image-builder/v1/composes")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the API still authenticates")
	assert.Contains(t, body, `"errors"`)

	resp, _ = get("/api/image-builder/v1/version")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get("/livez")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get("/readyz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body = get("/metrics")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "kiln_")

	resp, _ = get("/api/worker/v1/jobs")
	assert.NotEqual(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), "the worker API is not the UI")
	resp, body = get("/api/other")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, `"errors"`)
	resp, _ = get("/no-such-page")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
