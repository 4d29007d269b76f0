package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

// A compose for an architecture that no connected worker builds is
// accepted, and its status says what it waits for until such a worker
// connects; listings say the same.
func TestComposeSaysNoConnectedWorkerBuildsItsArch(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, nil)
	body := composeBody()
	body["image_requests"] = []any{map[string]any{
		"architecture": "aarch64", "image_type": "qcow2",
		"upload_request": map[string]any{"type": "local", "options": map[string]any{}},
	}}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	waiting := func() any {
		t.Helper()
		r := ts.do(t, "acme", "GET", "/composes/"+id, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		st := r.json(t)["image_status"].(map[string]any)
		assert.Equal(t, "pending", st["status"], "the compose waits in the queue")
		list := ts.do(t, "acme", "GET", "/composes", nil)
		require.Equal(t, http.StatusOK, list.status, string(list.body))
		item := list.json(t)["data"].([]any)[0].(map[string]any)["image_status"].(map[string]any)
		assert.Equal(t, st["waiting"], item["waiting"], "the listing says what the status says")
		return st["waiting"]
	}
	want := map[string]any{"architecture": "aarch64", "reason": "no connected worker builds aarch64; start one with `kiln worker --arch aarch64`"}
	assert.Equal(t, want, waiting(), "no worker is connected")

	seen := func(name string, arches []string, at time.Time) {
		require.NoError(t, ts.db.SeeWorker(ctx, store.SeenWorker{Name: name, Arches: arches, LastSeen: at}))
	}
	seen("x86", []string{"x86_64"}, time.Now())
	assert.Equal(t, want, waiting(), "the connected worker builds only x86_64")
	seen("arm-gone", []string{"aarch64"}, time.Now().Add(-store.ConnectedWindow-time.Second))
	assert.Equal(t, want, waiting(), "the aarch64 worker was last seen too long ago")
	seen("arm", []string{"x86_64", "aarch64"}, time.Now())
	assert.Nil(t, waiting(), "an aarch64 worker is connected: the compose just waits its turn")
}

// A compose whose architecture some connected worker builds, or which
// ended, says nothing of waiting.
func TestComposeForABuiltArchSaysNothingOfWaiting(t *testing.T) {
	ts := newTestServer(t, nil)
	require.NoError(t, ts.db.SeeWorker(context.Background(), store.SeenWorker{Name: "x86", Arches: []string{"x86_64"}, LastSeen: time.Now()}))
	r := ts.do(t, "acme", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	st := ts.do(t, "acme", "GET", "/composes/"+id, nil).json(t)["image_status"].(map[string]any)
	assert.NotContains(t, st, "waiting")

	body := composeBody()
	body["image_requests"] = []any{map[string]any{
		"architecture": "aarch64", "image_type": "raw",
		"upload_request": map[string]any{"type": "local", "options": map[string]any{}},
	}}
	r = ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id = r.json(t)["id"].(string)
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "POST", "/composes/"+id+"/cancel", nil).status)
	st = ts.do(t, "acme", "GET", "/composes/"+id, nil).json(t)["image_status"].(map[string]any)
	assert.Equal(t, "failure", st["status"])
	assert.NotContains(t, st, "waiting", "a cancelled compose waits for nothing")
}
