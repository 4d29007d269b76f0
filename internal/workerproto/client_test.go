package workerproto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// leasedJob serves the worker API over arts on loopback and leases a
// build job through it with c.
func leasedJob(t *testing.T, arts artifacts.Store, mod func(*workerapi.Config)) (*workerproto.Client, *workerproto.Job) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	cfg := workerapi.Config{Queue: db, Artifacts: arts, WorkerKey: "kwk_test"}
	if mod != nil {
		mod(&cfg)
	}
	srv := httptest.NewServer(workerapi.Handler(cfg))
	t.Cleanup(srv.Close)
	c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: time.Now(), Request: json.RawMessage(`{}`)}
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: workerproto.KindBuild, Arch: "x86_64", Args: json.RawMessage(`{}`)}}))
	client := &workerproto.Client{BaseURL: srv.URL, Key: "kwk_test", MinBackoff: 10 * time.Millisecond}
	j, err := client.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindBuild}, Arches: []string{"x86_64"}, Worker: "test"})
	require.NoError(t, err)
	require.NotNil(t, j)
	return client, j
}

func randomFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	p := filepath.Join(t.TempDir(), "image.raw")
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p, data
}

func stored(t *testing.T, arts artifacts.Store, composeID, name string) []byte {
	t.Helper()
	f, err := arts.Open(context.Background(), composeID, name)
	require.NoError(t, err)
	defer f.Close()
	data, err := io.ReadAll(f)
	require.NoError(t, err)
	return data
}

// countingTransport counts requests by method and whether they went to
// the bucket's presigned URLs.
type countingTransport struct {
	mu     sync.Mutex
	counts map[string]int
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.mu.Lock()
	key := r.Method + " api"
	if r.URL.Query().Has("X-Amz-Signature") {
		key = r.Method + " bucket"
	}
	ct.counts[key]++
	ct.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// With an S3 store, the worker uploads the image straight to the bucket
// in presigned parts, and the server completes it.
func TestPutFilePresigned(t *testing.T) {
	spec, _ := testhost.StartS3(t)
	u, err := url.Parse(spec)
	require.NoError(t, err)
	cfg, err := artifacts.ParseS3(u)
	require.NoError(t, err)
	cfg.PartSize = 5 << 20
	arts, err := artifacts.NewS3(cfg)
	require.NoError(t, err)
	client, j := leasedJob(t, arts, nil)
	ct := &countingTransport{counts: map[string]int{}}
	client.HTTP = &http.Client{Transport: ct}

	path, data := randomFile(t, 11<<20+7)
	require.NoError(t, client.PutFile(context.Background(), j, "image.raw", path))
	assert.True(t, bytes.Equal(data, stored(t, arts, j.ComposeID, "image.raw")))
	assert.Equal(t, 3, ct.counts["PUT bucket"], "three parts went to the bucket")
	assert.Zero(t, ct.counts["PUT api"], "none through the server")

	// Small files take the same way, in one part.
	small, _ := randomFile(t, 10)
	require.NoError(t, client.PutFile(context.Background(), j, workerproto.Manifest, small))
	assert.Len(t, stored(t, arts, j.ComposeID, workerproto.Manifest), 10)
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	require.NoError(t, client.PutFile(context.Background(), j, workerproto.SBOM, empty))
	assert.Empty(t, stored(t, arts, j.ComposeID, workerproto.SBOM))

	// Bounds and names are the server's to check.
	_, jbig := leasedJob(t, arts, func(c *workerapi.Config) { c.MaxFileBytes = 1 << 20 })
	assert.ErrorIs(t, client.PutFile(context.Background(), jbig, "image.raw", path), workerproto.ErrLeaseLost,
		"another server's job is not leased here")
	bounded, jb := leasedJob(t, arts, func(c *workerapi.Config) { c.MaxFileBytes = 1 << 20 })
	assert.ErrorContains(t, bounded.PutFile(context.Background(), jb, "image.raw", path), "413")
	assert.ErrorContains(t, client.PutFile(context.Background(), j, "../escape", small), "400")
}

// lostAnswer passes requests on, but drops the answer to the first whose
// path ends in suffix and fails it as a broken connection does: the
// server did the work, its answer never came (the replica stopped).
type lostAnswer struct {
	suffix string
	lost   atomic.Int64
}

func (la *lostAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, la.suffix) && la.lost.Add(1) == 1 {
		resp.Body.Close()
		return nil, io.ErrUnexpectedEOF
	}
	return resp, err
}

// A worker whose completion of an upload lost its answer tries again, and
// the server that gets the retry finds the file complete: the upload is
// gone from the store, the file it made is there.
func TestPutFileCompletionAnswerLost(t *testing.T) {
	spec, _ := testhost.StartS3(t)
	u, err := url.Parse(spec)
	require.NoError(t, err)
	cfg, err := artifacts.ParseS3(u)
	require.NoError(t, err)
	arts, err := artifacts.NewS3(cfg)
	require.NoError(t, err)
	client, j := leasedJob(t, arts, nil)
	la := &lostAnswer{suffix: "/complete"}
	client.HTTP = &http.Client{Transport: la}

	path, data := randomFile(t, 2<<20+12345)
	require.NoError(t, client.PutFile(context.Background(), j, "image.raw", path))
	assert.Equal(t, int64(2), la.lost.Load(), "the completion was sent twice")
	assert.True(t, bytes.Equal(data, stored(t, arts, j.ComposeID, "image.raw")))
}

// With a local store, the server offers no presigned upload and the file
// goes through it.
func TestPutFileThroughServer(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	client, j := leasedJob(t, arts, nil)
	ct := &countingTransport{counts: map[string]int{}}
	client.HTTP = &http.Client{Transport: ct}
	path, data := randomFile(t, 1<<20+3)
	require.NoError(t, client.PutFile(context.Background(), j, "image.raw", path))
	assert.True(t, bytes.Equal(data, stored(t, arts, j.ComposeID, "image.raw")))
	assert.Equal(t, 1, ct.counts["PUT api"])
	assert.Zero(t, ct.counts["PUT bucket"])
}

// flaky answers 503 to the first fails requests of each path, then
// records the body and answers as ok does.
type flaky struct {
	fails  int
	mu     sync.Mutex
	tries  map[string]int
	bodies map[string][]byte
	ok     func(w http.ResponseWriter, r *http.Request)
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	key := r.Method + " " + r.URL.Path
	f.tries[key]++
	n := f.tries[key]
	f.mu.Unlock()
	if n <= f.fails {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	f.mu.Lock()
	f.bodies[key] = body
	f.mu.Unlock()
	f.ok(w, r)
}

func TestClientRetries(t *testing.T) {
	f := &flaky{fails: 2, tries: map[string]int{}, bodies: map[string][]byte{}, ok: func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case workerproto.Prefix + "/jobs/j1/uploads":
			_ = json.NewEncoder(w).Encode(workerproto.UploadOffer{})
		case workerproto.Prefix + "/jobs/j1/files/image.raw":
			_, _ = w.Write([]byte(`{"size": 1}`))
		case workerproto.Prefix + "/jobs/j1/progress":
			http.Error(w, `{"errors": []}`, http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &workerproto.Client{BaseURL: srv.URL, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	j := &workerproto.Job{ID: "j1", Token: "t"}
	ctx := context.Background()

	require.NoError(t, c.Log(ctx, j, []byte("a line\n")))
	assert.Equal(t, 3, f.tries["POST "+workerproto.Prefix+"/jobs/j1/log"])
	assert.Equal(t, "a line\n", string(f.bodies["POST "+workerproto.Prefix+"/jobs/j1/log"]), "the body is sent whole on the last try")

	path, data := randomFile(t, 256<<10)
	require.NoError(t, c.PutFile(ctx, j, "image.raw", path))
	assert.Equal(t, 3, f.tries["PUT "+workerproto.Prefix+"/jobs/j1/files/image.raw"])
	assert.True(t, bytes.Equal(data, f.bodies["PUT "+workerproto.Prefix+"/jobs/j1/files/image.raw"]), "the file is read again for each try")

	// A 4xx is final.
	f.fails = 0
	assert.ErrorContains(t, c.Progress(ctx, j, 1, 2), "400")
	assert.Equal(t, 1, f.tries["POST "+workerproto.Prefix+"/jobs/j1/progress"])

	// Retries end with the context.
	f.fails = 1 << 30
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	assert.Error(t, c.Finish(tctx, j, map[string]string{}, nil))
	assert.Less(t, time.Since(start), 2*time.Second)
}

// A worker that loses the server keeps trying until it is back.
func TestClientWaitsForServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	var finished atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == workerproto.Prefix+"/jobs/j1/finish" {
			finished.Store(true)
		}
		w.WriteHeader(http.StatusOK)
	})}
	defer srv.Close()
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listening again: %v", err)
			return
		}
		_ = srv.Serve(ln)
	}()
	c := &workerproto.Client{BaseURL: "http://" + addr, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Finish(ctx, &workerproto.Job{ID: "j1", Token: "t"}, map[string]string{"filename": "x"}, nil))
	assert.True(t, finished.Load())
}

// A client given several replicas goes to the next when one does not
// answer, without waiting, and stays there.
func TestClientFailsOverToAnotherReplica(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := down.Addr().String()
	down.Close()
	var asked atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer up.Close()

	c := &workerproto.Client{BaseURL: "http://" + deadAddr, Fallbacks: []string{up.URL}, MinBackoff: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, c.Finish(ctx, &workerproto.Job{ID: "j1", Token: "t"}, map[string]string{}, nil))
	assert.Less(t, time.Since(start), 5*time.Second, "the other replica is asked at once, not after a backoff")
	require.NoError(t, c.Progress(ctx, &workerproto.Job{ID: "j1", Token: "t"}, 1, 2))
	assert.Equal(t, int64(2), asked.Load())
	assert.Equal(t, up.URL, c.Server(), "it stays with the replica that answers")
}
