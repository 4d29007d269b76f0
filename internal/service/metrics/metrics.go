// Package metrics holds the service's Prometheus metrics: HTTP requests by
// route and code, jobs by type, architecture and state, job durations and
// queue waits, and the workers seen lately.
package metrics

import (
	"context"
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

	mu      sync.Mutex
	workers map[string]time.Time
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
			Name: "kiln_job_duration_seconds", Help: "How long jobs ran, by type, architecture and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}, []string{"type", "arch", "outcome"}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_job_queue_wait_seconds", Help: "How long jobs waited in the queue before a worker took them.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 14),
		}, []string{"type", "arch"}),
		ArtifactBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_artifacts_bytes", Help: "Bytes the artifact store takes, measured by each retention cleanup.",
		}),
		workers: map[string]time.Time{},
	}
	m.Registry.MustRegister(m.HTTPDuration, m.JobDuration, m.QueueWait, m.ArtifactBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&jobsCollector{queue: queue}, &workersCollector{m: m})
	return m
}

// WorkerSeen records that a worker asked for work.
func (m *Metrics) WorkerSeen(name string, now time.Time) {
	m.mu.Lock()
	m.workers[name] = now
	m.mu.Unlock()
}

var (
	composesDesc = prometheus.NewDesc("kiln_composes", "Composes by status (hidden ones left out).", []string{"status"}, nil)
	jobsDesc     = prometheus.NewDesc("kiln_jobs", "Jobs by type, architecture and state.", []string{"type", "arch", "state"}, nil)
	workersDesc  = prometheus.NewDesc("kiln_workers_active", "Workers that asked for work in the last two minutes.", nil, nil)
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
	for _, st := range []string{"pending", "building", "uploading", "success", "failure"} {
		ch <- prometheus.MustNewConstMetric(composesDesc, prometheus.GaugeValue, float64(statuses[st]), st)
	}
}

type workersCollector struct{ m *Metrics }

func (c *workersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- workersDesc }

func (c *workersCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	n := 0
	for name, seen := range c.m.workers {
		if time.Since(seen) < 2*time.Minute {
			n++
		} else {
			delete(c.m.workers, name)
		}
	}
	c.m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(n))
}
