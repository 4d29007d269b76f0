// Package status is the service's public status page: a prober that
// checks every component of this replica at an interval and records one
// sample per component into the store's daily uptime counts, and the
// pages that show the current state, 90 days of uptime and the incidents
// the operators announce (GET /status, /status.json, /status/feed.atom).
// Nothing here names an organization, a user, a token, a blueprint or a
// compose: the page is public.
package status

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
)

// Component states. A component with no sample yet is unknown.
const (
	Operational = "operational"
	Degraded    = "degraded"
	Down        = "down"
	Unknown     = "unknown"
)

// Fixed component names; workers and upload targets are named
// WorkersPrefix+arch and UploadPrefix+type.
const (
	API           = "api"
	Database      = "database"
	Queue         = "queue"
	ArtifactStore = "artifact-store"
	WorkersPrefix = "workers/"
	UploadPrefix  = "upload/"
)

// FixedComponents are the components every service has.
func FixedComponents() []string { return []string{API, Database, Queue, ArtifactStore} }

// Store is what the prober and the pages read and write.
type Store interface {
	Counts(ctx context.Context) ([]store.JobCount, error)
	ConnectedWorkers(ctx context.Context, since time.Time) ([]store.SeenWorker, error)
	store.Uptime
	store.Incidents
	store.Uploads
}

// Config configures a Prober.
type Config struct {
	Store     Store
	Artifacts artifacts.Store
	// Arches are the architectures the service offers; each is a
	// component (its workers).
	Arches []string
	// Targets are the configured upload types; each is a component.
	Targets []string
	// Ready checks that this replica answers HTTP on its address (a
	// request to itself); whether its database answers is the database
	// component.
	Ready func(ctx context.Context) error
	// Interval is how often the components are checked. Default 30s.
	Interval time.Duration
	// WorkerWindow is how long after it was last heard from a worker
	// counts as connected. Default store.ConnectedWindow.
	WorkerWindow time.Duration
	// UploadWindow is how far back upload outcomes are looked at.
	// Default 1h.
	UploadWindow time.Duration
	// Timeout bounds each check. Default 10s, at most Interval.
	Timeout time.Duration
	Now     func() time.Time
	Log     *slog.Logger
}

// Component is one component's current state.
type Component struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	State string `json:"state"`
	// Message says why, in words fit for the public page.
	Message   string    `json:"message"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// Prober checks the components and keeps their latest states.
type Prober struct {
	cfg     Config
	mu      sync.Mutex
	current []Component
	pending []store.UptimeSample // samples the store did not take yet

	// The pages' last report (see cachedReport).
	reportMu  sync.Mutex
	reportAt  time.Time
	report    Report
	reportErr error
	building  *reportBuild // the build under way, if any
}

// New returns a prober; Run starts it.
func New(cfg Config) *Prober {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.WorkerWindow <= 0 {
		cfg.WorkerWindow = store.ConnectedWindow
	}
	if cfg.UploadWindow <= 0 {
		cfg.UploadWindow = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = min(10*time.Second, cfg.Interval)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Prober{cfg: cfg}
	for _, name := range p.Components() {
		p.current = append(p.current, Component{Name: name, Title: Title(name), State: Unknown, Message: "not checked yet"})
	}
	return p
}

// Components lists the components' names in the order the page shows
// them.
func (p *Prober) Components() []string {
	names := []string{API, Database, Queue}
	for _, a := range p.cfg.Arches {
		names = append(names, WorkersPrefix+a)
	}
	names = append(names, ArtifactStore)
	for _, t := range p.cfg.Targets {
		names = append(names, UploadPrefix+t)
	}
	return names
}

// Title is a component's name for people.
func Title(name string) string {
	switch {
	case name == API:
		return "API and web UI"
	case name == Database:
		return "Database"
	case name == Queue:
		return "Job queue"
	case name == ArtifactStore:
		return "Artifact store (image downloads)"
	case strings.HasPrefix(name, WorkersPrefix):
		return "Build workers (" + strings.TrimPrefix(name, WorkersPrefix) + ")"
	case strings.HasPrefix(name, UploadPrefix):
		return "Uploads to " + strings.TrimPrefix(name, UploadPrefix)
	}
	return name
}

// SetReady sets the API check once the service listens; call it before
// Run.
func (p *Prober) SetReady(ready func(ctx context.Context) error) { p.cfg.Ready = ready }

// Current returns the components' latest states.
func (p *Prober) Current() []Component {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.current)
}

// Run checks the components now and then every Interval until ctx ends,
// recording each check, and prunes uptime older than 90 days once a day.
func (p *Prober) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	var pruned time.Time
	for {
		p.Check(ctx)
		if now := p.cfg.Now(); now.Sub(pruned) >= 24*time.Hour && ctx.Err() == nil {
			if err := p.Prune(ctx); err != nil {
				p.cfg.Log.Error("status: pruning uptime", "err", err)
			} else {
				pruned = now
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes the uptime of the days before the 90 the page shows.
func (p *Prober) Prune(ctx context.Context) error {
	_, err := p.cfg.Store.PruneUptime(ctx, store.Day(p.cfg.Now()).AddDate(0, 0, -(Days-1)))
	return err
}

// keep bounds the samples waiting for the database to a day of checks of
// every component, the newest kept: an outage of the database longer than
// that loses its oldest samples, not the replica's memory.
func (p *Prober) keep(samples []store.UptimeSample) []store.UptimeSample {
	limit := len(p.Components()) * int(24*time.Hour/p.cfg.Interval)
	if len(samples) > limit {
		samples = samples[len(samples)-limit:]
	}
	return samples
}

// Check checks every component once, keeps the result as the current
// state and records it as uptime samples.
func (p *Prober) Check(ctx context.Context) []Component {
	now := p.cfg.Now()
	cs := p.check(ctx, now)
	var samples []store.UptimeSample
	for i := range cs {
		cs[i].Title, cs[i].CheckedAt = Title(cs[i].Name), now
		if cs[i].State != Unknown {
			samples = append(samples, store.UptimeSample{Component: cs[i].Name, At: now, OK: cs[i].State == Operational})
		}
	}
	p.mu.Lock()
	p.current = cs
	if ctx.Err() != nil {
		// Shutting down: these samples wait with the others.
		p.pending = p.keep(append(p.pending, samples...))
		p.mu.Unlock()
		return cs
	}
	samples = append(p.pending, samples...)
	p.pending = nil
	p.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if err := p.cfg.Store.RecordUptime(rctx, samples); err != nil {
		p.cfg.Log.Error("status: recording uptime", "err", err)
		p.mu.Lock()
		p.pending = p.keep(append(samples, p.pending...))
		p.mu.Unlock()
	}
	return cs
}

func (p *Prober) check(ctx context.Context, now time.Time) []Component {
	withTimeout := func(fn func(ctx context.Context) error) error {
		c, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		return fn(c)
	}
	var out []Component
	add := func(name, state, msg string) { out = append(out, Component{Name: name, State: state, Message: msg}) }

	// The API: this replica answers its own readiness check.
	if p.cfg.Ready == nil {
		add(API, Unknown, "not checked")
	} else if err := withTimeout(p.cfg.Ready); err != nil {
		p.cfg.Log.Warn("status: the API is not ready", "err", err)
		add(API, Down, "the API does not answer")
	} else {
		add(API, Operational, "the API answers")
	}

	// The database: one cheap query, whose answer the queue check uses.
	var counts []store.JobCount
	err := withTimeout(func(ctx context.Context) error {
		var err error
		counts, err = p.cfg.Store.Counts(ctx)
		return err
	})
	dbUp := err == nil
	if !dbUp {
		p.cfg.Log.Warn("status: the database does not answer", "err", err)
		add(Database, Down, "the database does not answer")
	} else {
		add(Database, Operational, "the database answers")
	}

	// Workers, by the architectures they declared.
	var workers []store.SeenWorker
	if dbUp {
		err = withTimeout(func(ctx context.Context) error {
			var err error
			workers, err = p.cfg.Store.ConnectedWorkers(ctx, now.Add(-p.cfg.WorkerWindow))
			return err
		})
	}
	workersKnown := dbUp && err == nil
	perArch := map[string]int{}
	for _, w := range workers {
		for _, a := range w.Arches {
			perArch[a]++
		}
	}

	// The queue: jobs that wait for an architecture no connected worker
	// builds are not being taken.
	if !workersKnown {
		add(Queue, Unknown, "the database does not answer")
	} else {
		stuck := map[string]int{}
		pending := 0
		for _, c := range counts {
			if c.State != store.JobPending {
				continue
			}
			pending += c.N
			if (c.Arch == "" && len(workers) == 0) || (c.Arch != "" && perArch[c.Arch] == 0) {
				arch := c.Arch
				if arch == "" {
					arch = "any architecture"
				}
				stuck[arch] += c.N
			}
		}
		switch {
		case len(stuck) > 0:
			var parts []string
			for _, a := range slices.Sorted(maps.Keys(stuck)) {
				parts = append(parts, fmt.Sprintf("%s (%d)", a, stuck[a]))
			}
			add(Queue, Degraded, "jobs wait and no connected worker takes them: "+strings.Join(parts, ", "))
		case pending > 0:
			add(Queue, Operational, fmt.Sprintf("%d jobs waiting, workers are taking them", pending))
		default:
			add(Queue, Operational, "no jobs waiting")
		}
	}
	for _, a := range p.cfg.Arches {
		switch {
		case !workersKnown:
			add(WorkersPrefix+a, Unknown, "the database does not answer")
		case perArch[a] == 0:
			add(WorkersPrefix+a, Down, "no worker for "+a+" is connected")
		case perArch[a] == 1:
			add(WorkersPrefix+a, Operational, "1 worker connected")
		default:
			add(WorkersPrefix+a, Operational, fmt.Sprintf("%d workers connected", perArch[a]))
		}
	}

	// The artifact store: a small object written, read back and removed.
	if p.cfg.Artifacts == nil {
		add(ArtifactStore, Unknown, "not checked")
	} else if err := withTimeout(p.cfg.Artifacts.Probe); err != nil {
		p.cfg.Log.Warn("status: the artifact store probe failed", "err", err)
		add(ArtifactStore, Down, "the artifact store does not take or give back files")
	} else {
		add(ArtifactStore, Operational, "the artifact store takes and gives back files")
	}

	// Upload targets, by how their recent uploads ended.
	var outcomes []store.UploadOutcome
	if dbUp {
		err = withTimeout(func(ctx context.Context) error {
			var err error
			outcomes, err = p.cfg.Store.UploadOutcomes(ctx, now.Add(-p.cfg.UploadWindow))
			return err
		})
	}
	for _, t := range p.cfg.Targets {
		if !dbUp || err != nil {
			add(UploadPrefix+t, Unknown, "the database does not answer")
			continue
		}
		var o store.UploadOutcome
		for _, x := range outcomes {
			if x.Type == t {
				o = x
			}
		}
		state, msg := UploadState(o.Success, o.Failure, p.cfg.UploadWindow)
		add(UploadPrefix+t, state, msg)
	}
	return out
}

// UploadState judges an upload target by its uploads that ended within
// window: down when at least three failed and none succeeded, degraded
// when at least two failed and they are more than a quarter, otherwise
// operational (also with no uploads at all: nothing says it is broken).
func UploadState(success, failure int, window time.Duration) (state, message string) {
	total := success + failure
	in := "in the last " + span(window)
	switch {
	case total == 0:
		return Operational, "no uploads " + in
	case failure >= 3 && success == 0:
		return Down, fmt.Sprintf("all %d uploads %s failed", total, in)
	case failure >= 2 && failure*4 > total:
		return Degraded, fmt.Sprintf("%d of %d uploads %s failed", failure, total, in)
	}
	return Operational, fmt.Sprintf("%d of %d uploads %s succeeded", success, total, in)
}

// Overall is the service's state from its components': down when the
// API, the database or the artifact store is down, degraded when any
// component is not operational, unknown before the first check.
func Overall(cs []Component) string {
	state, known := Operational, false
	for _, c := range cs {
		switch c.State {
		case Unknown:
			continue
		case Down:
			if c.Name == API || c.Name == Database || c.Name == ArtifactStore {
				return Down
			}
			state = Degraded
		case Degraded:
			state = Degraded
		}
		known = true
	}
	if !known {
		return Unknown
	}
	return state
}

// span says a duration in words: "hour", "2 hours", "30 minutes".
func span(d time.Duration) string {
	unit, n := "minute", int(d/time.Minute)
	if d >= time.Hour && d%time.Hour == 0 {
		unit, n = "hour", int(d/time.Hour)
	}
	if n <= 1 {
		if d < time.Minute {
			return d.String()
		}
		return unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// OfferedArches are the architectures some distribution of reg builds:
// each is a component (its workers). Without a registry, fallback (the
// in-process workers' architectures), else x86_64.
func OfferedArches(reg *distro.Registry, fallback []string) []string {
	var arches []string
	if reg != nil {
		for _, d := range reg.Distros() {
			for _, a := range d.Arches() {
				if a.NotBuildable == "" && !slices.Contains(arches, a.Name) {
					arches = append(arches, a.Name)
				}
			}
		}
	}
	if len(arches) == 0 {
		arches = slices.Clone(fallback)
	}
	if len(arches) == 0 {
		arches = []string{"x86_64"}
	}
	slices.Sort(arches)
	return arches
}
