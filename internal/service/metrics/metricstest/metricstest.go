// Package metricstest tells the tests of kiln's shipped monitoring files
// (alert and recording rules, dashboards, runbooks) which series kiln
// exports and which series a PromQL expression reads. Only tests import
// it: it links Prometheus' PromQL parser, which the kiln binary does not.
package metricstest

import (
	"context"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kiln-project/kiln/internal/service/metrics"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/worker"
)

// countsQueue answers the two queries the service's metrics read at each
// scrape, with one row each, so that those gauges are gathered.
type countsQueue struct{ store.Queue }

func (countsQueue) Counts(context.Context) ([]store.JobCount, error) {
	return []store.JobCount{{Type: "build", Arch: "x86_64", State: "pending", N: 1}}, nil
}

func (countsQueue) ComposeStatusCounts(context.Context, string) (map[string]int, error) {
	return map[string]int{"pending": 1}, nil
}

// Exported returns every series name `kiln serve`'s and `kiln worker`'s
// /metrics can show: their registries, built as they build them, with one
// observation in each labelled metric so that it is gathered; histograms
// and summaries with their _bucket, _sum and _count series.
func Exported() (map[string]bool, error) {
	m := metrics.New(countsQueue{})
	m.HTTPDuration.WithLabelValues("getComposes", "GET", "200").Observe(0.01)
	m.JobDuration.WithLabelValues("build", "x86_64", "qcow2", "success").Observe(60)
	m.QueueWait.WithLabelValues("build", "x86_64").Observe(1)
	m.WorkerSeen("w1", time.Now(), "x86_64")
	families, err := m.Registry.Gather()
	if err != nil {
		return nil, err
	}
	wf, err := worker.NewHealth().Registry.Gather()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, f := range append(families, wf...) {
		n := f.GetName()
		names[n] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	for _, n := range []string{"kiln_composes_finished_total", "kiln_workers_active_by_arch", "kiln_jobs", "kiln_composes",
		"kiln_job_duration_seconds", "kiln_worker_jobs_total"} {
		if !names[n] {
			return nil, fmt.Errorf("%s is not gathered: Exported misses an observation of it", n)
		}
	}
	return names, nil
}

// SelectorNames returns the metric names expr selects, by name or by an
// equality matcher on __name__; "" for a selector that names none.
func SelectorNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}
