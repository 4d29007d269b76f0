package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kiln-project/kiln/internal/service/artifacts"
)

// LogStreams bounds and paces the streams that follow running composes'
// build logs (GET /composes/{id}/logs).
type LogStreams struct {
	// PerOrg is how many log streams one org may hold open at once on a
	// replica. Default 8.
	PerOrg int
	// Check is how often a followed compose is looked at for what this
	// replica did not see happen (a log piece or a finished job on
	// another replica). Default 1s.
	Check time.Duration
}

func (l *LogStreams) withDefaults() {
	if l.PerOrg <= 0 {
		l.PerOrg = 8
	}
	if l.Check <= 0 {
		l.Check = time.Second
	}
}

// streamCounts counts each org's open log streams.
type streamCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes one of org's limit places; false when all are taken.
func (c *streamCounts) acquire(org string, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[org] >= limit {
		return false
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[org]++
	return true
}

func (c *streamCounts) release(org string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[org]--; c.n[org] <= 0 {
		delete(c.n, org)
	}
}

func tooManyLogStreams(limit int) *apiError {
	return newError(http.StatusTooManyRequests, fmt.Sprintf("your organization already follows %d build logs at once, the most it may: close one of those streams and try again", limit))
}

// LogChanged tells the streams that follow the compose's log that it grew
// or that one of its jobs finished, so they send it at once instead of at
// the next check.
func (s *Server) LogChanged(composeID string) { s.watchers.wake(composeID) }

// watchers hold one watcher per followed compose, shared by all of its
// streams: the database and the artifact store are looked at once per
// check, however many clients follow.
type watchers struct {
	mu sync.Mutex
	m  map[string]*watcher // by compose ID
}

// watcher looks at one compose until it ends or its last stream leaves,
// and tells the streams each time its log grew or it ended.
type watcher struct {
	refs int
	stop context.CancelFunc
	poke chan struct{} // a change seen in this process

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, on every change
	done    bool
}

// state is the channel the next change closes, and whether the compose
// has ended (all of its log is then written).
func (w *watcher) state() (<-chan struct{}, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed, w.done
}

func (w *watcher) broadcast(done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = w.done || done
	close(w.changed)
	w.changed = make(chan struct{})
}

// follow returns the compose's watcher, starting it for the first
// stream; release gives it back, and the last release stops it.
func (s *Server) follow(org, id string) (w *watcher, release func()) {
	ws := &s.watchers
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w = ws.m[id]
	if w == nil {
		ctx, stop := context.WithCancel(context.Background())
		w = &watcher{stop: stop, poke: make(chan struct{}, 1), changed: make(chan struct{})}
		if ws.m == nil {
			ws.m = map[string]*watcher{}
		}
		ws.m[id] = w
		go s.watch(ctx, w, org, id)
	}
	w.refs++
	return w, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		if w.refs--; w.refs == 0 {
			w.stop()
			delete(ws.m, id)
		}
	}
}

func (ws *watchers) wake(id string) {
	ws.mu.Lock()
	w := ws.m[id]
	ws.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.poke <- struct{}{}:
	default: // a check is already due
	}
}

// watch checks the compose's log size and jobs every LogStreams.Check, or
// at once when poked, until the compose ends or ctx does.
func (s *Server) watch(ctx context.Context, w *watcher, org, id string) {
	t := time.NewTicker(s.cfg.LogStreams.Check)
	defer t.Stop()
	size := int64(-1)
	for {
		js, err := s.cfg.Store.ComposeJobs(ctx, org, id)
		if ctx.Err() != nil {
			return
		}
		if err != nil || finished(js) {
			w.broadcast(true)
			return
		}
		if n := s.logSize(ctx, id); n != size {
			size = n
			w.broadcast(false)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.poke:
		case <-t.C:
		}
	}
}

// logSize is the size of the compose's build log; 0 when it has none.
func (s *Server) logSize(ctx context.Context, id string) int64 {
	f, err := s.cfg.Artifacts.Open(ctx, id, artifacts.BuildLog)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}
