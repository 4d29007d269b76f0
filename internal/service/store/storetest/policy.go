package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

// errRollBack ends a transaction the suite opened only to look.
var errRollBack = errors.New("roll back")

// testExpiredLeases checks the steps Rescue runs on: every backend lists
// the expired leases in one order (earliest expiry first, then by job
// ID; SQLite once listed them unordered), and Rescue's counts are those
// of the transaction that commits: one that rolls back rescued nothing.
func testExpiredLeases(t *testing.T, b store.Backend, c *Clock) {
	steps, ok := b.(store.ExpiredLeaseTx)
	require.True(t, ok, "the backend runs Rescue's steps in a transaction (store.ExpiredLeaseTx)")

	// Four independent jobs, each with an arch of its own, leased for
	// different times: job 0 expires last, job 1 first, jobs 2 and 3
	// together.
	cp := newCompose("a", c.Now())
	arches := []string{"j0", "j1", "j2", "j3"}
	var js []store.Job
	for _, a := range arches {
		js = append(js, store.Job{ID: store.NewID(), Type: "build", Arch: a, MaxAttempts: 2})
	}
	require.NoError(t, b.CreateCompose(ctx, cp, js))
	for i, lease := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute, 2 * time.Minute} {
		l, err := b.Dequeue(ctx, []string{"build"}, []string{arches[i]}, store.Worker{Name: arches[i]}, lease)
		require.NoError(t, err)
		require.Equal(t, js[i].ID, l.Job.ID)
	}
	tied := []string{js[2].ID, js[3].ID}
	slices.Sort(tied)
	want := append([]string{js[1].ID}, tied...)
	want = append(want, js[0].ID)

	c.Advance(5 * time.Minute)
	var got []string
	err := steps.ExpiredLeaseTx(ctx, func(ops store.ExpiredLeaseOps) error {
		held, err := ops.ExpiredLeases(ctx, c.Now())
		if err != nil {
			return err
		}
		for _, h := range held {
			got = append(got, h.JobID)
			assert.Equal(t, 1, h.Attempts, "job %s", h.JobID)
			assert.Equal(t, 2, h.MaxAttempts, "job %s", h.JobID)
		}
		// Rescue them, then roll back: nothing may stay rescued.
		requeued, failed, err := store.RescueExpired(ctx, ops, c.Now())
		require.NoError(t, err)
		assert.Equal(t, 4, requeued)
		assert.Equal(t, 0, failed)
		return errRollBack
	})
	require.ErrorIs(t, err, errRollBack)
	assert.Equal(t, want, got, "expired leases, earliest expiry first, then by job ID")
	assert.Equal(t, []string{store.JobRunning, store.JobRunning, store.JobRunning, store.JobRunning}, states(t, b, cp),
		"a rescue that rolled back changed nothing")

	requeued, failed, err := b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, requeued, "the counts are the committed rescue's, not added to the rolled-back one's")
	assert.Equal(t, 0, failed)
	assert.Equal(t, []string{store.JobPending, store.JobPending, store.JobPending, store.JobPending}, states(t, b, cp))
	requeued, failed, err = b.Rescue(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, requeued+failed, "nothing is left to rescue")
}
