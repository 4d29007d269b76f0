package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kiln slo rules prints the committed rule file from the committed SLOs,
// and refuses a bad file with the SLO and field at fault.
func TestSLORules(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, "slo", "rules", filepath.Join(deployDir, "slo", "slos.yaml"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "slo.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(want), out, "regenerate with: kiln slo rules deploy/slo/slos.yaml > deploy/prometheus/slo.yaml")

	_, _, err = run(t, "slo", "rules")
	assert.ErrorContains(t, err, "accepts 1 arg(s)")

	bad := filepath.Join(t.TempDir(), "slos.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`slos:
  - name: queue-wait
    title: Queue wait
    alert: QueueWait
    description: Jobs wait at most 5 minutes.
    objective: 0.95
    error_query: sum(rate(x[5m]))
    total_query: sum(rate(y[$window]))
`), 0o644))
	_, _, err = run(t, "slo", "rules", bad)
	assert.ErrorContains(t, err, `slo "queue-wait": error_query: has no [$window]`)
}
