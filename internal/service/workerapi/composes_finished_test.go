package workerapi

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/metrics"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// step is one job a test worker takes and finishes: its type and the
// failure it reports (nil: success).
type step struct {
	kind    string
	failure *workerproto.FinishError
}

// A compose is counted once, when its last job ends, by how it ended:
// the user's errors (flagged by the worker, or carrying blueprint
// problems as older workers send them) apart from the service's.
func TestComposesFinishedByOutcome(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		// want is the count of each outcome after each step.
		want []map[string]float64
	}{{
		name:  "success",
		steps: []step{{kind: workerproto.KindDepsolve}, {kind: workerproto.KindUpload}},
		want:  []map[string]float64{{}, {metrics.OutcomeSuccess: 1}},
	}, {
		name: "unknown package, flagged by the worker",
		steps: []step{{kind: workerproto.KindDepsolve, failure: &workerproto.FinishError{
			Reason: "the packages could not be resolved", Details: `package "vimm" does not exist`, UserError: true}}},
		want: []map[string]float64{{metrics.OutcomeUserError: 1}},
	}, {
		name: "blueprint problems from a worker without the flag",
		steps: []step{{kind: workerproto.KindDepsolve, failure: &workerproto.FinishError{
			Reason: "the blueprint is invalid", Problems: []workerproto.Problem{{Field: "name", Message: "is empty"}}}}},
		want: []map[string]float64{{metrics.OutcomeUserError: 1}},
	}, {
		name:  "the service's failure",
		steps: []step{{kind: workerproto.KindDepsolve}, {kind: workerproto.KindUpload, failure: &workerproto.FinishError{Reason: "the upload failed"}}},
		want:  []map[string]float64{{}, {metrics.OutcomeFailure: 1}},
	}, {
		name: "a failure to retry is not the end",
		steps: []step{
			{kind: workerproto.KindDepsolve, failure: &workerproto.FinishError{Reason: "the mirror is down", Retry: true}},
			{kind: workerproto.KindDepsolve},
			{kind: workerproto.KindUpload},
		},
		want: []map[string]float64{{}, {}, {metrics.OutcomeSuccess: 1}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: time.Now(), ImageName: "x", ImageType: "qcow2", Request: []byte(`{}`)}
			dep := store.NewID()
			require.NoError(t, db.CreateCompose(ctx, c, []store.Job{
				{ID: dep, Type: workerproto.KindDepsolve},
				{ID: store.NewID(), Type: workerproto.KindUpload, Arch: "x86_64", Deps: []string{dep}},
			}))
			mets := metrics.New(db)
			srv := httptest.NewServer(Handler(Config{Queue: db, Artifacts: artifacts.Local{Dir: t.TempDir()}, WorkerKey: "key",
				PollTimeout: 100 * time.Millisecond, Metrics: mets}))
			t.Cleanup(srv.Close)
			cl := &workerproto.Client{BaseURL: srv.URL, Key: "key"}
			for i, s := range tc.steps {
				j, err := cl.RequestJob(ctx, workerproto.JobRequest{Types: []string{s.kind}, Arches: []string{"x86_64"}, Worker: "w"})
				require.NoError(t, err)
				require.NotNil(t, j, "step %d: no %s job to take", i, s.kind)
				require.NoError(t, cl.Finish(ctx, j, struct{}{}, s.failure))
				for _, o := range metrics.Outcomes() {
					assert.Equal(t, tc.want[i][o], testutil.ToFloat64(mets.ComposesFinished.WithLabelValues(o)),
						"after step %d (%s), kiln_composes_finished_total{outcome=%q}", i, s.kind, o)
				}
			}
		})
	}
}

// A canceled compose is neither a success nor a failure of the service.
func TestCanceledComposeIsNotCounted(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: time.Now(), ImageName: "x", ImageType: "qcow2", Request: []byte(`{}`)}
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: workerproto.KindUpload, Arch: "x86_64"}}))
	mets := metrics.New(db)
	srv := httptest.NewServer(Handler(Config{Queue: db, Artifacts: artifacts.Local{Dir: t.TempDir()}, WorkerKey: "key", Metrics: mets}))
	t.Cleanup(srv.Close)
	cl := &workerproto.Client{BaseURL: srv.URL, Key: "key"}
	j, err := cl.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindUpload}, Arches: []string{"x86_64"}, Worker: "w"})
	require.NoError(t, err)
	require.NotNil(t, j)
	require.NoError(t, db.CancelCompose(ctx, "acme", c.ID))
	require.NoError(t, cl.Finish(ctx, j, nil, &workerproto.FinishError{Reason: "canceled"}))
	for _, o := range metrics.Outcomes() {
		assert.Zero(t, testutil.ToFloat64(mets.ComposesFinished.WithLabelValues(o)), "outcome %s", o)
	}
}

// A job's duration is labelled with its compose's image type, read from
// the compose's depsolve job, for every job of the compose.
func TestJobDurationByImageType(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: time.Now(), ImageName: "x", ImageType: "vhd", Request: []byte(`{}`)}
	dep := store.NewID()
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{
		{ID: dep, Type: workerproto.KindDepsolve, Args: []byte(`{"distro":"debian-12","arch":"x86_64","image_type":"vhd","blueprint":{}}`)},
		{ID: store.NewID(), Type: workerproto.KindUpload, Arch: "x86_64", Deps: []string{dep}},
	}))
	mets := metrics.New(db)
	srv := httptest.NewServer(Handler(Config{Queue: db, Artifacts: artifacts.Local{Dir: t.TempDir()}, WorkerKey: "key",
		PollTimeout: 100 * time.Millisecond, Metrics: mets}))
	t.Cleanup(srv.Close)
	cl := &workerproto.Client{BaseURL: srv.URL, Key: "key"}
	for _, kind := range []string{workerproto.KindDepsolve, workerproto.KindUpload} {
		j, err := cl.RequestJob(ctx, workerproto.JobRequest{Types: []string{kind}, Arches: []string{"x86_64"}, Worker: "w"})
		require.NoError(t, err)
		require.NotNil(t, j, "no %s job to take", kind)
		require.NoError(t, cl.Finish(ctx, j, struct{}{}, nil))
	}
	families, err := mets.Registry.Gather()
	require.NoError(t, err)
	got := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "kiln_job_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["type"]+"/"+labels["image_type"]+"/"+labels["outcome"]] = m.GetHistogram().GetSampleCount()
		}
	}
	assert.Equal(t, map[string]uint64{"depsolve/vhd/success": 1, "upload/vhd/success": 1}, got)
}
