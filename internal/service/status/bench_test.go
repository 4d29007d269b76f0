package status

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
)

// benchProber is a prober over a SQLite store that holds what a busy
// service's status page reads: 90 days of samples, one every 30 s, for
// eight components (compacted into one row per component and day, as
// the prober records them), and 20 incidents of three updates each.
func benchProber(b *testing.B) *Prober {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	db := openStore(b, clock)
	arts := artifacts.Store(artifacts.Local{Dir: b.TempDir()})
	p := New(Config{Store: db, Artifacts: arts, Arches: []string{"aarch64", "x86_64"}, Targets: []string{"aws", "gcp"},
		Ready: func(context.Context) error { return nil }, Now: clock})
	names := p.Components()
	var samples []store.UptimeSample
	for d := range Days {
		day := store.Day(now).AddDate(0, 0, -d)
		for _, n := range names {
			// 2880 samples a day; one day in ten had a bad hour.
			for i := range 2880 {
				samples = append(samples, store.UptimeSample{Component: n, At: day.Add(time.Duration(i) * 30 * time.Second),
					OK: d%10 != 3 || i >= 120})
			}
		}
		if err := db.RecordUptime(ctx, samples); err != nil {
			b.Fatal(err)
		}
		samples = samples[:0]
	}
	for i := range 20 {
		at := now.AddDate(0, 0, -4*i)
		inc := store.Incident{ID: store.NewID(), Title: fmt.Sprintf("Incident %d", i), Impact: store.ImpactMinor,
			Components: []string{Queue}, Status: store.IncidentInvestigating, CreatedAt: at, UpdatedAt: at}
		if err := db.CreateIncident(ctx, inc, store.IncidentUpdate{ID: store.NewID(), IncidentID: inc.ID,
			Status: store.IncidentInvestigating, Body: "Looking into it.", CreatedAt: at}); err != nil {
			b.Fatal(err)
		}
		for j, st := range []string{store.IncidentIdentified, store.IncidentResolved} {
			if err := db.AddIncidentUpdate(ctx, store.IncidentUpdate{ID: store.NewID(), IncidentID: inc.ID, Status: st,
				Body: "More news.", CreatedAt: at.Add(time.Duration(j+1) * time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	p.Check(ctx)
	return p
}

// BenchmarkCheck is one round of the prober: every component checked and
// its sample recorded. It runs every --status-interval on each replica.
func BenchmarkCheck(b *testing.B) {
	p := benchProber(b)
	ctx := context.Background()
	for b.Loop() {
		p.Check(ctx)
	}
}

// BenchmarkReport builds /status.json's report from the store, as the
// pages do at most once per interval whatever their traffic.
func BenchmarkReport(b *testing.B) {
	p := benchProber(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Report(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
