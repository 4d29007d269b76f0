package worker

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-project/kiln/internal/workerproto"
)

// Health is what a worker process tells its supervisor: /livez, /readyz
// (the server answered a job request or a heartbeat lately) and /metrics. Workers of one process share
// it.
type Health struct {
	Registry *prometheus.Registry
	// ReadyWithin is how recently the server must have answered for
	// /readyz. Default: DefaultReadyWithin.
	ReadyWithin time.Duration
	jobs        *prometheus.CounterVec
	busy        prometheus.Gauge
	contact     prometheus.Gauge
	// lastContact is when the server last answered, in Unix nanoseconds.
	lastContact atomic.Int64
}

// NewHealth registers a worker process's metrics.
func NewHealth() *Health {
	h := &Health{
		Registry: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_worker_jobs_total", Help: "Jobs this worker process ran, by type and outcome (success, failure, handed_back, lost).",
		}, []string{"type", "outcome"}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_worker_busy", Help: "Jobs this worker process runs now.",
		}),
		contact: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_worker_last_contact_timestamp_seconds", Help: "When the server last answered this worker process.",
		}),
	}
	// Every series exists from the start, so rates and increases see
	// the first job too.
	for _, typ := range []string{workerproto.KindDepsolve, workerproto.KindBuild, workerproto.KindUpload} {
		for _, outcome := range []string{"success", "failure", "handed_back", "lost"} {
			h.jobs.WithLabelValues(typ, outcome)
		}
	}
	// The Go and process collectors come from the prometheus package
	// itself, not from its collectors package, which collectors.NewGoCollector
	// and NewProcessCollector only wrap: that package also holds a
	// database/sql statistics collector, and importing it would link
	// database/sql into every worker (see deps_test.go).
	h.Registry.MustRegister(h.jobs, h.busy, h.contact,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{})) //nolint:staticcheck // see above
	return h
}

func (h *Health) contacted(now time.Time) {
	if h == nil {
		return
	}
	h.lastContact.Store(now.UnixNano())
	h.contact.Set(float64(now.Unix()))
}

func (h *Health) started() {
	if h != nil {
		h.busy.Inc()
	}
}

func (h *Health) ended(typ, outcome string) {
	if h != nil {
		h.busy.Dec()
		h.jobs.WithLabelValues(typ, outcome).Inc()
	}
}

// DefaultReadyWithin is how recently the server must have answered for
// /readyz.
const DefaultReadyWithin = time.Minute

// Handler serves /livez, /readyz and /metrics.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		within := h.ReadyWithin
		if within <= 0 {
			within = DefaultReadyWithin
		}
		last := h.lastContact.Load()
		if last == 0 || time.Since(time.Unix(0, last)) > within {
			http.Error(w, "the server has not answered within "+within.String(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.Registry, promhttp.HandlerOpts{}))
	return mux
}
