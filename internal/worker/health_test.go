package worker_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/worker"
)

// A worker process's /metrics has the Go runtime's and the process's
// series beside its own jobs.
func TestHealthRegistersGoAndProcessMetrics(t *testing.T) {
	families, err := worker.NewHealth().Registry.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds", "process_open_fds", "kiln_worker_jobs_total", "kiln_worker_busy"} {
		assert.True(t, names[want], "%s is missing from %d families", want, len(families))
	}
}
