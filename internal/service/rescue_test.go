package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/metrics"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

// A job whose worker vanished goes back to the queue while it has
// attempts left, and is given up after: then its compose counts as the
// service's failure in kiln_composes_finished_total, since it never
// reaches the worker API's finish.
func TestRescueCountsGivenUpComposes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer db.Close()
	c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: now, Request: json.RawMessage(`{}`)}
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: "build", MaxAttempts: 2}}))
	mets := metrics.New(db)
	failures := func() float64 {
		return testutil.ToFloat64(mets.ComposesFinished.WithLabelValues(metrics.OutcomeFailure))
	}

	for attempt := 1; attempt <= 2; attempt++ {
		_, err := db.Dequeue(ctx, []string{"build"}, nil, store.Worker{Name: "w"}, time.Minute)
		require.NoError(t, err, "attempt %d", attempt)
		now = now.Add(2 * time.Minute) // the worker stops heartbeating
		rescue(ctx, db, mets, slog.New(slog.DiscardHandler))
		if attempt == 1 {
			assert.Zero(t, failures(), "a requeued job ends nothing")
		}
	}
	assert.Equal(t, 1.0, failures(), "the given-up compose is the service's failure")
	rescue(ctx, db, mets, slog.New(slog.DiscardHandler))
	assert.Equal(t, 1.0, failures(), "and is counted once")
}
