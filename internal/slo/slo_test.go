package slo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	sloFile   = "../../deploy/slo/slos.yaml"
	rulesFile = "../../deploy/prometheus/slo.yaml"
)

// The committed rule file is what kiln slo rules generates from the
// committed SLOs, byte for byte.
func TestGeneratedRulesAreCommitted(t *testing.T) {
	f, err := Load(sloFile)
	require.NoError(t, err)
	got, err := Rules(f)
	require.NoError(t, err)
	want, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	if string(got) != string(want) {
		t.Errorf("deploy/prometheus/slo.yaml is not what deploy/slo/slos.yaml generates; regenerate it with\n"+
			"  go run ./cmd/kiln slo rules deploy/slo/slos.yaml > deploy/prometheus/slo.yaml\n"+
			"first difference at line %d", firstDiffLine(string(got), string(want)))
	}
}

func firstDiffLine(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// The fixed names the dashboards, runbooks and docs rely on.
func TestCommittedSLOs(t *testing.T) {
	f, err := Load(sloFile)
	require.NoError(t, err)
	var names, alerts []string
	for _, s := range f.SLOs {
		names = append(names, s.Name)
		for _, k := range AlertKinds() {
			alerts = append(alerts, s.AlertName(k))
		}
	}
	assert.Equal(t, []string{"compose-success", "queue-wait", "api-availability", "api-latency", "artifact-download"}, names)
	assert.Equal(t, []string{
		"KilnSLOComposeSuccessPage", "KilnSLOComposeSuccessTicket", "KilnSLOQueueWaitPage", "KilnSLOQueueWaitTicket",
		"KilnSLOAPIAvailabilityPage", "KilnSLOAPIAvailabilityTicket", "KilnSLOAPILatencyPage", "KilnSLOAPILatencyTicket",
		"KilnSLOArtifactDownloadPage", "KilnSLOArtifactDownloadTicket",
	}, alerts)
	assert.Equal(t, []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"}, Windows())
}

// good is a valid SLO file; each case below breaks one thing in it.
const good = `slos:
  - name: api-availability
    title: API availability
    alert: APIAvailability
    description: Good is not 5xx.
    objective: 0.999
    error_query: sum(rate(x{code=~"5.."}[$window]))
    total_query: sum(rate(x[$window]))
`

// Bad SLO files are refused with an error that names the SLO and the
// field, and says how to fix it.
func TestParseRefuses(t *testing.T) {
	_, err := Parse([]byte(good))
	require.NoError(t, err)
	second := strings.Replace(good, "slos:\n", "slos:\n"+strings.TrimPrefix(good, "slos:\n"), 1)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"objective above 1", strings.Replace(good, "0.999", "99.9", 1),
			[]string{`slo "api-availability": objective: 99.9 is outside (0, 1)`, "such as 0.99 for 99%"}},
		{"objective 1", strings.Replace(good, "0.999", "1", 1), []string{`slo "api-availability": objective: 1 is outside (0, 1)`}},
		{"objective 0", strings.Replace(good, "0.999", "0", 1), []string{`objective: 0 is outside (0, 1)`}},
		{"objective missing", strings.Replace(good, "    objective: 0.999\n", "", 1), []string{`objective: 0 is outside (0, 1)`}},
		{"budget too large to page", strings.Replace(good, "0.999", "0.9", 1),
			[]string{`slo "api-availability": objective: 0.9 leaves an error budget of 0.1`, "could never fire", "must be above 0.9305555556"}},
		{"duplicate name", second, []string{`slo "api-availability": name: used by an earlier SLO too`, `alert: "APIAvailability" is used by an earlier SLO too`}},
		{"no placeholder", strings.Replace(good, "x[$window]))\n", "x[5m]))\n", 1),
			[]string{`slo "api-availability": total_query: has no [$window]`}},
		{"no error query", strings.Replace(good, `    error_query: sum(rate(x{code=~"5.."}[$window]))`+"\n", "", 1),
			[]string{`slo "api-availability": error_query: missing`}},
		{"unknown field", strings.Replace(good, "    objective:", "    objectve: 0.9\n    objective:", 1),
			[]string{"objectve", "the fields of each are name, title, alert, description, objective, error_query, total_query"}},
		{"bad name", strings.Replace(good, "name: api-availability", "name: API_availability", 1),
			[]string{`slo "API_availability": name: "API_availability" is not lower-case words joined by -`}},
		{"no name", strings.Replace(good, "  - name: api-availability\n    title", "  - title", 1),
			[]string{`slos[0]: name: missing`}},
		{"bad alert", strings.Replace(good, "alert: APIAvailability", "alert: api availability", 1),
			[]string{`slo "api-availability": alert: "api availability" is not a word`}},
		{"no title", strings.Replace(good, "    title: API availability\n", "", 1), []string{`slo "api-availability": title: missing`}},
		{"no description", strings.Replace(good, "    description: Good is not 5xx.\n", "", 1), []string{`slo "api-availability": description: missing`}},
		{"no SLOs", "slos: []\n", []string{"slos: no objective is listed"}},
		{"empty", "", []string{"the file is empty"}},
		{"not YAML", "slos: [\n", []string{"reading the SLOs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err, "the file was accepted:\n%s", tc.yaml)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// Load names the file in its errors.
func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "slos.yaml")
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(good, "0.999", "2", 1)), 0o644))
	_, err := Load(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p+": slo \"api-availability\": objective: 2 is outside (0, 1)")
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Error(t, err)
}

// The window placeholder is replaced in every query, and the alerts'
// thresholds are written short.
func TestGeneratedShapes(t *testing.T) {
	f, err := Parse([]byte(good))
	require.NoError(t, err)
	out, err := Rules(f)
	require.NoError(t, err)
	s := string(out)
	assert.NotContains(t, s, Placeholder)
	assert.Contains(t, s, `sum(rate(x{code=~"5.."}[3d]))`)
	assert.Contains(t, s, `kiln:slo_error_ratio:rate1h{slo="api-availability"} > (14.4 * 0.001)`)
	assert.Contains(t, s, `kiln:slo_error_ratio:rate3d{slo="api-availability"} > (1 * 0.001)`)
	assert.Contains(t, s, "expr: vector(0.999)")
	assert.Contains(t, s, "runbook_url: https://github.com/kiln-project/kiln/blob/main/docs/runbooks/KilnSLOAPIAvailabilityTicket.md")
}
