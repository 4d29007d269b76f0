package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// conforms checks a reply against the OpenAPI document's response for the
// operation at method and path: the document describes what is sent.
func conforms(t *testing.T, method, path string, r reply) {
	t.Helper()
	sp, err := loadSpec()
	require.NoError(t, err)
	req := httptest.NewRequest(method, Prefix+path, nil)
	route, params, err := sp.router.FindRoute(req)
	require.NoError(t, err, "%s %s is in the document", method, path)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), in), "%s %s answered %d %s", method, path, r.status, r.body)
}

// composeOfType submits a compose of an image type, by name or alias.
func composeOfType(t *testing.T, ts *testServer, typ string) string {
	t.Helper()
	b := composeBody()
	b["image_requests"].([]any)[0].(map[string]any)["image_type"] = typ
	r := ts.do(t, "acme", "POST", "/compose", b)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	return r.json(t)["id"].(string)
}

// runJob leases the next job of kind and finishes it with result, or
// with failure.
func runJob(t *testing.T, ts *testServer, kind string, result any, failure *store.JobError) store.Lease {
	t.Helper()
	ctx := context.Background()
	l, err := ts.db.Dequeue(ctx, []string{kind}, []string{"x86_64"}, store.Worker{Name: "test"}, time.Minute)
	require.NoError(t, err, kind)
	b, _ := json.Marshal(result)
	require.NoError(t, ts.db.Finish(ctx, l.Job.ID, l.Token, b, failure))
	return l
}

func listed(t *testing.T, ts *testServer, query string) (int, []map[string]any) {
	t.Helper()
	r := ts.do(t, "acme", "GET", "/composes"+query, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/composes"+query, r)
	m := r.json(t)
	var out []map[string]any
	for _, d := range m["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return int(m["meta"].(map[string]any)["count"].(float64)), out
}

func idsOf(items []map[string]any) []string {
	var out []string
	for _, it := range items {
		out = append(out, it["id"].(string))
	}
	return out
}

// The list filters by status and by image type (name or alias), pages
// the filtered set, and gives each compose its status.
func TestComposesFilteredByStatusAndType(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	ts := newTestServer(t, func(c *Config) { c.Artifacts = arts })
	failed := composeOfType(t, ts, "qcow2")
	runJob(t, ts, workerproto.KindDepsolve, nil, &store.JobError{Reason: "the packages could not be resolved", Details: "nginx: no such package"})
	done := composeOfType(t, ts, "azure")
	runJob(t, ts, workerproto.KindDepsolve, map[string]any{}, nil)
	_, err := arts.Put(context.Background(), done, "disk.vhd", strings.NewReader(image))
	require.NoError(t, err)
	runJob(t, ts, workerproto.KindBuild, workerproto.BuildResult{Filename: "disk.vhd", Size: int64(len(image)), SHA256: "c0ffee"}, nil)
	runJob(t, ts, workerproto.KindUpload, map[string]any{}, nil)
	pending := composeOfType(t, ts, "guest-image")

	n, all := listed(t, ts, "")
	assert.Equal(t, 3, n)
	statuses := map[string]string{}
	for _, it := range all {
		statuses[it["id"].(string)] = it["image_status"].(map[string]any)["status"].(string)
	}
	assert.Equal(t, map[string]string{failed: "failure", done: "success", pending: "pending"}, statuses, "each item has its status")
	item := all[1]["image_status"].(map[string]any)
	require.Equal(t, done, all[1]["id"])
	assert.Equal(t, float64(len(image)), item["upload_status"].(map[string]any)["options"].(map[string]any)["size"])

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?status=failure", []string{failed}},
		{"?status=success", []string{done}},
		{"?status=building", nil},
		{"?image_type=qcow2", []string{pending, failed}},
		{"?image_type=guest-image", []string{pending, failed}},
		{"?image_type=vhd", []string{done}},
		{"?image_type=azure&status=success", []string{done}},
		{"?image_type=azure&status=pending", nil},
		{"?image_type=qcow2&status=pending", []string{pending}},
	} {
		n, items := listed(t, ts, tc.query)
		assert.Equal(t, tc.want, idsOf(items), tc.query)
		assert.Equal(t, len(tc.want), n, "%s: meta.count counts the filtered set", tc.query)
	}
	n, items := listed(t, ts, "?image_type=qcow2&limit=1&offset=1")
	assert.Equal(t, 2, n)
	assert.Equal(t, []string{failed}, idsOf(items))

	for q, want := range map[string]string{"?status=lost": "status", "?image_type=floppy": `"floppy"`} {
		r := ts.do(t, "acme", "GET", "/composes"+q, nil)
		assert.Equal(t, http.StatusBadRequest, r.status, q)
		assert.Contains(t, r.details(t), want, q)
	}
	r := ts.do(t, "other", "GET", "/composes?image_type=qcow2", nil)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"], "another org's composes stay out")
}

func timelineOf(t *testing.T, st map[string]any) []string {
	t.Helper()
	var steps []string
	var last time.Time
	for _, s := range st["timeline"].([]any) {
		m := s.(map[string]any)
		at, err := time.Parse(time.RFC3339Nano, m["at"].(string))
		require.NoError(t, err)
		assert.False(t, at.Before(last), "the steps are in order")
		last = at
		steps = append(steps, m["step"].(string))
	}
	return steps
}

func statusOf(t *testing.T, ts *testServer, id string) (map[string]any, map[string]any) {
	t.Helper()
	r := ts.do(t, "acme", "GET", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "GET", "/composes/"+id, r)
	m := r.json(t)
	return m, m["image_status"].(map[string]any)
}

// A compose's status carries its creation time, the steps it reached,
// its image's size and, when it failed, the root cause.
func TestComposeStatusTimelineSizeAndCause(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	now := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	ts := newTestServer(t, func(c *Config) { c.Artifacts = arts; c.Now = func() time.Time { return now } })

	id := composeOfType(t, ts, "qcow2")
	m, st := statusOf(t, ts, id)
	assert.Equal(t, "2026-05-01T09:30:00Z", m["created_at"])
	assert.Equal(t, []string{"queued"}, timelineOf(t, st))

	runJob(t, ts, workerproto.KindDepsolve, map[string]any{}, nil)
	l, err := ts.db.Dequeue(context.Background(), []string{workerproto.KindBuild}, []string{"x86_64"}, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	_, st = statusOf(t, ts, id)
	assert.Equal(t, []string{"queued", "depsolved", "building"}, timelineOf(t, st))
	assert.NotContains(t, st, "error")

	// The worker names the stage and its tool's last line; the status
	// says which job failed with it.
	cause := "stage org.kiln.disk-image of pipeline image: mkfs.ext4: No space left on device"
	require.NoError(t, ts.db.Finish(context.Background(), l.Job.ID, l.Token, nil,
		&store.JobError{Reason: cause, Details: "image: stage org.kiln.disk-image: mkfs.ext4: exit status 1: mke2fs 1.47.0\nNo space left on device"}))
	_, st = statusOf(t, ts, id)
	assert.Equal(t, "failure", st["status"])
	e := st["error"].(map[string]any)
	assert.Equal(t, "build failed: "+cause, e["reason"])
	assert.Contains(t, e["details"], "exit status 1")
	assert.Equal(t, []string{"queued", "depsolved", "building", "failed"}, timelineOf(t, st))

	done := finishedCompose(t, ts, arts)
	_, st = statusOf(t, ts, done)
	assert.Equal(t, []string{"queued", "depsolved", "building", "uploading", "done"}, timelineOf(t, st))
	opts := st["upload_status"].(map[string]any)["options"].(map[string]any)
	assert.Equal(t, float64(len(image)), opts["size"])

	require.NoError(t, ts.db.MarkExpired(context.Background(), []string{done}))
	_, st = statusOf(t, ts, done)
	assert.NotContains(t, st["upload_status"].(map[string]any)["options"], "size", "no size once the image is gone")
}

// Cancelling keeps the compose listed, ends it as a failure cancelled by
// the user, and a second cancel is refused.
func TestCancelCompose(t *testing.T) {
	ts := newTestServer(t, nil)
	id := composeOfType(t, ts, "qcow2")
	assert.Equal(t, http.StatusNotFound, ts.do(t, "other", "POST", "/composes/"+id+"/cancel", nil).status, "another org cannot cancel it")

	r := ts.do(t, "acme", "POST", "/composes/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	conforms(t, "POST", "/composes/"+id+"/cancel", r)
	assert.Equal(t, id, r.json(t)["id"])

	n, items := listed(t, ts, "?status=failure")
	assert.Equal(t, 1, n, "a cancelled compose stays listed")
	assert.Equal(t, []string{id}, idsOf(items))
	_, st := statusOf(t, ts, id)
	assert.Equal(t, "failure", st["status"])
	assert.Equal(t, "cancelled by the user", st["error"].(map[string]any)["reason"])
	assert.Equal(t, []string{"queued", "cancelled"}, timelineOf(t, st))

	r = ts.do(t, "acme", "POST", "/composes/"+id+"/cancel", nil)
	assert.Equal(t, http.StatusConflict, r.status, string(r.body))
	conforms(t, "POST", "/composes/"+id+"/cancel", r)
	assert.Contains(t, r.details(t), "already ended")

	// A running job is stopped through its worker; meanwhile the compose
	// is a failure already (its pending jobs are cancelled) and a second
	// cancel is refused too.
	running := composeOfType(t, ts, "qcow2")
	l, err := ts.db.Dequeue(context.Background(), []string{workerproto.KindDepsolve}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ts.do(t, "acme", "POST", "/composes/"+running+"/cancel", nil).status)
	assert.ErrorIs(t, ts.db.Heartbeat(context.Background(), l.Job.ID, l.Token, time.Minute), store.ErrCanceled, "the worker hears of it")
	_, st = statusOf(t, ts, running)
	assert.Equal(t, "cancelled by the user", st["error"].(map[string]any)["reason"])
	assert.Equal(t, http.StatusConflict, ts.do(t, "acme", "POST", "/composes/"+running+"/cancel", nil).status)

	// DELETE keeps its meaning: an ended compose is hidden.
	assert.Equal(t, http.StatusOK, ts.do(t, "acme", "DELETE", "/composes/"+id, nil).status)
	assert.Equal(t, http.StatusNotFound, ts.do(t, "acme", "GET", "/composes/"+id, nil).status)
}
