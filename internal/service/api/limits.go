package api

import (
	"container/list"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kiln-project/kiln/internal/service/store"
)

// Quota bounds how many composes an org may submit in a window.
type Quota struct {
	// Composes is the limit. Default 100.
	Composes int
	// Window is the period counted. Default 14 days.
	Window time.Duration
	// PerOrg overrides Composes for some orgs.
	PerOrg map[string]int
}

func (q *Quota) withDefaults() {
	if q.Composes <= 0 {
		q.Composes = 100
	}
	if q.Window <= 0 {
		q.Window = 14 * 24 * time.Hour
	}
}

func (q Quota) limit(org string) int {
	if n, ok := q.PerOrg[org]; ok {
		return n
	}
	return q.Composes
}

// of is the store's bound for org's composes at now.
func (q Quota) of(org string, now time.Time) store.Quota {
	return store.Quota{Limit: q.limit(org), Since: now.Add(-q.Window)}
}

// exceeded refuses n composes past the org's quota, saying when a slot
// frees.
func (q Quota) exceeded(org string, qe *store.QuotaError, n int) *apiError {
	limit := q.limit(org)
	asked := ""
	if n > 1 {
		asked = fmt.Sprintf(" and this request asks for %d", n)
	}
	var when string
	if qe.Used >= limit {
		when = fmt.Sprintf("the next one can be submitted after %s", qe.Oldest.Add(q.Window).Format(time.RFC3339))
	} else {
		when = fmt.Sprintf("%d more can be submitted now; ask for fewer image types", limit-qe.Used)
	}
	return newError(http.StatusForbidden, fmt.Sprintf("your organization has used %d of its quota of %d composes in %s%s; %s",
		qe.Used, limit, formatWindow(q.Window), asked, when))
}

func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// RateLimit bounds each org's request rate (per server process).
type RateLimit struct {
	// PerSecond is the sustained rate. Default 50; negative: no limit.
	PerSecond float64
	// Burst is how many requests may come at once. Default 100.
	Burst int
	// MaxOrgs bounds how many orgs' buckets are kept. Default 10000.
	MaxOrgs int
}

func (l *RateLimit) withDefaults() {
	if l.PerSecond == 0 {
		l.PerSecond = 50
	}
	if l.Burst <= 0 {
		l.Burst = 100
	}
	if l.MaxOrgs <= 0 {
		l.MaxOrgs = 10000
	}
}

// limiters holds a token bucket per org, for at most MaxOrgs orgs: the
// least recently used bucket goes first, so an attacker cycling org
// identities cannot grow it without bound. A dropped bucket comes back
// full, which is what a bucket left alone long enough holds anyway.
type limiters struct {
	cfg RateLimit
	mu  sync.Mutex
	m   map[string]*list.Element // of *orgLimiter
	lru list.List                // most recently used first
}

type orgLimiter struct {
	org string
	lim *rate.Limiter
}

// allow reports whether org may make a request now, and if not, how long
// until it may.
func (l *limiters) allow(org string, now time.Time) (bool, time.Duration) {
	if l.cfg.PerSecond < 0 {
		return true, 0
	}
	l.mu.Lock()
	var lim *rate.Limiter
	if e, ok := l.m[org]; ok {
		l.lru.MoveToFront(e)
		lim = e.Value.(*orgLimiter).lim
	} else {
		if l.m == nil {
			l.m = map[string]*list.Element{}
		}
		lim = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.m[org] = l.lru.PushFront(&orgLimiter{org: org, lim: lim})
		for l.lru.Len() > max(l.cfg.MaxOrgs, 1) {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.m, oldest.Value.(*orgLimiter).org)
		}
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *limiters) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func tooManyRequests(wait time.Duration) *apiError {
	secs := int(math.Ceil(wait.Seconds()))
	e := newError(http.StatusTooManyRequests, fmt.Sprintf("too many requests from your organization: retry in %d s", secs))
	e.Header = http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
	return e
}
