package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// countingStore counts the queries that look at a compose's jobs.
type countingStore struct {
	store.Backend
	jobReads atomic.Int64
}

func (c *countingStore) ComposeJobs(ctx context.Context, org, id string) ([]store.Job, error) {
	c.jobReads.Add(1)
	return c.Backend.ComposeJobs(ctx, org, id)
}

// countingArtifacts counts the opens of files.
type countingArtifacts struct {
	artifacts.Store
	opens atomic.Int64
}

func (c *countingArtifacts) Open(ctx context.Context, id, name string) (artifacts.File, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, id, name)
}

// However many clients follow one compose's log, the database and the
// artifact store are looked at as often as for one.
func TestFollowersShareOneWatcher(t *testing.T) {
	var st *countingStore
	arts := &countingArtifacts{Store: artifacts.Local{Dir: t.TempDir()}}
	ts := newTestServer(t, func(c *Config) {
		st = &countingStore{Backend: c.Store}
		c.Store = st
		c.Artifacts = arts
		c.LogStreams = LogStreams{PerOrg: 20, Check: 200 * time.Millisecond}
	})
	reads := func(streams int) int64 {
		id := composeOfType(t, ts, "qcow2")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for range streams {
			followLog(t, ctx, ts, "acme", id)
		}
		time.Sleep(200 * time.Millisecond) // the streams have started
		before := st.jobReads.Load() + arts.opens.Load()
		time.Sleep(1500 * time.Millisecond)
		return st.jobReads.Load() + arts.opens.Load() - before
	}
	one, many := reads(1), reads(12)
	t.Logf("reads in 1.5 s: %d with one stream, %d with 12", one, many)
	assert.LessOrEqual(t, many, one+4, "12 streams of one compose read the stores more often than one does")
}

// A log piece a worker sends on this replica reaches every stream at
// once, long before any periodic check.
func TestLogPieceReachesEveryStreamAtOnce(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	var api *Server
	ts := newTestServer(t, func(c *Config) {
		c.Artifacts = arts
		c.LogStreams = LogStreams{Check: time.Minute}
	})
	api = ts.server
	workers := httptest.NewServer(workerapi.Handler(workerapi.Config{Queue: ts.db, Artifacts: arts, Changed: api.LogChanged}))
	t.Cleanup(workers.Close)

	id := composeOfType(t, ts, "qcow2")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := ts.db.Dequeue(ctx, []string{workerproto.KindDepsolve}, []string{"x86_64"}, store.Worker{Name: "test"}, time.Minute)
	require.NoError(t, err)
	var streams []<-chan string
	for range 5 {
		streams = append(streams, followLog(t, ctx, ts, "acme", id))
	}
	time.Sleep(300 * time.Millisecond)
	for i := range 3 {
		line := fmt.Sprintf("line %d", i)
		req, err := http.NewRequest(http.MethodPost, workers.URL+workerproto.Prefix+"/jobs/"+l.Job.ID+"/log", strings.NewReader(line+"\n"))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+l.Token)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for n, s := range streams {
			select {
			case got := <-s:
				assert.Equal(t, line, got)
			case <-time.After(150 * time.Millisecond):
				t.Fatalf("stream %d did not get %q within 150 ms", n, line)
			}
		}
		t.Logf("%q reached 5 streams in %s", line, time.Since(start))
		time.Sleep(170 * time.Millisecond)
	}
}
