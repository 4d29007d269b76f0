package slo

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"
)

// These tests do what promtool test rules does, in process: synthetic
// series go into a TSDB, the shipped rule groups are evaluated over them
// step by step, and the test looks at when each alert fires. They use
// their own engine rather than promqltest's LazyLoader, whose limit of
// 10000 samples per query the 30d and 3d windows exceed.

// series is one synthetic counter: its labels and, for each moment, how
// fast it grows (per second). A nil rate is a gauge held at value.
type series struct {
	labels map[string]string
	rate   func(at time.Duration) float64
	value  float64
}

// feeder appends the series' samples, every step, up to the time asked:
// the TSDB takes samples only within hours of the newest, so they go in
// as the evaluation advances, as promtool's loader does.
type feeder struct {
	st   *teststorage.TestStorage
	ss   []series
	ls   []labels.Labels
	vals []float64
	step time.Duration
	next time.Duration // the next sample's time
}

func newFeeder(t *testing.T, ss []series, step time.Duration) *feeder {
	f := &feeder{st: teststorage.New(t), ss: ss, step: step}
	for _, s := range ss {
		f.ls = append(f.ls, labels.FromMap(s.labels))
		f.vals = append(f.vals, s.value)
	}
	return f
}

func (f *feeder) till(t *testing.T, end time.Duration) {
	t.Helper()
	app := f.st.Appender(context.Background())
	for ; f.next <= end; f.next += f.step {
		for i, s := range f.ss {
			if s.rate != nil && f.next > 0 {
				f.vals[i] += s.rate(f.next-f.step) * f.step.Seconds()
			}
			_, err := app.Append(0, f.ls[i], f.next.Milliseconds(), f.vals[i])
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
}

// firings evaluates the named groups of the rule files every step from 0
// to end over the series, and returns when each alert first fired.
func firings(t *testing.T, ss []series, step, end time.Duration, groupNames ...string) map[string]time.Duration {
	t.Helper()
	feed := newFeeder(t, ss, step)
	st := feed.st
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:            rules.EngineQueryFunc(engine, st),
		AppendableV2:         st,
		Context:              context.Background(),
		NotifyFunc:           func(context.Context, string, ...*rules.Alert) {},
		Logger:               slog.New(slog.DiscardHandler),
		NameValidationScheme: model.UTF8Validation,
	})
	loaded, errs := m.LoadGroups(step, labels.EmptyLabels(), "", nil, false, ruleFiles(t)...)
	require.Empty(t, errs)
	var groups []*rules.Group
	for _, g := range loaded {
		for _, n := range groupNames {
			if g.Name() == n {
				groups = append(groups, g)
			}
		}
	}
	require.Len(t, groups, len(groupNames), "groups %v", groupNames)
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name() < groups[j].Name() })
	for _, g := range groups {
		for _, r := range g.Rules() {
			if a, ok := r.(*rules.AlertingRule); ok {
				a.SetRestored(true)
			}
		}
	}
	first := map[string]time.Duration{}
	for at := time.Duration(0); at <= end; at += step {
		ts := time.Unix(0, 0).UTC().Add(at)
		feed.till(t, at)
		for _, g := range groups {
			g.Eval(context.Background(), ts)
			for _, r := range g.Rules() {
				require.NoError(t, r.LastError(), "%s at %v", r.Name(), at)
				a, ok := r.(*rules.AlertingRule)
				if !ok {
					continue
				}
				if _, done := first[a.Name()]; done {
					continue
				}
				for _, al := range a.ActiveAlerts() {
					if al.State == rules.StateFiring {
						first[a.Name()] = at
					}
				}
			}
		}
	}
	return first
}

// traffic is the synthetic series of one SLO: total events per second,
// of which the share bad(at) is bad. Each adds series that the SLO must
// leave out, so that counting them shows.
type traffic func(total float64, bad func(time.Duration) float64) []series

func counter(rate func(time.Duration) float64, kv ...string) series {
	ls := map[string]string{"job": "kiln", "instance": "api-0:8086"}
	for i := 0; i < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return series{labels: ls, rate: rate}
}

func constant(v float64) func(time.Duration) float64 { return func(time.Duration) float64 { return v } }

func httpSeries(route, code string, rate func(time.Duration) float64) series {
	return counter(rate, "__name__", "kiln_http_request_duration_seconds_count", "route", route, "method", "GET", "code", code)
}

func queueWait(le string) traffic {
	return func(total float64, bad func(time.Duration) float64) []series {
		good := func(at time.Duration) float64 { return total * (1 - bad(at)) }
		b := func(name, le string, rate func(time.Duration) float64) series {
			return counter(rate, "__name__", name, "type", "build", "arch", "x86_64", "le", le)
		}
		return []series{
			counter(constant(total), "__name__", "kiln_job_queue_wait_seconds_count", "type", "build", "arch", "x86_64"),
			b("kiln_job_queue_wait_seconds_bucket", le, good),
			// Neighbours a loose match would take.
			b("kiln_job_queue_wait_seconds_bucket", "30.0", constant(0)),
			b("kiln_job_queue_wait_seconds_bucket", "3000.0", constant(total)),
			b("kiln_job_queue_wait_seconds_bucket", "+Inf", constant(total)),
		}
	}
}

var traffics = map[string]traffic{
	"compose-success": func(total float64, bad func(time.Duration) float64) []series {
		c := func(outcome string, rate func(time.Duration) float64) series {
			return counter(rate, "__name__", "kiln_composes_finished_total", "outcome", outcome)
		}
		return []series{
			c("success", func(at time.Duration) float64 { return total * (1 - bad(at)) }),
			c("failure", func(at time.Duration) float64 { return total * bad(at) }),
			// Users' errors, as many as all the rest: left out.
			c("user_error", constant(total)),
		}
	},
	"api-availability": func(total float64, bad func(time.Duration) float64) []series {
		return []series{
			httpSeries("getComposes", "200", func(at time.Duration) float64 { return total * 0.9 * (1 - bad(at)) }),
			httpSeries("getComposes", "404", func(at time.Duration) float64 { return total * 0.1 * (1 - bad(at)) }),
			httpSeries("getComposes", "500", func(at time.Duration) float64 { return total * bad(at) }),
			// Abandoned requests, many: left out.
			httpSeries("getComposes", "0", constant(total*10)),
		}
	},
	"api-latency": func(total float64, bad func(time.Duration) float64) []series {
		bucket := func(route, le string, rate func(time.Duration) float64) series {
			return counter(rate, "__name__", "kiln_http_request_duration_seconds_bucket", "route", route, "method", "GET", "code", "200", "le", le)
		}
		return []series{
			httpSeries("getComposes", "200", constant(total)),
			bucket("getComposes", "0.5", func(at time.Duration) float64 { return total * (1 - bad(at)) }),
			bucket("getComposes", "+Inf", constant(total)),
			// Log streams, all slow: left out.
			httpSeries("getComposeLogs", "200", constant(total)),
			bucket("getComposeLogs", "0.5", constant(0)),
		}
	},
	"artifact-download": func(total float64, bad func(time.Duration) float64) []series {
		return []series{
			httpSeries("downloadCompose", "200", func(at time.Duration) float64 { return total * 0.8 * (1 - bad(at)) }),
			httpSeries("headComposeDownload", "200", func(at time.Duration) float64 { return total * 0.2 * (1 - bad(at)) }),
			httpSeries("downloadCompose", "503", func(at time.Duration) float64 { return total * bad(at) }),
			// Other routes failing: not downloads.
			httpSeries("getComposes", "500", constant(total)),
		}
	},
}

// For each SLO: a fast burn pages within the hour; a slow, steady burn
// opens a ticket and does not page; a healthy service and one without
// any traffic fire nothing.
func TestSLOBurnRateAlerts(t *testing.T) {
	f, err := Load(sloFile)
	require.NoError(t, err)
	const h, d = time.Hour, 24 * time.Hour
	for _, s := range f.SLOs {
		budget := s.Budget()
		page, ticket := s.AlertName(AlertKinds()[0]), s.AlertName(AlertKinds()[1])
		// A fast burn: 20 times the budget (or, for a large budget,
		// halfway between the page's threshold and everything failing),
		// after two healthy hours at half the budget.
		fast := math.Min(20*budget, (14.4*budget+1)/2)
		cases := []struct {
			name       string
			bad        func(time.Duration) float64
			total      float64
			step, end  time.Duration
			want       map[string][2]time.Duration
			mayAlsoAdd []string // alerts that may fire too
		}{{
			name: "fast burn pages",
			bad: func(at time.Duration) float64 {
				if at < 2*h {
					return budget / 2
				}
				return fast
			},
			total: 10, step: time.Minute, end: 3*h + 30*time.Minute,
			want:       map[string][2]time.Duration{page: {2 * h, 3 * h}},
			mayAlsoAdd: []string{ticket},
		}, {
			name: "slow burn opens a ticket and does not page",
			bad: func(at time.Duration) float64 {
				if at < d {
					return budget / 2
				}
				return 2 * budget
			},
			total: 10, step: 5 * time.Minute, end: 2*d + 12*h,
			want: map[string][2]time.Duration{ticket: {d + 6*h, 2 * d}},
		}, {
			name:  "healthy",
			bad:   func(time.Duration) float64 { return budget / 2 },
			total: 10, step: 5 * time.Minute, end: 2 * d,
		}, {
			name:  "no traffic",
			bad:   func(time.Duration) float64 { return 0 },
			total: 0, step: 5 * time.Minute, end: d,
		}}
		type variant struct {
			label string
			make  traffic
		}
		var variants []variant
		if s.Name == "queue-wait" {
			// Prometheus 3 stores le="300" as le="300.0": both must work.
			variants = []variant{{`le="300.0"`, queueWait("300.0")}, {`le="300"`, queueWait("300")}}
		} else {
			require.Contains(t, traffics, s.Name, "no synthetic traffic for SLO %s", s.Name)
			variants = []variant{{"", traffics[s.Name]}}
		}
		for _, tr := range variants {
			for _, tc := range cases {
				name := s.Name + "/" + tc.name
				if tr.label != "" {
					name += "/" + tr.label
				}
				t.Run(name, func(t *testing.T) {
					got := firings(t, tr.make(tc.total, tc.bad), tc.step, tc.end, "kiln-slo-"+s.Name)
					t.Logf("first firing: %v", got)
					for _, alert := range []string{page, ticket} {
						at, fired := got[alert]
						span, want := tc.want[alert]
						switch {
						case want && !fired:
							t.Errorf("SLO %s, %s: %s did not fire by %v; want it between %v and %v", s.Name, tc.name, alert, tc.end, span[0], span[1])
						case want && (at < span[0] || at > span[1]):
							t.Errorf("SLO %s, %s: %s fired at %v; want it between %v and %v", s.Name, tc.name, alert, at, span[0], span[1])
						case !want && fired && !slices.Contains(tc.mayAlsoAdd, alert):
							t.Errorf("SLO %s, %s: %s fired at %v; it must not", s.Name, tc.name, alert, at)
						}
					}
				})
			}
		}
	}
}

// KilnNoWorkers fires when jobs are pending and no worker asked for work
// for 10 minutes, and not while a worker is active or nothing waits.
func TestKilnNoWorkers(t *testing.T) {
	gauge := func(v float64, kv ...string) series {
		s := counter(nil, kv...)
		s.value = v
		return s
	}
	for _, tc := range []struct {
		name    string
		workers float64
		pending float64
		want    bool
	}{
		{"jobs pending, no worker", 0, 3, true},
		{"jobs pending, a worker", 1, 3, false},
		{"nothing pending, no worker", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := []series{
				gauge(tc.workers, "__name__", "kiln_workers_active"),
				gauge(tc.pending, "__name__", "kiln_jobs", "type", "build", "arch", "x86_64", "state", "pending"),
				gauge(1, "__name__", "kiln_jobs", "type", "build", "arch", "x86_64", "state", "running"),
			}
			got := firings(t, ss, time.Minute, 30*time.Minute, "kiln-queue")
			at, fired := got["KilnNoWorkers"]
			switch {
			case tc.want && !fired:
				t.Errorf("%s: KilnNoWorkers did not fire within 30m", tc.name)
			case tc.want && (at < 10*time.Minute || at > 12*time.Minute):
				t.Errorf("%s: KilnNoWorkers fired at %v; want 10m to 12m (for: 10m)", tc.name, at)
			case !tc.want && fired:
				t.Errorf("%s: KilnNoWorkers fired at %v; it must not", tc.name, at)
			}
		})
	}
}
