package slo

import (
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/metrics/metricstest"
)

// ruleFiles are the rule files kiln ships.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../deploy/prometheus/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

// What promtool check rules does (the rule files parse, with every
// expression, label and annotation template; no duplicate rules), and
// more: every alert has a severity, a summary and its runbook; every
// metric an expression reads is one kiln exports, one these files
// record, up, or node_exporter's.
func TestRuleFilesCheck(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	have, err := metricstest.Exported()
	require.NoError(t, err)
	type parsed struct {
		file   string
		groups *rulefmt.RuleGroups
	}
	var all []parsed
	recorded := map[string]bool{}
	for _, f := range ruleFiles(t) {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
		for _, err := range errs {
			t.Errorf("%v", err)
		}
		if rgs == nil {
			continue
		}
		all = append(all, parsed{filepath.Base(f), rgs})
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
			}
		}
	}
	alerts := 0
	for _, pf := range all {
		// promtool's duplicate-rules lint: the same name and labels twice.
		seen := map[string]bool{}
		for _, g := range pf.groups.Groups {
			for _, r := range g.Rules {
				name := r.Record + r.Alert
				where := fmt.Sprintf("%s: group %s: %s", pf.file, g.Name, name)
				ls := map[string]string{}
				for k, v := range g.Labels {
					ls[k] = v
				}
				for k, v := range r.Labels {
					ls[k] = v
				}
				keys := make([]string, 0, len(ls))
				for k := range ls {
					keys = append(keys, k+"="+ls[k])
				}
				sort.Strings(keys)
				key := name + "{" + strings.Join(keys, ",") + "}"
				assert.False(t, seen[key], "%s: duplicate rule %s", where, key)
				seen[key] = true

				expr, err := p.ParseExpr(r.Expr)
				if !assert.NoError(t, err, where) {
					continue
				}
				for _, n := range metricstest.SelectorNames(expr) {
					ok := have[n] || recorded[n] || n == "up" || strings.HasPrefix(n, "node_")
					assert.True(t, ok, "%s: reads %q, which kiln does not export and no rule records", where, n)
				}
				if r.Alert == "" {
					continue
				}
				alerts++
				assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "%s: labels.severity", where)
				assert.NotEmpty(t, strings.TrimSpace(r.Annotations["summary"]), "%s: annotations.summary", where)
				assert.NotEmpty(t, strings.TrimSpace(r.Annotations["description"]), "%s: annotations.description", where)
				assert.Equal(t, RunbookBase+r.Alert+".md", r.Annotations["runbook_url"], "%s: annotations.runbook_url", where)
				assert.Positive(t, time.Duration(r.For), "%s: for", where)
			}
		}
	}
	assert.Equal(t, 21, alerts, "11 alerts in alerts.yaml and 2 for each of the 5 SLOs")
}

// The removed threshold alerts stay removed, the kept ones stay.
func TestAlertNames(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	var names []string
	for _, f := range ruleFiles(t) {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
		require.Empty(t, errs)
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					names = append(names, r.Alert)
				}
			}
		}
	}
	for _, n := range []string{"KilnQueueGrowing", "KilnNoWorkers", "KilnArchWithoutWorkers", "KilnJobsSlow", "KilnWorkerCannotReachServer",
		"KilnWorkerJobsLost", "KilnDown", "KilnRateLimited", "KilnArtifactStoreNearBound", "KilnWorkerCacheDiskFilling", "KilnWorkerCacheDiskFullSoon"} {
		assert.Contains(t, names, n)
	}
	for _, n := range []string{"KilnAPIErrors", "KilnQueueWaitHigh", "KilnJobsFailing", "KilnAPILatencyHigh"} {
		assert.NotContains(t, names, n, "replaced by the SLO alerts")
	}
}

// The kiln binary does not link Prometheus' server libraries: only
// these tests use them.
func TestBinaryLinksNoPrometheusServer(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the toolchain that built the test
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}", "github.com/kiln-project/kiln/cmd/kiln").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/kiln-project/kiln/internal/slo")
	assert.False(t, slices.ContainsFunc(deps, func(d string) bool {
		return strings.HasPrefix(d, "github.com/prometheus/prometheus/")
	}), "cmd/kiln links github.com/prometheus/prometheus")
}
