// Package metrics holds the service's Prometheus metrics: HTTP requests by
// route and code, jobs by type, architecture and state, job durations and
// queue waits, composes by how they ended, and the workers seen lately
// (in all and by architecture).
package metrics

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// Metrics are the service's metrics, registered on Registry.
type Metrics struct {
	Registry     *prometheus.Registry
	HTTPDuration *prometheus.HistogramVec
	JobDuration  *prometheus.HistogramVec
	QueueWait    *prometheus.HistogramVec
	// ArtifactBytes is what the artifact store takes, as last measured.
	ArtifactBytes prometheus.Gauge
	// ComposesFinished counts composes as they reach their final state,
	// by outcome: OutcomeSuccess, OutcomeFailure or OutcomeUserError.
	ComposesFinished *prometheus.CounterVec

	mu      sync.Mutex
	workers map[string]seenWorker
	arches  map[string]bool // every architecture a worker asked for, so each keeps a series at 0
}

// The outcomes of kiln_composes_finished_total.
const (
	// OutcomeSuccess: the compose built and uploaded its image.
	OutcomeSuccess = "success"
	// OutcomeFailure: the compose failed because of the service (a
	// worker, the mirror, the store, a bug).
	OutcomeFailure = "failure"
	// OutcomeUserError: the compose failed because of what its owner
	// submitted (a refused blueprint, a package that does not exist).
	OutcomeUserError = "user_error"
)

// Outcomes returns the outcomes of kiln_composes_finished_total.
func Outcomes() []string { return []string{OutcomeSuccess, OutcomeFailure, OutcomeUserError} }

// activeWithin is how lately a worker must have asked for work to count
// as active.
const activeWithin = 2 * time.Minute

type seenWorker struct {
	at     time.Time
	arches []string
}

// New registers the metrics; queue is read at each scrape for job counts.
func New(queue store.Queue) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_http_request_duration_seconds", Help: "HTTP requests by route, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
		}, []string{"route", "method", "code"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_job_duration_seconds", Help: "How long jobs ran, by job type, architecture, image type and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}, []string{"type", "arch", "image_type", "outcome"}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_job_queue_wait_seconds", Help: "How long jobs waited in the queue before a worker took them.",
			// Round bounds, so that the queue-wait SLO's threshold (300 s)
			// is a bucket bound: see deploy/slo/slos.yaml.
			Buckets: QueueWaitBuckets(),
		}, []string{"type", "arch"}),
		ArtifactBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_artifacts_bytes", Help: "Bytes the artifact store takes, measured by each retention cleanup.",
		}),
		ComposesFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_composes_finished_total",
			Help: "Composes that reached their final state, by outcome: success, failure (the service's fault) or user_error (what was submitted was refused). Canceled composes are not counted.",
		}, []string{"outcome"}),
		workers: map[string]seenWorker{},
		arches:  map[string]bool{},
	}
	for _, o := range Outcomes() {
		m.ComposesFinished.WithLabelValues(o) // every series from the start, so rate() sees the first one
	}
	m.Registry.MustRegister(m.HTTPDuration, m.JobDuration, m.QueueWait, m.ArtifactBytes, m.ComposesFinished,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&jobsCollector{queue: queue}, &workersCollector{m: m})
	return m
}

// QueueWaitBuckets are the bucket bounds of kiln_job_queue_wait_seconds.
func QueueWaitBuckets() []float64 {
	return []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400}
}

// WorkerSeen records that a worker asked for work, of the architectures
// arches.
func (m *Metrics) WorkerSeen(name string, now time.Time, arches ...string) {
	m.mu.Lock()
	var own []string
	for _, a := range arches {
		if a != "" && !slices.Contains(own, a) {
			own = append(own, a)
			m.arches[a] = true
		}
	}
	m.workers[name] = seenWorker{at: now, arches: own}
	m.mu.Unlock()
}

// ComposeFinished counts a compose that reached its final state with
// outcome (OutcomeSuccess, OutcomeFailure or OutcomeUserError).
func (m *Metrics) ComposeFinished(outcome string) {
	m.ComposesFinished.WithLabelValues(outcome).Inc()
}

var (
	composesDesc = prometheus.NewDesc("kiln_composes", "Composes by status (hidden ones left out).", []string{"status"}, nil)
	jobsDesc     = prometheus.NewDesc("kiln_jobs", "Jobs by type, architecture and state.", []string{"type", "arch", "state"}, nil)
	workersDesc  = prometheus.NewDesc("kiln_workers_active", "Workers that asked for work in the last two minutes.", nil, nil)
	archDesc     = prometheus.NewDesc("kiln_workers_active_by_arch", "Workers that asked for work of the architecture in the last two minutes.", []string{"arch"}, nil)
)

type jobsCollector struct{ queue store.Queue }

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc; ch <- composesDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.queue.Counts(ctx)
	if err != nil {
		return
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n.N), n.Type, n.Arch, n.State)
	}
	statuses, err := c.queue.ComposeStatusCounts(ctx, workerproto.KindUpload)
	if err != nil {
		return
	}
	for _, st := range store.ComposeStatuses() {
		ch <- prometheus.MustNewConstMetric(composesDesc, prometheus.GaugeValue, float64(statuses[st]), st)
	}
}

type workersCollector struct{ m *Metrics }

func (c *workersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- workersDesc; ch <- archDesc }

func (c *workersCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	n := 0
	byArch := map[string]int{}
	for a := range c.m.arches {
		byArch[a] = 0
	}
	for name, seen := range c.m.workers {
		if time.Since(seen.at) < activeWithin {
			n++
			for _, a := range seen.arches {
				byArch[a]++
			}
		} else {
			delete(c.m.workers, name)
		}
	}
	c.m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(n))
	for a, k := range byArch {
		ch <- prometheus.MustNewConstMetric(archDesc, prometheus.GaugeValue, float64(k), a)
	}
}
