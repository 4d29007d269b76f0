package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
)

type emptyQueue struct{ store.Queue }

func (emptyQueue) Counts(context.Context) ([]store.JobCount, error) { return nil, nil }
func (emptyQueue) ComposeStatusCounts(context.Context, string) (map[string]int, error) {
	return map[string]int{}, nil
}

// Workers count for each architecture they asked for while they are
// active; an architecture whose workers went quiet stays, at 0.
func TestWorkersActiveByArch(t *testing.T) {
	m := New(emptyQueue{})
	now := time.Now()
	m.WorkerSeen("a", now, "x86_64", "aarch64", "x86_64")
	m.WorkerSeen("b", now, "x86_64")
	m.WorkerSeen("old", now.Add(-3*time.Minute), "riscv64")
	want := `
# HELP kiln_workers_active_by_arch Workers that asked for work of the architecture in the last two minutes.
# TYPE kiln_workers_active_by_arch gauge
kiln_workers_active_by_arch{arch="aarch64"} 1
kiln_workers_active_by_arch{arch="riscv64"} 0
kiln_workers_active_by_arch{arch="x86_64"} 2
`
	require.NoError(t, testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "kiln_workers_active_by_arch"))
}

// Every outcome has a series from the start, and the queue-wait
// histogram has the round bounds the queue-wait SLO's threshold needs.
func TestComposesFinishedAndQueueWaitBuckets(t *testing.T) {
	m := New(emptyQueue{})
	m.QueueWait.WithLabelValues("build", "x86_64").Observe(42)
	mfs, err := m.Registry.Gather()
	require.NoError(t, err)
	var outcomes []string
	var bounds []float64
	for _, mf := range mfs {
		switch mf.GetName() {
		case "kiln_composes_finished_total":
			for _, s := range mf.GetMetric() {
				outcomes = append(outcomes, s.GetLabel()[0].GetValue())
			}
		case "kiln_job_queue_wait_seconds":
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
		}
	}
	assert.ElementsMatch(t, []string{"success", "failure", "user_error"}, outcomes)
	assert.Equal(t, []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400}, bounds)
}
