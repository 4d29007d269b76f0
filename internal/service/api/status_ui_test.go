package api

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// A cancelled compose stays a failure for image-builder's clients, says
// cancelled beside it, and has a listing filter of its own; a compose
// whose job failed is not cancelled, though status=failure lists both.
func TestCancelledIsAFailureToldApart(t *testing.T) {
	ts := newTestServer(t, nil)
	failed := composeOfType(t, ts, "qcow2")
	runJob(t, ts, workerproto.KindDepsolve, nil, &store.JobError{Reason: "package nope does not exist"})
	cancelled := composeOfType(t, ts, "qcow2")
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "POST", "/composes/"+cancelled+"/cancel", nil).status)
	pending := composeOfType(t, ts, "qcow2")

	_, st := statusOf(t, ts, cancelled)
	assert.Equal(t, "failure", st["status"], "image-builder's enum is kept")
	assert.Equal(t, true, st["cancelled"])
	_, st = statusOf(t, ts, failed)
	assert.Equal(t, "failure", st["status"])
	assert.NotContains(t, st, "cancelled", "a failed job is no cancellation")
	_, st = statusOf(t, ts, pending)
	assert.NotContains(t, st, "cancelled")

	n, items := listed(t, ts, "?status=cancelled")
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{cancelled}, idsOf(items))
	assert.Equal(t, true, items[0]["image_status"].(map[string]any)["cancelled"])
	n, items = listed(t, ts, "?status=failure")
	assert.Equal(t, 2, n, "image-builder's failure filter lists cancellations too")
	assert.ElementsMatch(t, []string{cancelled, failed}, idsOf(items))
	n, _ = listed(t, ts, "?status=cancelled&image_type=ami")
	assert.Equal(t, 0, n, "the filters combine")

	r := ts.do(t, "acme", "GET", "/composes?status=canceled", nil)
	assert.Equal(t, http.StatusBadRequest, r.status, "an unknown status is refused")
	assert.Contains(t, r.details(t), "status")
}

// The single compose's status names the blueprint and version it was
// built from, as the listing does; a compose made without one names none.
func TestComposeStatusNamesItsBlueprint(t *testing.T) {
	ts := newTestServer(t, nil)
	bp := createBlueprint(t, ts, "web")
	v2 := blueprintBody("web")
	v2["customizations"].(map[string]any)["hostname"] = "web02"
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "PUT", "/blueprints/"+bp, v2).status)
	r := ts.do(t, "acme", "POST", "/blueprints/"+bp+"/compose", map[string]any{"version": 1})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	built := r.json2(t)[0]["id"].(string)
	plain := composeOfType(t, ts, "qcow2")

	m, _ := statusOf(t, ts, built)
	assert.Equal(t, bp, m["blueprint_id"])
	assert.Equal(t, float64(1), m["blueprint_version"], "the version it was built from, not the latest")
	m, _ = statusOf(t, ts, plain)
	assert.NotContains(t, m, "blueprint_id")
	assert.NotContains(t, m, "blueprint_version")

	_, items := listed(t, ts, "")
	byID := map[string]map[string]any{}
	for _, it := range items {
		byID[it["id"].(string)] = it
	}
	assert.Equal(t, bp, byID[built]["blueprint_id"])
	assert.Equal(t, float64(1), byID[built]["blueprint_version"])
	assert.NotContains(t, byID[plain], "blueprint_id")
}

// readLog reads acme's log of compose id from query to its end.
func readLog(t *testing.T, ctx context.Context, ts *testServer, id, query string) (int, string) {
	t.Helper()
	code, text, err := fetchLog(ctx, ts, id, query)
	require.NoError(t, err)
	return code, text
}

func fetchLog(ctx context.Context, ts *testServer, id, query string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+Prefix+"/composes/"+id+"/logs"+query, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+ts.tokens["acme"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// A client whose log stream was cut off asks again with the offset it
// reached and gets only what follows, of a finished log or of one still
// being written; a bad offset is refused naming the parameter.
func TestLogFromAnOffset(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	ts := newTestServer(t, func(c *Config) { c.Artifacts = arts })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	running := composeOfType(t, ts, "qcow2")
	require.NoError(t, arts.Append(ctx, running, artifacts.BuildLog, []byte("stage 1\nstage 2\n")))
	got := make(chan string, 1)
	go func() {
		_, text, err := fetchLog(ctx, ts, running, "?offset=8")
		if err != nil {
			text = err.Error()
		}
		got <- text
	}()
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, arts.Append(ctx, running, artifacts.BuildLog, []byte("stage 3\n")))
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "POST", "/composes/"+running+"/cancel", nil).status)
	ts.server.LogChanged(running)
	select {
	case text := <-got:
		assert.Equal(t, "stage 2\nstage 3\n", text, "the followed log from byte 8 on, each line once")
	case <-ctx.Done():
		t.Fatal("the followed log never ended")
	}

	code, text := readLog(t, ctx, ts, running, "?offset=16")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "stage 3\n", text, "the ended log from byte 16 on")
	code, text = readLog(t, ctx, ts, running, "?offset=999")
	assert.Equal(t, http.StatusOK, code)
	assert.Empty(t, text, "an offset past the end gives nothing")
	code, text = readLog(t, ctx, ts, running, "")
	assert.Equal(t, "stage 1\nstage 2\nstage 3\n", text, "no offset, the whole log")

	for _, bad := range []string{"-1", "ten"} {
		code, text = readLog(t, ctx, ts, running, "?offset="+bad)
		assert.Equal(t, http.StatusBadRequest, code, bad)
		assert.Contains(t, text, "offset", bad)
	}
}
