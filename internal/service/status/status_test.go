package status

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

func TestUploadState(t *testing.T) {
	for _, c := range []struct {
		success, failure int
		state, message   string
	}{
		{0, 0, Operational, "no uploads in the last hour"},
		{5, 0, Operational, "5 of 5 uploads in the last hour succeeded"},
		{9, 1, Operational, "9 of 10 uploads in the last hour succeeded"},
		{0, 1, Operational, "0 of 1 uploads in the last hour succeeded"},
		{0, 2, Degraded, "2 of 2 uploads in the last hour failed"},
		{3, 2, Degraded, "2 of 5 uploads in the last hour failed"},
		{6, 2, Operational, "6 of 8 uploads in the last hour succeeded"},
		{0, 3, Down, "all 3 uploads in the last hour failed"},
		{1, 3, Degraded, "3 of 4 uploads in the last hour failed"},
	} {
		state, msg := UploadState(c.success, c.failure, time.Hour)
		assert.Equal(t, c.state, state, "%d ok, %d failed", c.success, c.failure)
		assert.Equal(t, c.message, msg)
	}
	_, msg := UploadState(0, 0, 30*time.Minute)
	assert.Equal(t, "no uploads in the last 30 minutes", msg)
	_, msg = UploadState(0, 0, 2*time.Hour)
	assert.Equal(t, "no uploads in the last 2 hours", msg)
}

func TestOverall(t *testing.T) {
	cs := func(states ...string) []Component {
		names := []string{API, Database, Queue, "workers/x86_64", ArtifactStore, "upload/aws"}
		var out []Component
		for i, s := range states {
			out = append(out, Component{Name: names[i], State: s})
		}
		return out
	}
	assert.Equal(t, Unknown, Overall(nil))
	assert.Equal(t, Unknown, Overall(cs(Unknown, Unknown)))
	assert.Equal(t, Operational, Overall(cs(Operational, Operational, Unknown)))
	assert.Equal(t, Degraded, Overall(cs(Operational, Operational, Degraded)))
	assert.Equal(t, Degraded, Overall(cs(Operational, Operational, Operational, Down)), "one architecture without workers")
	assert.Equal(t, Down, Overall(cs(Operational, Down)), "the database")
	assert.Equal(t, Down, Overall(cs(Operational, Operational, Operational, Operational, Down)), "the artifact store")
	assert.Equal(t, Degraded, Overall(cs(Operational, Operational, Operational, Operational, Operational, Down)), "one upload target")
}

func TestWithIncidents(t *testing.T) {
	resolved := time.Now()
	open := func(impact string) store.Incident { return store.Incident{Impact: impact} }
	assert.Equal(t, Operational, WithIncidents(Operational, nil))
	assert.Equal(t, Operational, WithIncidents(Operational, []store.Incident{{Impact: store.ImpactCritical, ResolvedAt: &resolved}}), "a resolved incident")
	assert.Equal(t, Degraded, WithIncidents(Operational, []store.Incident{open(store.ImpactMinor)}))
	assert.Equal(t, Degraded, WithIncidents(Unknown, []store.Incident{open(store.ImpactMajor)}))
	assert.Equal(t, Down, WithIncidents(Degraded, []store.Incident{open(store.ImpactMinor), open(store.ImpactCritical)}))
	assert.Equal(t, Down, WithIncidents(Down, []store.Incident{open(store.ImpactMinor)}), "an incident never makes it better")
}

// brokenStore fails what the test says, else answers from a real store.
type brokenStore struct {
	Store
	counts error
}

func (b brokenStore) Counts(ctx context.Context) ([]store.JobCount, error) {
	if b.counts != nil {
		return nil, b.counts
	}
	return b.Store.Counts(ctx)
}

type brokenArtifacts struct{ artifacts.Store }

func (brokenArtifacts) Probe(context.Context) error { return errors.New("read-only file system") }

func openStore(t testing.TB, now func() time.Time) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// The prober's states and samples follow the components: workers by
// architecture, a broken database and artifact store; and the report
// marks days without samples.
func TestProber(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db := openStore(t, clock)
	require.NoError(t, db.SeeWorker(ctx, store.SeenWorker{Name: "rack-1", Arches: []string{"x86_64"}, LastSeen: now.Add(-time.Minute)}))
	require.NoError(t, db.SeeWorker(ctx, store.SeenWorker{Name: "old", Arches: []string{"aarch64"}, LastSeen: now.Add(-time.Hour)}))
	st := &brokenStore{Store: db}
	arts := artifacts.Store(artifacts.Local{Dir: t.TempDir()})
	p := New(Config{Store: st, Artifacts: arts, Arches: []string{"aarch64", "x86_64"}, Targets: []string{"aws"},
		Ready: func(context.Context) error { return nil }, Now: clock})
	for _, c := range p.Current() {
		assert.Equal(t, Unknown, c.State, "%s before the first check", c.Name)
	}

	state := func(cs []Component) map[string]string {
		m := map[string]string{}
		for _, c := range cs {
			m[c.Name] = c.State
			assert.NotEmpty(t, c.Message, c.Name)
		}
		return m
	}
	got := state(p.Check(ctx))
	assert.Equal(t, map[string]string{API: Operational, Database: Operational, Queue: Operational,
		"workers/aarch64": Down, "workers/x86_64": Operational, ArtifactStore: Operational, "upload/aws": Operational}, got)
	assert.Equal(t, []string{API, Database, Queue, "workers/aarch64", "workers/x86_64", ArtifactStore, "upload/aws"}, p.Components())

	// A job for aarch64 waits: nobody takes it.
	require.NoError(t, db.CreateCompose(ctx, store.Compose{ID: store.NewID(), OrgID: "a", CreatedAt: now, ImageName: "x", Request: []byte(`{}`)},
		[]store.Job{{ID: store.NewID(), Type: "build", Arch: "aarch64", Args: []byte(`{}`)}}))
	cs := p.Check(ctx)
	assert.Equal(t, Degraded, state(cs)[Queue])
	for _, c := range cs {
		if c.Name == Queue {
			assert.Contains(t, c.Message, "aarch64 (1)")
		}
	}

	// The artifact store and the database break.
	p.cfg.Artifacts = brokenArtifacts{arts}
	st.counts = errors.New("connection refused")
	cs = p.Check(ctx)
	got = state(cs)
	assert.Equal(t, Down, got[ArtifactStore])
	assert.Equal(t, Down, got[Database])
	assert.Equal(t, Unknown, got[Queue])
	assert.Equal(t, Unknown, got["workers/x86_64"])
	for _, c := range cs {
		assert.NotContains(t, c.Message, "read-only", "the error stays in the log")
		assert.NotContains(t, c.Message, "refused")
	}
	assert.Equal(t, Down, Overall(cs))

	rep, err := p.Report(ctx)
	require.NoError(t, err)
	assert.Equal(t, Down, rep.Overall)
	for _, c := range rep.Components {
		require.Len(t, c.Uptime, Days)
		assert.Equal(t, "2026-03-10", c.Uptime[Days-1].Date)
		assert.Equal(t, "2025-12-11", c.Uptime[0].Date)
		assert.True(t, c.Uptime[0].NoData)
		switch c.Name {
		case API:
			assert.Equal(t, int64(3), c.Uptime[Days-1].Samples)
			assert.Equal(t, 100.0, *c.UptimePercent)
		case ArtifactStore:
			assert.InDelta(t, 200.0/3, *c.Uptime[Days-1].Percent, 1e-9)
		case Queue:
			// Unknown is not a sample.
			assert.Equal(t, int64(2), c.Uptime[Days-1].Samples)
			assert.Equal(t, 50.0, *c.UptimePercent)
		}
	}

	// Uptime older than 90 days goes.
	require.NoError(t, db.RecordUptime(ctx, []store.UptimeSample{{Component: API, At: now.AddDate(0, 0, -100), OK: true}}))
	require.NoError(t, db.RecordUptime(ctx, []store.UptimeSample{{Component: API, At: now.AddDate(0, 0, -(Days - 1)), OK: true}}))
	require.NoError(t, p.Prune(ctx))
	days, err := db.UptimeDays(ctx, now.AddDate(0, 0, -200))
	require.NoError(t, err)
	require.NotEmpty(t, days)
	assert.Equal(t, "2025-12-11", days[0].Day.Format(time.DateOnly), "the oldest day shown is kept, older ones go")
}

// Samples the database did not take are recorded with the next check.
func TestProberKeepsSamplesTheStoreRefused(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	db := openStore(t, func() time.Time { return now })
	fs := &failingUptime{Store: db, fail: true}
	p := New(Config{Store: fs, Ready: func(context.Context) error { return nil }, Now: func() time.Time { return now }})
	p.Check(ctx)
	fs.fail = false
	p.Check(ctx)
	days, err := db.UptimeDays(ctx, now)
	require.NoError(t, err)
	for _, d := range days {
		if d.Component == API {
			assert.Equal(t, int64(2), d.Total)
		}
	}
	assert.NotEmpty(t, days)
}

type failingUptime struct {
	Store
	fail bool
}

func (f *failingUptime) RecordUptime(ctx context.Context, s []store.UptimeSample) error {
	if f.fail {
		return errors.New("database is locked")
	}
	return f.Store.RecordUptime(ctx, s)
}

func TestFormatPercent(t *testing.T) {
	p := func(f float64) *float64 { return &f }
	assert.Equal(t, "no data", formatPercent(nil))
	assert.Equal(t, "100.00%", formatPercent(p(100)))
	assert.Equal(t, "99.99%", formatPercent(p(99.999)), "never rounded up to 100")
	assert.Equal(t, "50.00%", formatPercent(p(50)))
	assert.True(t, strings.HasSuffix(barClass(UptimeDay{NoData: true}), "nodata"))
}
