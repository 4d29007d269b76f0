package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

// testComposeStatus drives composes into every combination of their
// jobs' states and checks that the backend's status filter and status
// counts agree with store.ComposeStatus on each: the status is decided
// once, in Go, and a backend that filters in SQL must say the same.
func testComposeStatus(t *testing.T, b store.Backend, c *Clock) {
	kinds := []string{"depsolve", "build", "upload"}
	const lastKind = "upload"
	reachable := []string{store.JobPending, store.JobRunning, store.JobSuccess, store.JobFailure}
	// drive brings the job of kind in compose k to state. Every job has
	// an arch of its own, so that a Dequeue reaches exactly that job.
	drive := func(k int, kind, state string) {
		t.Helper()
		if state == store.JobPending {
			return
		}
		l, err := b.Dequeue(ctx, []string{kind}, []string{fmt.Sprintf("c%d-%s", k, kind)}, store.Worker{Name: "w"}, time.Hour)
		require.NoError(t, err)
		switch state {
		case store.JobSuccess:
			require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, nil))
		case store.JobFailure:
			require.NoError(t, b.Finish(ctx, l.Job.ID, l.Token, nil, &store.JobError{Reason: "broken"}))
		}
	}
	create := func(k int) store.Compose {
		t.Helper()
		c.Advance(time.Second)
		cp := newCompose("a", c.Now())
		var js []store.Job
		for _, kind := range kinds {
			js = append(js, store.Job{ID: store.NewID(), Type: kind, Arch: fmt.Sprintf("c%d-%s", k, kind)})
		}
		require.NoError(t, b.CreateCompose(ctx, cp, js))
		return cp
	}
	var all []store.Compose
	k := 0
	for _, s0 := range reachable {
		for _, s1 := range reachable {
			for _, s2 := range reachable {
				cp := create(k)
				for i, st := range []string{s0, s1, s2} {
					drive(k, kinds[i], st)
				}
				all = append(all, cp)
				k++
			}
		}
	}
	// Canceled: a pending job ends canceled, a running one keeps running
	// until its worker hears of it.
	for _, running := range []string{"", "depsolve", "upload"} {
		cp := create(k)
		if running != "" {
			drive(k, running, store.JobRunning)
		}
		require.NoError(t, b.CancelCompose(ctx, "a", cp.ID))
		all = append(all, cp)
		k++
	}
	// Hidden composes count nowhere.
	hidden := create(k)
	drive(k, "depsolve", store.JobSuccess)
	require.NoError(t, b.HideCompose(ctx, "a", hidden.ID))

	want := map[string][]string{}
	counts := map[string]int{}
	for _, cp := range all {
		js, err := b.ComposeJobs(ctx, "a", cp.ID)
		require.NoError(t, err)
		st := store.ComposeStatus(js, lastKind)
		want[st] = append([]string{cp.ID}, want[st]...) // newest first, as listed
		counts[st]++
	}
	for _, st := range store.ComposeStatuses() {
		require.NotEmpty(t, want[st], "the cases reach status %s", st)
		list, total, err := b.ListComposes(ctx, "a", store.ComposeFilter{Status: st, LastType: lastKind}, store.Page{Limit: len(all) + 1})
		require.NoError(t, err)
		var got []string
		for _, cp := range list {
			got = append(got, cp.ID)
		}
		assert.Equal(t, want[st], got, "the composes listed as %s are those store.ComposeStatus calls %s", st, st)
		assert.Equal(t, len(want[st]), total, "status %s: the total counts the matches", st)
	}
	got, err := b.ComposeStatusCounts(ctx, lastKind)
	require.NoError(t, err)
	assert.Equal(t, counts, got, "the status counts are store.ComposeStatus's")
}
