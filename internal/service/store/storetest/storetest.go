// Package storetest is the conformance suite every store backend must
// pass: tenancy, pagination and the queue's semantics (dependencies,
// leases, heartbeats, rescue of jobs whose worker died, retries,
// cancellation, concurrent hand-out).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

// Clock is a clock the suite moves.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Open opens an empty backend using clock.
type Open func(t *testing.T, clock func() time.Time) store.Backend

// Run runs the suite.
func Run(t *testing.T, open Open) {
	env := func(t *testing.T) (store.Backend, *Clock) {
		c := &Clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
		b := open(t, c.Now)
		t.Cleanup(func() { b.Close() })
		return b, c
	}
	t.Run("tokens", func(t *testing.T) { b, c := env(t); testTokens(t, b, c) })
	t.Run("worker tokens", func(t *testing.T) { b, c := env(t); testWorkerTokens(t, b, c) })
	t.Run("composes", func(t *testing.T) { b, c := env(t); testComposes(t, b, c) })
	t.Run("worker token revocation", func(t *testing.T) { b, c := env(t); testRevocationEndsLeases(t, b, c) })
	t.Run("compose quota", func(t *testing.T) { b, c := env(t); testComposeQuota(t, b, c) })
	t.Run("compose filters", func(t *testing.T) { b, c := env(t); testComposeFilters(t, b, c) })
	t.Run("compose status", func(t *testing.T) { b, c := env(t); testComposeStatus(t, b, c) })
	t.Run("queue", func(t *testing.T) { b, c := env(t); testQueue(t, b, c) })
	t.Run("rescue", func(t *testing.T) { b, c := env(t); testRescue(t, b, c) })
	t.Run("expired leases", func(t *testing.T) { b, c := env(t); testExpiredLeases(t, b, c) })
	t.Run("retry", func(t *testing.T) { b, c := env(t); testRetry(t, b, c) })
	t.Run("cancel", func(t *testing.T) { b, c := env(t); testCancel(t, b, c) })
	t.Run("blueprints", func(t *testing.T) { b, c := env(t); testBlueprints(t, b, c) })
	t.Run("expiry", func(t *testing.T) { b, c := env(t); testExpiry(t, b, c) })
	t.Run("concurrent dequeue", func(t *testing.T) { b, c := env(t); testConcurrentDequeue(t, b, c) })
	t.Run("workers", func(t *testing.T) { b, c := env(t); testWorkers(t, b, c) })
	t.Run("dequeue batch", func(t *testing.T) { b, c := env(t); testDequeueBatch(t, b, c) })
	t.Run("concurrent dequeue batch", func(t *testing.T) { b, c := env(t); testConcurrentDequeueBatch(t, b, c) })
	t.Run("trace context", func(t *testing.T) { b, c := env(t); testTraceParent(t, b, c) })
	t.Run("incidents", func(t *testing.T) { b, c := env(t); testIncidents(t, b, c) })
	t.Run("uptime", func(t *testing.T) { b, c := env(t); testUptime(t, b, c) })
	t.Run("upload outcomes", func(t *testing.T) { b, c := env(t); testUploadOutcomes(t, b, c) })
}

var ctx = context.Background()

func testTokens(t *testing.T, b store.Backend, c *Clock) {
	secret, hash := store.NewSecret("kiln_")
	require.NoError(t, b.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: "a", Name: "ci", Hash: hash, CreatedAt: c.Now()}))
	_, hb := store.NewSecret("kiln_")
	require.NoError(t, b.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: "b", Name: "other", Hash: hb, CreatedAt: c.Now()}))

	tok, err := b.TokenByHash(ctx, store.HashSecret(secret))
	require.NoError(t, err)
	assert.Equal(t, "a", tok.OrgID)
	assert.Equal(t, "ci", tok.Name)
	_, err = b.TokenByHash(ctx, store.HashSecret("kiln_wrong"))
	assert.ErrorIs(t, err, store.ErrNotFound)

	list, err := b.ListTokens(ctx, "a")
	require.NoError(t, err)
	require.Len(t, list, 1, "an org lists only its own tokens")

	assert.ErrorIs(t, b.RevokeToken(ctx, "b", tok.ID), store.ErrNotFound, "another org cannot revoke it")
	require.NoError(t, b.RevokeToken(ctx, "a", tok.ID))
	_, err = b.TokenByHash(ctx, tok.Hash)
	assert.ErrorIs(t, err, store.ErrNotFound, "a revoked token does not authenticate")
	list, err = b.ListTokens(ctx, "a")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.NotNil(t, list[0].RevokedAt)
}

func testWorkerTokens(t *testing.T, b store.Backend, c *Clock) {
	secret, hash := store.NewSecret("kwt_")
	require.NoError(t, b.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "rack-1", Hash: hash, CreatedAt: c.Now()}))
	_, other := store.NewSecret("kwt_")
	require.NoError(t, b.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "rack-2", Hash: other, CreatedAt: c.Now().Add(time.Second)}))
	assert.Error(t, b.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "dup", Hash: hash, CreatedAt: c.Now()}), "a hash is unique")

	tok, err := b.WorkerTokenByHash(ctx, store.HashSecret(secret))
	require.NoError(t, err)
	assert.Equal(t, "rack-1", tok.Name)
	_, err = b.WorkerTokenByHash(ctx, store.HashSecret("kwt_wrong"))
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.TokenByHash(ctx, hash)
	assert.ErrorIs(t, err, store.ErrNotFound, "a worker token is not an API token")

	list, err := b.ListWorkerTokens(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "rack-1", list[0].Name)

	require.NoError(t, b.RevokeWorkerToken(ctx, tok.ID))
	assert.ErrorIs(t, b.RevokeWorkerToken(ctx, tok.ID), store.ErrNotFound, "revoked once")
	assert.ErrorIs(t, b.RevokeWorkerToken(ctx, store.NewID()), store.ErrNotFound)
	_, err = b.WorkerTokenByHash(ctx, hash)
	assert.ErrorIs(t, err, store.ErrNotFound, "a revoked worker token does not authenticate")
	list, err = b.ListWorkerTokens(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.NotNil(t, list[0].RevokedAt)
}

func newCompose(org string, created time.Time) store.Compose {
	return store.Compose{ID: store.NewID(), OrgID: org, CreatedAt: created, ImageName: "img", Request: json.RawMessage(`{"distribution":"debian-12"}`)}
}

func testComposes(t *testing.T, b store.Backend, c *Clock) {
	var ids []string
	for i := range 5 {
		cp := newCompose("a", c.Now().Add(time.Duration(i)*time.Second))
		require.NoError(t, b.CreateCompose(ctx, cp, nil))
		ids = append(ids, cp.ID)
	}
	other := newCompose("b", c.Now())
	require.NoError(t, b.CreateCompose(ctx, other, nil))

	got, err := b.GetCompose(ctx, "a", ids[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"distribution":"debian-12"}`, string(got.Request))
	assert.True(t, got.CreatedAt.Equal(c.Now()))
	_, err = b.GetCompose(ctx, "a", other.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "another org's compose does not exist")

	page, total, err := b.ListComposes(ctx, "a", store.ComposeFilter{}, store.Page{Limit: 2, Offset: 1})
	require.NoError(t, err)
	assert.Equal(t, 5, total)
	require.Len(t, page, 2)
	assert.Equal(t, ids[3], page[0].ID, "newest first")
	assert.Equal(t, ids[2], page[1].ID)
	page, _, err = b.ListComposes(ctx, "a", store.ComposeFilter{}, store.Page{Limit: 10, Offset: 4})
	require.NoError(t, err)
	assert.Len(t, page, 1)

	n, oldest, err := b.CountComposesSince(ctx, "a", c.Now().Add(2*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.True(t, oldest.Equal(c.Now().Add(2*time.Second)), "the oldest counted compose: %v", oldest)

	assert.ErrorIs(t, b.HideCompose(ctx, "b", ids[0]), store.ErrNotFound)
	require.NoError(t, b.HideCompose(ctx, "a", ids[0]))
	_, err = b.GetCompose(ctx, "a", ids[0])
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, total, err = b.ListComposes(ctx, "a", store.ComposeFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 4, total)
	n, _, err = b.CountComposesSince(ctx, "a", c.Now())
	require.NoError(t, err)
	assert.Equal(t, 5, n, "hidden composes still count against the quota")
}

// chain makes a compose with depsolve → build (x86_64) → upload.
func chain(t *testing.T, b store.Backend, org string, c *Clock, maxAttempts int) (store.Compose, [3]string) {
	cp := newCompose(org, c.Now())
	ids := [3]string{store.NewID(), store.NewID(), store.NewID()}
	jobs := []store.Job{
		{ID: ids[0], Type: "depsolve", Args: json.RawMessage(`{"packages":["jq"]}`), MaxAttempts: maxAttempts},
		{ID: ids[1], Type: "build", Arch: "x86_64", Deps: []string{ids[0]}, MaxAttempts: maxAttempts},
		{ID: ids[2], Type: "upload", Deps: []string{ids[1]}, MaxAttempts: maxAttempts},
	}
	require.NoError(t, b.CreateCompose(ctx, cp, jobs))
	return cp, ids
}

func states(t *testing.T, b store.Backend, cp store.Compose) []string {
	t.Helper()
	jobs, err := b.ComposeJobs(ctx, cp.OrgID, cp.ID)
	require.NoError(t, err)
	var out []string
	for _, j := range jobs {
		out = append(out, j.State)
	}
	return out
}

func testQueue(t *testing.T, b store.Backend, c *Clock) {
	wait := b.Wait()
	cp, ids := chain(t, b, "a", c, 0)
	select {
	case <-wait:
	default:
		t.Error("a new compose wakes waiting workers")
	}

	_, err := b.Dequeue(ctx, []string{"build", "upload"}, []string{"x86_64"}, store.Worker{Name: "w1"}, time.Minute)
	assert.ErrorIs(t, err, store.ErrNoJob, "the build waits for its depsolve")
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w1"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[0], l.Job.ID)
	assert.Equal(t, store.JobRunning, l.Job.State)
	assert.Equal(t, 1, l.Job.Attempts)
	assert.Equal(t, store.DefaultMaxAttempts, l.Job.MaxAttempts, "a job stored without MaxAttempts gets the default")
	assert.JSONEq(t, `{"packages":["jq"]}`, string(l.Job.Args))
	_, err = b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w2"}, time.Minute)
	assert.ErrorIs(t, err, store.ErrNoJob, "a leased job is not handed out twice")

	assert.ErrorIs(t, b.Heartbeat(ctx, l.Job.ID, "kjt_wrong", time.Minute), store.ErrLeaseLost)
	leased, err := b.Leased(ctx, l.Job.ID, l.Token)
	require.NoError(t, err)
	assert.Equal(t, cp.ID, leased.ComposeID)
	_, err = b.Leased(ctx, l.Job.ID, "kjt_wrong")
	assert.ErrorIs(t, err, store.ErrLeaseLost)
	assert.ErrorIs(t, b.Finish(ctx, l.Job.ID, "kjt_wrong", nil, nil), store.ErrLeaseLost)
	require.NoError(t, b.Heartbeat(ctx, l.Job.ID, l.Token, time.Minute))
	require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, json.RawMessage(`{"debs":42}`), nil))
	assert.ErrorIs(t, b.Finish(ctx, l.Job.ID, l.Token, nil, nil), store.ErrLeaseLost, "a finished job cannot finish again")

	_, err = b.Dequeue(ctx, []string{"build"}, []string{"aarch64"}, store.Worker{Name: "arm"}, time.Minute)
	assert.ErrorIs(t, err, store.ErrNoJob, "builds are routed by architecture")
	l, err = b.Dequeue(ctx, []string{"build"}, []string{"aarch64", "x86_64"}, store.Worker{Name: "w1"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[1], l.Job.ID)
	assert.JSONEq(t, `{"debs":42}`, string(l.DepResults["depsolve"]), "a job gets its dependencies' results")
	require.NoError(t, b.SetProgress(ctx, l.Job.ID, l.Token, store.Progress{Done: 3, Total: 13, Step: "registering"}))
	jobs, err := b.ComposeJobs(ctx, "a", cp.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Progress{Done: 3, Total: 13, Step: "registering"}, jobs[1].Progress, "the step is kept beside the count")
	assert.Equal(t, []string{ids[0]}, jobs[1].Deps)
	assert.Equal(t, "w1", jobs[1].Worker)

	require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, &store.JobError{Reason: "disk image: no space left", Details: "stage kiln.disk.image"}))
	assert.Equal(t, []string{store.JobSuccess, store.JobFailure, store.JobFailure}, states(t, b, cp))
	jobs, err = b.ComposeJobs(ctx, "a", cp.ID)
	require.NoError(t, err)
	require.NotNil(t, jobs[2].Error)
	assert.Contains(t, jobs[2].Error.Reason, "build job")
	assert.Contains(t, jobs[2].Error.Details, "disk image: no space left", "the root cause reaches the dependents")
	assert.NotNil(t, jobs[2].FinishedAt)

	none, err := b.ComposeJobs(ctx, "b", cp.ID)
	require.NoError(t, err)
	assert.Empty(t, none, "another org sees no jobs")

	counts, err := b.Counts(ctx)
	require.NoError(t, err)
	assert.Contains(t, counts, store.JobCount{Type: "build", Arch: "x86_64", State: store.JobFailure, N: 1})

	// Compose statuses, derived from jobs: the compose above failed.
	done, _ := chain(t, b, "b", c, 0)
	for _, step := range []struct{ typ, arch string }{{"depsolve", ""}, {"build", "x86_64"}, {"upload", ""}} {
		l, err := b.Dequeue(ctx, []string{step.typ}, []string{step.arch}, store.Worker{Name: "w"}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, done.ID, l.Job.ComposeID)
		if step.typ == "upload" {
			st, err := b.ComposeStatusCounts(ctx, "upload")
			require.NoError(t, err)
			assert.Equal(t, map[string]int{"failure": 1, "uploading": 1}, st)
		}
		require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, nil))
	}
	chain(t, b, "a", c, 0)
	st, err := b.ComposeStatusCounts(ctx, "upload")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"failure": 1, "success": 1, "pending": 1}, st)
	l, err = b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	st, err = b.ComposeStatusCounts(ctx, "upload")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"failure": 1, "success": 1, "building": 1}, st)
	require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, nil))
}

func testRescue(t *testing.T, b store.Backend, c *Clock) {
	cp, ids := chain(t, b, "a", c, 2)
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "dies"}, time.Minute)
	require.NoError(t, err)
	c.Advance(30 * time.Second)
	requeued, failed, err := b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, requeued+failed, "a live lease is left alone")

	c.Advance(time.Minute)
	requeued, failed, err = b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, requeued)
	assert.Equal(t, 0, failed)
	assert.ErrorIs(t, b.Heartbeat(ctx, l.Job.ID, l.Token, time.Minute), store.ErrLeaseLost, "the dead worker's lease is gone")

	l2, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "also-dies"}, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, ids[0], l2.Job.ID)
	assert.Equal(t, 2, l2.Job.Attempts)
	c.Advance(2 * time.Minute)
	requeued, failed, err = b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, requeued)
	assert.Equal(t, 1, failed, "attempts used up")
	jobs, err := b.ComposeJobs(ctx, "a", cp.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobFailure, jobs[0].State)
	assert.Contains(t, jobs[0].Error.Reason, "stopped heartbeating")
	assert.Equal(t, []string{store.JobFailure, store.JobFailure, store.JobFailure}, states(t, b, cp))
}

func testRetry(t *testing.T, b store.Backend, c *Clock) {
	cp, _ := chain(t, b, "a", c, 2)
	for attempt := 1; attempt <= 2; attempt++ {
		l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
		require.NoError(t, err, "attempt %d", attempt)
		require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, &store.JobError{Reason: "mirror timed out", Retry: true}))
	}
	_, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	assert.ErrorIs(t, err, store.ErrNoJob)
	assert.Equal(t, []string{store.JobFailure, store.JobFailure, store.JobFailure}, states(t, b, cp))

	// Bad input is never retried.
	cp, _ = chain(t, b, "a", c, 3)
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, &store.JobError{Reason: "package nope does not exist"}))
	assert.Equal(t, store.JobFailure, states(t, b, cp)[0])
}

func testCancel(t *testing.T, b store.Backend, c *Clock) {
	cp, _ := chain(t, b, "a", c, 0)
	assert.ErrorIs(t, b.CancelCompose(ctx, "b", cp.ID), store.ErrNotFound, "another org cannot cancel it")
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.CancelCompose(ctx, "a", cp.ID))
	assert.Equal(t, []string{store.JobRunning, store.JobCanceled, store.JobCanceled}, states(t, b, cp))
	assert.ErrorIs(t, b.Heartbeat(ctx, l.Job.ID, l.Token, time.Minute), store.ErrCanceled, "the worker hears of it")
	assert.ErrorIs(t, b.CancelCompose(ctx, "a", cp.ID), store.ErrEnded, "a running job already being canceled is not canceled twice")
	require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, &store.JobError{Reason: "stopped"}))
	assert.Equal(t, []string{store.JobCanceled, store.JobCanceled, store.JobCanceled}, states(t, b, cp))
	assert.ErrorIs(t, b.CancelCompose(ctx, "a", cp.ID), store.ErrEnded, "nothing is left to cancel")
	jobs, err := b.ComposeJobs(ctx, "a", cp.ID)
	require.NoError(t, err)
	for _, j := range jobs {
		assert.NotNil(t, j.FinishedAt, "a canceled job has the time it ended")
	}

	// A pending compose is canceled at once, and only once.
	cp, _ = chain(t, b, "a", c, 0)
	require.NoError(t, b.CancelCompose(ctx, "a", cp.ID))
	assert.Equal(t, []string{store.JobCanceled, store.JobCanceled, store.JobCanceled}, states(t, b, cp))
	assert.ErrorIs(t, b.CancelCompose(ctx, "a", cp.ID), store.ErrEnded)

	// A canceled job whose worker died ends canceled, not requeued.
	cp, _ = chain(t, b, "a", c, 0)
	_, err = b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.CancelCompose(ctx, "a", cp.ID))
	c.Advance(2 * time.Minute)
	_, _, err = b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{store.JobCanceled, store.JobCanceled, store.JobCanceled}, states(t, b, cp))
}

func testConcurrentDequeue(t *testing.T, b store.Backend, c *Clock) {
	for range 3 {
		chain(t, b, "a", c, 0)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: fmt.Sprintf("w%d", w)}, time.Minute)
				if err != nil {
					return
				}
				mu.Lock()
				got[l.Job.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Len(t, got, 3, "every ready job is handed out")
	for id, n := range got {
		assert.Equal(t, 1, n, "job %s handed out once", id)
	}
}

func testExpiry(t *testing.T, b store.Backend, c *Clock) {
	old, _ := chain(t, b, "a", c, 0)
	require.NoError(t, b.CancelCompose(ctx, "a", old.ID)) // ended
	running, _ := chain(t, b, "b", c, 0)
	c.Advance(time.Hour)
	recent, _ := chain(t, b, "a", c, 0)
	require.NoError(t, b.CancelCompose(ctx, "a", recent.ID))

	ids, err := b.ExpirableComposes(ctx, c.Now().Add(-30*time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{old.ID}, ids, "old and ended; not the running one, not the recent one")
	ids, err = b.ExpirableComposes(ctx, c.Now().Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{old.ID, recent.ID}, ids, "oldest first")
	require.NoError(t, b.MarkExpired(ctx, []string{old.ID}))
	ids, err = b.ExpirableComposes(ctx, c.Now().Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{recent.ID}, ids)
	got, err := b.GetCompose(ctx, "a", old.ID)
	assert.NoError(t, err, "an expired compose is still listed; only its files are gone")
	assert.True(t, got.Expired, "and says its files are gone")
	got, err = b.GetCompose(ctx, "a", recent.ID)
	require.NoError(t, err)
	assert.False(t, got.Expired)
	_ = running
}

func testBlueprints(t *testing.T, b store.Backend, c *Clock) {
	bp := store.Blueprint{ID: store.NewID(), OrgID: "a", Name: "web", Description: "d1", Body: json.RawMessage(`{"v":1}`), UpdatedAt: c.Now()}
	require.NoError(t, b.CreateBlueprint(ctx, bp))
	dup := bp
	dup.ID = store.NewID()
	assert.ErrorIs(t, b.CreateBlueprint(ctx, dup), store.ErrConflict, "names are unique in an org")
	dup.OrgID = "b"
	require.NoError(t, b.CreateBlueprint(ctx, dup), "another org may use the name")

	c.Advance(time.Minute)
	bp.Body, bp.Description, bp.UpdatedAt = json.RawMessage(`{"v":2}`), "d2", c.Now()
	v, err := b.UpdateBlueprint(ctx, bp)
	require.NoError(t, err)
	assert.Equal(t, 2, v)
	other := bp
	other.OrgID = "b"
	_, err = b.UpdateBlueprint(ctx, other)
	assert.ErrorIs(t, err, store.ErrNotFound, "another org cannot update it")

	got, err := b.GetBlueprint(ctx, "a", bp.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Version)
	assert.JSONEq(t, `{"v":2}`, string(got.Body))
	assert.Equal(t, "d2", got.Description)
	got, err = b.GetBlueprint(ctx, "a", bp.ID, 1)
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":1}`, string(got.Body), "old versions are kept")
	_, err = b.GetBlueprint(ctx, "a", bp.ID, 3)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.GetBlueprint(ctx, "b", bp.ID, 0)
	assert.ErrorIs(t, err, store.ErrNotFound)

	versions, err := b.ListBlueprintVersions(ctx, "a", bp.ID)
	require.NoError(t, err)
	require.Len(t, versions, 2)
	assert.Equal(t, []int{2, 1}, []int{versions[0].Version, versions[1].Version}, "newest first")
	assert.JSONEq(t, `{"v":2}`, string(versions[0].Body))
	assert.JSONEq(t, `{"v":1}`, string(versions[1].Body))
	assert.True(t, versions[0].UpdatedAt.Equal(c.Now()), "each version has the time it was stored")
	assert.True(t, versions[1].UpdatedAt.Equal(c.Now().Add(-time.Minute)))
	_, err = b.ListBlueprintVersions(ctx, "b", bp.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "another org sees no versions")

	list, total, err := b.ListBlueprints(ctx, "a", "", store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	require.Len(t, list, 1)
	assert.Equal(t, 2, list[0].Version)
	_, total, err = b.ListBlueprints(ctx, "a", "nope", store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total)

	cp := newCompose("a", c.Now())
	cp.BlueprintID, cp.BlueprintVersion = bp.ID, 2
	require.NoError(t, b.CreateCompose(ctx, cp, nil))
	require.NoError(t, b.CreateCompose(ctx, newCompose("a", c.Now()), nil))
	cs, total, err := b.ListBlueprintComposes(ctx, "a", bp.ID, 0, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	require.Len(t, cs, 1)
	assert.Equal(t, 2, cs[0].BlueprintVersion)
	_, total, err = b.ListBlueprintComposes(ctx, "a", bp.ID, 1, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total)
	_, total, err = b.ListBlueprintComposes(ctx, "b", bp.ID, 0, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total)
	// The compose listing's filter finds the same ones.
	for _, tc := range []struct {
		org     string
		version int
		want    int
	}{{"a", 0, 1}, {"a", 2, 1}, {"a", 1, 0}, {"b", 0, 0}} {
		cs, total, err := b.ListComposes(ctx, tc.org, store.ComposeFilter{BlueprintID: bp.ID, BlueprintVersion: tc.version}, store.Page{Limit: 10})
		require.NoError(t, err)
		assert.Equal(t, tc.want, total, "org %s, version %d", tc.org, tc.version)
		assert.Len(t, cs, tc.want, "org %s, version %d", tc.org, tc.version)
	}

	assert.ErrorIs(t, b.DeleteBlueprint(ctx, "b", bp.ID), store.ErrNotFound)
	require.NoError(t, b.DeleteBlueprint(ctx, "a", bp.ID))
	_, err = b.GetBlueprint(ctx, "a", bp.ID, 0)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.ListBlueprintVersions(ctx, "a", bp.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a deleted blueprint has no versions")
	bp.ID = store.NewID()
	require.NoError(t, b.CreateBlueprint(ctx, bp), "a deleted blueprint's name is free again")
}

// testComposeFilters lists composes by status and image type, and reads
// the jobs of a page of composes at once.
func testComposeFilters(t *testing.T, b store.Backend, c *Clock) {
	mk := func(org, typ string) (store.Compose, [3]string) {
		c.Advance(time.Second)
		cp := newCompose(org, c.Now())
		cp.ImageType = typ
		ids := [3]string{store.NewID(), store.NewID(), store.NewID()}
		require.NoError(t, b.CreateCompose(ctx, cp, []store.Job{
			{ID: ids[0], Type: "depsolve"},
			{ID: ids[1], Type: "build", Arch: "x86_64", Deps: []string{ids[0]}},
			{ID: ids[2], Type: "upload", Deps: []string{ids[1]}},
		}))
		return cp, ids
	}
	run := func(typ string, ok bool) {
		t.Helper()
		l, err := b.Dequeue(ctx, []string{typ}, []string{"x86_64"}, store.Worker{Name: "w"}, time.Minute)
		require.NoError(t, err)
		var failure *store.JobError
		if !ok {
			failure = &store.JobError{Reason: "broken"}
		}
		require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, failure))
	}
	failed, _ := mk("a", "qcow2")
	run("depsolve", false)
	done, _ := mk("a", "tar")
	run("depsolve", true)
	run("build", true)
	run("upload", true)
	pending, _ := mk("a", "qcow2")
	other, _ := mk("b", "qcow2")

	got, err := b.GetCompose(ctx, "a", done.ID)
	require.NoError(t, err)
	assert.Equal(t, "tar", got.ImageType)

	ids := func(list []store.Compose) []string {
		var out []string
		for _, cp := range list {
			out = append(out, cp.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f     store.ComposeFilter
		want  []string
		label string
	}{
		{store.ComposeFilter{}, []string{pending.ID, done.ID, failed.ID}, "no filter"},
		{store.ComposeFilter{ImageType: "qcow2"}, []string{pending.ID, failed.ID}, "by type"},
		{store.ComposeFilter{Status: "failure", LastType: "upload"}, []string{failed.ID}, "failed"},
		{store.ComposeFilter{Status: "success", LastType: "upload"}, []string{done.ID}, "succeeded"},
		{store.ComposeFilter{Status: "pending", LastType: "upload"}, []string{pending.ID}, "pending"},
		{store.ComposeFilter{Status: "pending", LastType: "upload", ImageType: "tar"}, nil, "both"},
		{store.ComposeFilter{Status: "success", LastType: "upload", ImageType: "tar"}, []string{done.ID}, "both, matching"},
		{store.ComposeFilter{IgnoreImageTypes: []string{"tar"}}, []string{pending.ID, failed.ID}, "ignoring a type"},
		{store.ComposeFilter{IgnoreImageTypes: []string{"tar", "qcow2"}}, nil, "ignoring every type"},
		{store.ComposeFilter{BlueprintID: "nonesuch"}, nil, "of a blueprint"},
	} {
		list, total, err := b.ListComposes(ctx, "a", tc.f, store.Page{Limit: 10})
		require.NoError(t, err, tc.label)
		assert.Equal(t, tc.want, ids(list), tc.label)
		assert.Equal(t, len(tc.want), total, "%s: the total counts the matches", tc.label)
	}
	page, total, err := b.ListComposes(ctx, "a", store.ComposeFilter{ImageType: "qcow2"}, store.Page{Limit: 1, Offset: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, total)
	assert.Equal(t, []string{failed.ID}, ids(page), "a filtered list pages")

	// A running job makes a compose building; its upload running, uploading.
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	list, _, err := b.ListComposes(ctx, "a", store.ComposeFilter{Status: "building", LastType: "upload"}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{pending.ID}, ids(list))
	require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, nil))

	jobs, err := b.JobsByCompose(ctx, "a", []string{failed.ID, done.ID, other.ID})
	require.NoError(t, err)
	assert.Len(t, jobs, 2, "another org's compose has no jobs here")
	want, err := b.ComposeJobs(ctx, "a", done.ID)
	require.NoError(t, err)
	assert.Equal(t, want, jobs[done.ID], "the same jobs as ComposeJobs, in order, with their dependencies")
	assert.Equal(t, []string{store.JobFailure, store.JobFailure, store.JobFailure}, func() []string {
		var out []string
		for _, j := range jobs[failed.ID] {
			out = append(out, j.State)
		}
		return out
	}())
	none, err := b.JobsByCompose(ctx, "a", nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

// withJob is a compose with one depsolve job.
func withJob(org string, created time.Time) store.NewCompose {
	c := newCompose(org, created)
	return store.NewCompose{Compose: c, Jobs: []store.Job{{ID: store.NewID(), Type: "depsolve", Args: json.RawMessage(`{}`)}}}
}

// Composes stored under a quota are stored all together or not at all,
// and concurrent requests of one org never pass the quota together.
func testComposeQuota(t *testing.T, b store.Backend, c *Clock) {
	q := store.Quota{Limit: 3, Since: c.Now().Add(-time.Hour)}
	old := withJob("a", c.Now().Add(-2*time.Hour))
	require.NoError(t, b.CreateComposes(ctx, "a", []store.NewCompose{old}, q), "outside the window, and under the limit")
	first := withJob("a", c.Now())
	require.NoError(t, b.CreateComposes(ctx, "a", []store.NewCompose{first, withJob("a", c.Now())}, q))

	refused := []store.NewCompose{withJob("a", c.Now()), withJob("a", c.Now())}
	err := b.CreateComposes(ctx, "a", refused, q)
	require.ErrorIs(t, err, store.ErrQuota)
	var qe *store.QuotaError
	require.ErrorAs(t, err, &qe)
	assert.Equal(t, 2, qe.Used, "the composes in the window")
	assert.True(t, qe.Oldest.Equal(c.Now()), "the oldest in the window: %v", qe.Oldest)
	for _, nc := range refused {
		_, err := b.GetCompose(ctx, "a", nc.Compose.ID)
		assert.ErrorIs(t, err, store.ErrNotFound, "no compose of a refused batch is stored")
	}
	_, total, err := b.ListComposes(ctx, "a", store.ComposeFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 3, total, "the refused batch was not counted either")
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w"}, time.Minute)
	require.NoError(t, err)
	assert.NotEqual(t, refused[0].Compose.ID, l.Job.ComposeID)
	assert.NotEqual(t, refused[1].Compose.ID, l.Job.ComposeID)

	require.NoError(t, b.CreateComposes(ctx, "a", refused[:1], q), "one still fits")
	require.NoError(t, b.CreateComposes(ctx, "b", []store.NewCompose{withJob("b", c.Now())}, q), "each org has its own quota")

	// Many requests at once: exactly as many as the quota are taken.
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken, over := 0, 0
	q = store.Quota{Limit: 5, Since: c.Now().Add(-time.Hour)}
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.CreateComposes(ctx, "c", []store.NewCompose{withJob("c", c.Now())}, q)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				taken++
			case errors.Is(err, store.ErrQuota):
				over++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 5, taken)
	assert.Equal(t, 7, over)
	n, _, err := b.CountComposesSince(ctx, "c", q.Since)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
}

// Revoking a worker token ends the leases taken with it: the jobs are
// ready for other workers at once, and the old lease tokens are told
// they were revoked. Leases taken otherwise are untouched.
func testRevocationEndsLeases(t *testing.T, b store.Backend, c *Clock) {
	tok := store.WorkerToken{ID: store.NewID(), Name: "rack-1", Hash: store.HashSecret("kwt_x"), CreatedAt: c.Now()}
	require.NoError(t, b.CreateWorkerToken(ctx, tok))
	held, kept := withJob("a", c.Now()), withJob("a", c.Now())
	require.NoError(t, b.CreateComposes(ctx, "a", []store.NewCompose{held, kept}, store.Quota{}))
	revoked, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "rack-1-a", TokenID: tok.ID}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, held.Compose.ID, revoked.Job.ComposeID)
	other, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "in-process-1"}, time.Minute)
	require.NoError(t, err)

	wake := b.Wait()
	require.NoError(t, b.RevokeWorkerToken(ctx, tok.ID))
	select {
	case <-wake:
	default:
		t.Error("revoking woke no waiting worker")
	}
	js, err := b.ComposeJobs(ctx, "a", held.Compose.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobPending, js[0].State, "requeued at once, not when the lease runs out")
	assert.Equal(t, 0, js[0].Attempts, "the revoked worker's attempt does not count")

	assert.ErrorIs(t, b.Heartbeat(ctx, revoked.Job.ID, revoked.Token, time.Minute), store.ErrLeaseRevoked)
	_, err = b.Leased(ctx, revoked.Job.ID, revoked.Token)
	assert.ErrorIs(t, err, store.ErrLeaseRevoked)
	assert.ErrorIs(t, b.SetProgress(ctx, revoked.Job.ID, revoked.Token, store.Progress{Done: 1, Total: 2}), store.ErrLeaseRevoked)
	assert.ErrorIs(t, b.Finish(ctx, revoked.Job.ID, revoked.Token, json.RawMessage(`{}`), nil), store.ErrLeaseRevoked)
	assert.ErrorIs(t, b.Heartbeat(ctx, revoked.Job.ID, "kjt_never-leased", time.Minute), store.ErrLeaseLost, "a token never revoked is only lost")

	again, err := b.Dequeue(ctx, []string{"depsolve"}, nil, store.Worker{Name: "rack-2"}, time.Minute)
	require.NoError(t, err, "another worker takes it without waiting for the lease")
	assert.Equal(t, revoked.Job.ID, again.Job.ID)
	assert.Equal(t, 1, again.Job.Attempts)
	require.NoError(t, b.Heartbeat(ctx, again.Job.ID, again.Token, time.Minute))
	assert.ErrorIs(t, b.Finish(ctx, revoked.Job.ID, revoked.Token, json.RawMessage(`{}`), nil), store.ErrLeaseRevoked, "the new lease does not let the old token in")
	require.NoError(t, b.Finish(ctx, again.Job.ID, again.Token, json.RawMessage(`{}`), nil))

	require.NoError(t, b.Heartbeat(ctx, other.Job.ID, other.Token, time.Minute), "a lease taken with the worker key is untouched")
	require.NoError(t, b.Finish(ctx, other.Job.ID, other.Token, json.RawMessage(`{}`), nil))
}

// The worker registry: who asked for jobs of which architectures, and
// who is still connected.
func testWorkers(t *testing.T, b store.Backend, c *Clock) {
	t0 := c.Now()
	list, err := b.ConnectedWorkers(ctx, t0.Add(-time.Hour))
	require.NoError(t, err)
	assert.Empty(t, list, "no worker asked for a job yet")

	require.NoError(t, b.SeeWorker(ctx, store.SeenWorker{Name: "x86", Arches: []string{"x86_64"}, LastSeen: t0}))
	require.NoError(t, b.SeeWorker(ctx, store.SeenWorker{Name: "arm", Arches: []string{"aarch64", "x86_64"}, LastSeen: t0.Add(time.Minute)}))
	require.NoError(t, b.TouchWorker(ctx, "never-polled", t0), "a heartbeat of a worker not recorded is no error")
	list, err = b.ConnectedWorkers(ctx, t0)
	require.NoError(t, err)
	assert.Equal(t, []store.SeenWorker{
		{Name: "arm", Arches: []string{"aarch64", "x86_64"}, LastSeen: t0.Add(time.Minute)},
		{Name: "x86", Arches: []string{"x86_64"}, LastSeen: t0},
	}, list, "each worker with its arches and when it was seen, by name; a heartbeat records no worker")

	list, err = b.ConnectedWorkers(ctx, t0.Add(30*time.Second))
	require.NoError(t, err)
	require.Len(t, list, 1, "a worker not seen since is not connected")
	assert.Equal(t, "arm", list[0].Name)

	// A heartbeat keeps the arches; an older record (another replica's,
	// late) changes nothing; a new poll replaces the arches.
	require.NoError(t, b.TouchWorker(ctx, "x86", t0.Add(2*time.Minute)))
	require.NoError(t, b.SeeWorker(ctx, store.SeenWorker{Name: "arm", Arches: []string{"x86_64"}, LastSeen: t0}))
	list, err = b.ConnectedWorkers(ctx, t0.Add(90*time.Second))
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, store.SeenWorker{Name: "x86", Arches: []string{"x86_64"}, LastSeen: t0.Add(2 * time.Minute)}, list[0])
	list, err = b.ConnectedWorkers(ctx, t0.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{"aarch64", "x86_64"}, list[0].Arches, "the late, older record did not replace the newer one")

	require.NoError(t, b.SeeWorker(ctx, store.SeenWorker{Name: "arm", Arches: []string{"aarch64"}, LastSeen: t0.Add(3 * time.Minute)}))
	require.NoError(t, b.TouchWorker(ctx, "arm", t0.Add(150*time.Second)), "a late heartbeat does not move the time back")
	list, err = b.ConnectedWorkers(ctx, t0.Add(3*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []store.SeenWorker{{Name: "arm", Arches: []string{"aarch64"}, LastSeen: t0.Add(3 * time.Minute)}}, list)
}

func testDequeueBatch(t *testing.T, b store.Backend, c *Clock) {
	var chains [][3]string
	for range 5 {
		_, ids := chain(t, b, "a", c, 0)
		chains = append(chains, ids)
	}
	_, err := b.DequeueBatch(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w1"}, time.Minute, 0)
	assert.ErrorIs(t, err, store.ErrNoJob, "a batch of none hands out nothing")

	ls, err := b.DequeueBatch(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w1"}, time.Minute, 3)
	require.NoError(t, err)
	require.Len(t, ls, 3, "up to max jobs")
	tokens := map[string]bool{}
	for i, l := range ls {
		assert.Equal(t, chains[i][0], l.Job.ID, "oldest first")
		assert.Equal(t, store.JobRunning, l.Job.State)
		assert.Equal(t, 1, l.Job.Attempts)
		assert.Equal(t, "w1", l.Job.Worker)
		assert.JSONEq(t, `{"packages":["jq"]}`, string(l.Job.Args))
		assert.NotEmpty(t, l.Token)
		tokens[l.Token] = true
		j, err := b.Leased(ctx, l.Job.ID, l.Token)
		require.NoError(t, err, "each job is leased under its own token")
		assert.Equal(t, l.Job.ID, j.ID)
	}
	assert.Len(t, tokens, 3, "every job of a batch has a token of its own")
	_, err = b.Leased(ctx, ls[0].Job.ID, ls[1].Token)
	assert.ErrorIs(t, err, store.ErrLeaseLost, "one job's token holds no other job of the batch")
	assert.ErrorIs(t, b.Heartbeat(ctx, ls[1].Job.ID, ls[0].Token, time.Minute), store.ErrLeaseLost)

	rest, err := b.DequeueBatch(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w2"}, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, rest, 2, "fewer than max when fewer are ready")
	assert.Equal(t, chains[3][0], rest[0].Job.ID)
	assert.Equal(t, chains[4][0], rest[1].Job.ID)
	_, err = b.DequeueBatch(ctx, []string{"depsolve"}, nil, store.Worker{Name: "w2"}, time.Minute, 10)
	assert.ErrorIs(t, err, store.ErrNoJob, "nothing is handed out twice")

	// Dependencies and architectures route a batch as they route Dequeue.
	require.NoError(t, b.Finish(ctx, ls[0].Job.ID, ls[0].Token, json.RawMessage(`{"manifest":1}`), nil))
	require.NoError(t, b.Finish(ctx, ls[1].Job.ID, ls[1].Token, json.RawMessage(`{"manifest":2}`), nil))
	_, err = b.DequeueBatch(ctx, []string{"build"}, []string{"aarch64"}, store.Worker{Name: "arm"}, time.Minute, 10)
	assert.ErrorIs(t, err, store.ErrNoJob, "an x86_64 build goes to no aarch64 worker")
	builds, err := b.DequeueBatch(ctx, []string{"build", "upload"}, []string{"x86_64"}, store.Worker{Name: "w3"}, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, builds, 2, "only the builds whose depsolve succeeded")
	assert.Equal(t, chains[0][1], builds[0].Job.ID)
	assert.JSONEq(t, `{"manifest":1}`, string(builds[0].DepResults["depsolve"]))
	assert.Equal(t, chains[1][1], builds[1].Job.ID)
	assert.JSONEq(t, `{"manifest":2}`, string(builds[1].DepResults["depsolve"]))

	// A worker that dies with a batch loses all of it to the rescue.
	require.NoError(t, b.Heartbeat(ctx, rest[0].Job.ID, rest[0].Token, 10*time.Minute))
	c.Advance(2 * time.Minute)
	requeued, failed, err := b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, requeued, "the expired leases of both batches (ls[2], rest[1], two builds); not the one heartbeat kept")
	assert.Zero(t, failed)
	assert.ErrorIs(t, b.Finish(ctx, ls[2].Job.ID, ls[2].Token, nil, nil), store.ErrLeaseLost)
	again, err := b.DequeueBatch(ctx, []string{"depsolve", "build"}, []string{"x86_64"}, store.Worker{Name: "w4"}, time.Minute, 10)
	require.NoError(t, err)
	got := map[string]int{}
	for _, l := range again {
		got[l.Job.ID] = l.Job.Attempts
	}
	assert.Equal(t, map[string]int{ls[2].Job.ID: 2, rest[1].Job.ID: 2, chains[0][1]: 2, chains[1][1]: 2}, got,
		"the requeued jobs, on their second attempt")
}

// testConcurrentDequeueBatch races workers taking batches and single jobs
// through whole chains: every job is handed out exactly once, and every
// chain ends in success.
func testConcurrentDequeueBatch(t *testing.T, b store.Backend, c *Clock) {
	const chains = 40
	var composes []store.Compose
	for range chains {
		cp, _ := chain(t, b, "a", c, 0)
		composes = append(composes, cp)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var done int
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := store.Worker{Name: fmt.Sprintf("w%d", w)}
			types, arches := []string{"depsolve", "build", "upload"}, []string{"x86_64"}
			for time.Now().Before(deadline) {
				mu.Lock()
				finished := done == 3*chains
				mu.Unlock()
				if finished {
					return
				}
				wait := b.Wait()
				var ls []store.Lease
				var err error
				if w%2 == 0 {
					ls, err = b.DequeueBatch(ctx, types, arches, worker, time.Hour, 1+w)
				} else {
					var l store.Lease
					l, err = b.Dequeue(ctx, types, arches, worker, time.Hour)
					ls = []store.Lease{l}
				}
				if errors.Is(err, store.ErrNoJob) {
					select {
					case <-wait:
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				for _, l := range ls {
					mu.Lock()
					got[l.Job.ID]++
					mu.Unlock()
					if err := b.Finish(ctx, l.Job.ID, l.Token, json.RawMessage(`{}`), nil); err != nil {
						errs <- fmt.Errorf("finishing %s: %w", l.Job.ID, err)
						return
					}
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Len(t, got, 3*chains, "every job is handed out")
	for id, n := range got {
		assert.Equal(t, 1, n, "job %s handed out once", id)
	}
	for _, cp := range composes {
		assert.Equal(t, []string{store.JobSuccess, store.JobSuccess, store.JobSuccess}, states(t, b, cp))
	}
}
