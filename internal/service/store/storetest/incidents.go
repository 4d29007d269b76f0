package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

// testIncidents opens, updates and resolves incidents, and checks which
// ones a listing keeps: the open ones and those resolved since.
func testIncidents(t *testing.T, b store.Backend, c *Clock) {
	open := func(title string) store.Incident {
		inc := store.Incident{ID: store.NewID(), Title: title, Impact: store.ImpactMajor, Components: []string{"api", "workers/x86_64"}, CreatedAt: c.Now()}
		first := store.IncidentUpdate{ID: store.NewID(), IncidentID: inc.ID, Status: store.IncidentInvestigating, Body: "looking", CreatedAt: c.Now()}
		require.NoError(t, b.CreateIncident(ctx, inc, first))
		return inc
	}
	old := open("old outage")
	c.Advance(time.Hour)
	require.NoError(t, b.AddIncidentUpdate(ctx, store.IncidentUpdate{ID: store.NewID(), IncidentID: old.ID, Status: store.IncidentResolved, Body: "fixed", CreatedAt: c.Now()}))
	err := b.AddIncidentUpdate(ctx, store.IncidentUpdate{ID: store.NewID(), IncidentID: old.ID, Status: store.IncidentResolved, Body: "again", CreatedAt: c.Now()})
	assert.ErrorIs(t, err, store.ErrIncidentResolved)
	err = b.AddIncidentUpdate(ctx, store.IncidentUpdate{ID: store.NewID(), IncidentID: store.NewID(), Status: store.IncidentIdentified, Body: "x", CreatedAt: c.Now()})
	assert.ErrorIs(t, err, store.ErrNotFound)

	c.Advance(24 * time.Hour)
	cutoff := c.Now()
	c.Advance(time.Hour)
	cur := open("slow builds")
	c.Advance(time.Minute)
	require.NoError(t, b.AddIncidentUpdate(ctx, store.IncidentUpdate{ID: store.NewID(), IncidentID: cur.ID, Status: store.IncidentIdentified, Body: "a mirror is slow", CreatedAt: c.Now()}))

	got, err := b.GetIncident(ctx, cur.ID)
	require.NoError(t, err)
	assert.Equal(t, "slow builds", got.Title)
	assert.Equal(t, store.ImpactMajor, got.Impact)
	assert.Equal(t, []string{"api", "workers/x86_64"}, got.Components)
	assert.Equal(t, store.IncidentIdentified, got.Status)
	assert.Nil(t, got.ResolvedAt)
	assert.True(t, got.UpdatedAt.Equal(c.Now()), "updated at the last update")
	require.Len(t, got.Updates, 2)
	assert.Equal(t, "looking", got.Updates[0].Body)
	assert.Equal(t, "a mirror is slow", got.Updates[1].Body)
	_, err = b.GetIncident(ctx, store.NewID())
	assert.ErrorIs(t, err, store.ErrNotFound)

	resolvedOld, err := b.GetIncident(ctx, old.ID)
	require.NoError(t, err)
	require.NotNil(t, resolvedOld.ResolvedAt)
	assert.Equal(t, store.IncidentResolved, resolvedOld.Status)
	assert.Len(t, resolvedOld.Updates, 2, "the refused update was not stored")

	list, err := b.ListIncidents(ctx, cutoff)
	require.NoError(t, err)
	require.Len(t, list, 1, "the incident resolved before the cutoff is left out")
	assert.Equal(t, cur.ID, list[0].ID)
	assert.Len(t, list[0].Updates, 2)

	list, err = b.ListIncidents(ctx, cutoff.Add(-48*time.Hour))
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, cur.ID, list[0].ID, "newest first")
	assert.Equal(t, old.ID, list[1].ID)
}

// testUptime records samples as two replicas would and checks the counts
// per day add up, then prunes old days.
func testUptime(t *testing.T, b store.Backend, c *Clock) {
	day0 := store.Day(c.Now())
	require.NoError(t, b.RecordUptime(ctx, []store.UptimeSample{
		{Component: "api", At: c.Now(), OK: true},
		{Component: "database", At: c.Now(), OK: true},
		{Component: "api", At: c.Now(), OK: false},
	}))
	// Another replica, at the same time.
	require.NoError(t, b.RecordUptime(ctx, []store.UptimeSample{{Component: "api", At: c.Now(), OK: true}}))
	c.Advance(24 * time.Hour)
	require.NoError(t, b.RecordUptime(ctx, []store.UptimeSample{{Component: "api", At: c.Now(), OK: false}}))

	days, err := b.UptimeDays(ctx, day0)
	require.NoError(t, err)
	require.Len(t, days, 3)
	assert.Equal(t, store.UptimeDay{Component: "api", Day: day0, OK: 2, Total: 3}, days[0])
	assert.Equal(t, store.UptimeDay{Component: "api", Day: day0.Add(24 * time.Hour), OK: 0, Total: 1}, days[1])
	assert.Equal(t, store.UptimeDay{Component: "database", Day: day0, OK: 1, Total: 1}, days[2])

	days, err = b.UptimeDays(ctx, c.Now())
	require.NoError(t, err)
	assert.Len(t, days, 1, "since is rounded down to its day")

	n, err := b.PruneUptime(ctx, store.Day(c.Now()))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	days, err = b.UptimeDays(ctx, day0)
	require.NoError(t, err)
	require.Len(t, days, 1)
	assert.Equal(t, "api", days[0].Component)
}

// testUploadOutcomes runs upload jobs to two types and checks what is
// counted: uploads that ran and ended since, not those whose build failed.
func testUploadOutcomes(t *testing.T, b store.Backend, c *Clock) {
	w := store.Worker{Name: "w1"}
	upload := func(typ string, ok bool) {
		cp := newCompose("a", c.Now())
		id := store.NewID()
		require.NoError(t, b.CreateCompose(ctx, cp, []store.Job{{ID: id, Type: "upload", Args: json.RawMessage(`{"type":"` + typ + `"}`)}}))
		l, err := b.Dequeue(ctx, []string{"upload"}, nil, w, time.Minute)
		require.NoError(t, err)
		require.Equal(t, id, l.Job.ID)
		var failure *store.JobError
		if !ok {
			failure = &store.JobError{Reason: "the cloud refused"}
		}
		require.NoError(t, b.Finish(ctx, id, l.Token, json.RawMessage(`{}`), failure))
	}
	upload("aws", true)
	c.Advance(2 * time.Hour)
	since := c.Now()
	upload("aws", true)
	upload("aws", false)
	upload("gcp", false)
	// An upload whose build failed never ran: not the target's doing.
	_, ids := chain(t, b, "a", c, 1)
	l, err := b.Dequeue(ctx, []string{"depsolve"}, nil, w, time.Minute)
	require.NoError(t, err)
	require.Equal(t, ids[0], l.Job.ID)
	require.NoError(t, b.Finish(ctx, ids[0], l.Token, nil, &store.JobError{Reason: "no such package"}))

	got, err := b.UploadOutcomes(ctx, since)
	require.NoError(t, err)
	assert.Equal(t, []store.UploadOutcome{{Type: "aws", Success: 1, Failure: 1}, {Type: "gcp", Failure: 1}}, got)
}
