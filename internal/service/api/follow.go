package api

import (
	"fmt"
	"net/http"
	"sync"
	"time"
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
