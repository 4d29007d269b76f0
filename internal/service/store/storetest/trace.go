package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

// testTraceParent: a job keeps the trace context it was created with
// through every way it is read back (listings, a dequeue alone or in a
// batch, its lease) and through a retry; a job created without one reads
// back without one.
func testTraceParent(t *testing.T, b store.Backend, c *Clock) {
	const tp1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const tp2 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	cp := newCompose("a", c.Now())
	dep, build, bare := store.NewID(), store.NewID(), store.NewID()
	require.NoError(t, b.CreateCompose(ctx, cp, []store.Job{
		{ID: dep, Type: "depsolve", TraceParent: tp1, MaxAttempts: 2},
		{ID: build, Type: "build", Arch: "x86_64", Deps: []string{dep}, TraceParent: tp1},
		{ID: bare, Type: "upload"},
	}))
	// The quota's path stores jobs too.
	cp2 := newCompose("a", c.Now())
	other := store.NewID()
	require.NoError(t, b.CreateComposes(ctx, "a", []store.NewCompose{{Compose: cp2, Jobs: []store.Job{{ID: other, Type: "depsolve", TraceParent: tp2}}}},
		store.Quota{Limit: 10, Since: c.Now().Add(-time.Hour)}))

	jobs, err := b.ComposeJobs(ctx, "a", cp.ID)
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	assert.Equal(t, []string{tp1, tp1, ""}, []string{jobs[0].TraceParent, jobs[1].TraceParent, jobs[2].TraceParent})

	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, dep, l.Job.ID)
	assert.Equal(t, tp1, l.Job.TraceParent, "a dequeued job carries its trace context")
	j, err := b.Leased(ctx, dep, l.Token)
	require.NoError(t, err)
	assert.Equal(t, tp1, j.TraceParent, "so does its lease")

	ls, err := b.DequeueBatch(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute, 5)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	assert.Equal(t, other, ls[0].Job.ID)
	assert.Equal(t, tp2, ls[0].Job.TraceParent, "and one of a batch")

	// A retry keeps it: the next attempt belongs to the same trace.
	require.NoError(t, b.Finish(ctx, dep, l.Token, nil, &store.JobError{Reason: "the mirror did not answer", Retry: true}))
	l, err = b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w2"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, dep, l.Job.ID)
	assert.Equal(t, 2, l.Job.Attempts)
	assert.Equal(t, tp1, l.Job.TraceParent)

	require.NoError(t, b.Finish(ctx, dep, l.Token, json.RawMessage(`{"manifest":1}`), nil))
	l, err = b.Dequeue(ctx, []string{"build"}, []string{"x86_64"}, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, tp1, l.Job.TraceParent)
	require.NoError(t, b.Finish(ctx, build, l.Token, json.RawMessage(`{}`), nil))
	l, err = b.Dequeue(ctx, []string{"upload"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, bare, l.Job.ID)
	assert.Empty(t, l.Job.TraceParent, "a job created without a trace context has none")
}
