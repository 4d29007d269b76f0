package status

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
)

// hangingStore is a database that stops answering the uptime query: it
// returns only when the caller gives up.
type hangingStore struct {
	Store
	calls atomic.Int32
}

func (h *hangingStore) UptimeDays(ctx context.Context, _ time.Time) ([]store.UptimeDay, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// With a database that hangs, the public pages still answer, within the
// check timeout, with the current states: one build of the report serves
// every visitor waiting for it and is logged once; a visitor who leaves
// neither waits for it nor spoils it for the others.
func TestReportWithAHangingDatabase(t *testing.T) {
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logged.Write(b)
	}), nil))
	db := &hangingStore{Store: openStore(t, time.Now)}
	p := New(Config{Store: db, Artifacts: artifacts.Local{Dir: t.TempDir()}, Arches: []string{"x86_64"},
		Ready: func(context.Context) error { return nil }, Interval: time.Minute, Timeout: 300 * time.Millisecond, Log: log})
	p.Check(context.Background())
	h := p.Handler()

	// A visitor who leaves after 50 ms is not kept until the build ends.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/status.json", nil))
	assert.Less(t, time.Since(start), 250*time.Millisecond, "the visitor who left waited for the build")

	// Five visitors at once share the build that is under way.
	var wg sync.WaitGroup
	bodies := make([]string, 5)
	for i := range bodies {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status.json", nil))
			assert.Equal(t, http.StatusOK, rec.Code)
			bodies[i] = rec.Body.String()
		})
	}
	wg.Wait()
	assert.Less(t, time.Since(start), 2*time.Second, "the build was not bounded by the check timeout")
	assert.EqualValues(t, 1, db.calls.Load(), "one build for every visitor")
	for _, b := range bodies {
		assert.True(t, strings.Contains(b, `"name": "database"`), "the current states are shown without the history")
	}
	logMu.Lock()
	assert.Equal(t, 1, strings.Count(logged.String(), "status: building the report"), logged.String())
	logMu.Unlock()

	// Within the cache's lifetime nobody asks the database again.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	require.EqualValues(t, 1, db.calls.Load())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
