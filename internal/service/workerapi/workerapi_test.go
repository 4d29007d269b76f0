package workerapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// leasedJob starts the worker API over a fresh database holding one
// compose with one job, leased: its URL, the job and its lease token.
func leasedJob(t *testing.T, cfg Config) (string, store.Lease) {
	t.Helper()
	return leasedJobWith(t, &cfg, nil)
}

// leasedJobWith is leasedJob, with setup run on the database before the
// API starts.
func leasedJobWith(t *testing.T, cfg *Config, setup func(db *sqlite.DB)) (string, store.Lease) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: time.Now(), ImageName: "x", ImageType: "qcow2", Request: []byte(`{}`)}
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: "build", Arch: "x86_64"}}))
	l, err := db.Dequeue(ctx, []string{"build"}, []string{"x86_64"}, store.Worker{Name: "test"}, time.Minute)
	require.NoError(t, err)
	cfg.Queue = db
	if cfg.Artifacts == nil {
		cfg.Artifacts = artifacts.Local{Dir: t.TempDir()}
	}
	if setup != nil {
		setup(db)
	}
	srv := httptest.NewServer(Handler(*cfg))
	t.Cleanup(srv.Close)
	return srv.URL, l
}

// An upload whose body stalls is cut off after the body timeout; one
// that keeps sending, however slowly, goes on past it.
func TestUploadBodyDeadline(t *testing.T) {
	base, l := leasedJob(t, Config{BodyTimeout: time.Second})
	u, err := url.Parse(base)
	require.NoError(t, err)
	put := func(conn net.Conn, size int) {
		_, err := fmt.Fprintf(conn, "PUT %s/jobs/%s/files/disk.raw HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
			workerproto.Prefix, l.Job.ID, u.Host, l.Token, size)
		require.NoError(t, err)
	}

	t.Run("stalled", func(t *testing.T) {
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		defer conn.Close()
		put(conn, 100)
		start := time.Now()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = io.ReadAll(conn)
		require.NoError(t, err, "the server still waits for the body after %s", time.Since(start))
		assert.Less(t, time.Since(start), 3*time.Second)
	})

	t.Run("slow but live", func(t *testing.T) {
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		defer conn.Close()
		const n = 8
		put(conn, n)
		for range n {
			time.Sleep(400 * time.Millisecond) // 3.2 s in all, each piece within the timeout
			_, err := conn.Write([]byte("x"))
			require.NoError(t, err)
		}
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	})
}

// Every route of the contract is served, with the method its client
// uses: a leased call with a wrong token is refused as a lost lease, not
// as an unknown operation.
func TestHandlerServesEveryContractRoute(t *testing.T) {
	base, l := leasedJob(t, Config{})
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{http.MethodPost, workerproto.Path(workerproto.RouteJobs), http.StatusUnauthorized, "worker token"},
		{http.MethodPost, workerproto.Path(workerproto.RouteHeartbeat, l.Job.ID), http.StatusNotFound, "is not leased"},
		{http.MethodPost, workerproto.Path(workerproto.RouteProgress, l.Job.ID), http.StatusNotFound, "is not leased"},
		{http.MethodPost, workerproto.Path(workerproto.RouteLog, l.Job.ID), http.StatusNotFound, "is not leased"},
		{http.MethodPut, workerproto.Path(workerproto.RouteFile, l.Job.ID, "disk.raw"), http.StatusNotFound, "is not leased"},
		{http.MethodPost, workerproto.Path(workerproto.RouteUploads, l.Job.ID), http.StatusNotFound, "is not leased"},
		{http.MethodDelete, workerproto.Path(workerproto.RouteUpload, l.Job.ID, "up-1"), http.StatusNotFound, "is not leased"},
		{http.MethodPost, workerproto.Path(workerproto.RouteCompleteUpload, l.Job.ID, "up-1"), http.StatusNotFound, "is not leased"},
		{http.MethodPost, workerproto.Path(workerproto.RouteFinish, l.Job.ID), http.StatusNotFound, "is not leased"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+workerproto.Prefix+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer not-the-lease-token")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tc.status, resp.StatusCode, string(body))
			assert.Contains(t, string(body), tc.says)
		})
	}
}

// A worker that runs several jobs at once takes them with one request,
// each under its own lease; a request without max gets one job in the
// shape every worker read before batches existed, which RequestJobs
// reads as a batch of one.
func TestRequestJobBatch(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var ids []string
	for range 6 {
		c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: time.Now(), ImageName: "x", ImageType: "qcow2", Request: []byte(`{}`)}
		id := store.NewID()
		ids = append(ids, id)
		require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: id, Type: "build", Arch: "x86_64"}}))
	}
	srv := httptest.NewServer(Handler(Config{Queue: db, Artifacts: artifacts.Local{Dir: t.TempDir()}, WorkerKey: "key", PollTimeout: 100 * time.Millisecond}))
	t.Cleanup(srv.Close)
	cl := &workerproto.Client{BaseURL: srv.URL, Key: "key"}
	req := workerproto.JobRequest{Types: []string{"build"}, Arches: []string{"x86_64"}, Worker: "w", Max: 4}

	jobs, err := cl.RequestJobs(ctx, req)
	require.NoError(t, err)
	require.Len(t, jobs, 4)
	tokens := map[string]bool{}
	for i, j := range jobs {
		assert.Equal(t, ids[i], j.ID, "oldest first")
		assert.Equal(t, 120, j.LeaseSeconds)
		tokens[j.Token] = true
		canceled, err := cl.Heartbeat(ctx, &j)
		require.NoError(t, err, "each job's own token holds its lease")
		assert.False(t, canceled)
	}
	assert.Len(t, tokens, 4)

	one, err := cl.RequestJob(ctx, workerproto.JobRequest{Types: []string{"build"}, Arches: []string{"x86_64"}, Worker: "old"})
	require.NoError(t, err)
	require.NotNil(t, one, "a request without max gets one job, as a Job")
	assert.Equal(t, ids[4], one.ID)

	req.Max = 0
	jobs, err = cl.RequestJobs(ctx, req)
	require.NoError(t, err)
	require.Len(t, jobs, 1, "a single Job answer reads as a batch of one")
	assert.Equal(t, ids[5], jobs[0].ID)

	req.Max = 4
	jobs, err = cl.RequestJobs(ctx, req)
	require.NoError(t, err)
	assert.Empty(t, jobs, "none ready within the poll timeout")

	req.Max = -1
	_, err = cl.RequestJobs(ctx, req)
	assert.ErrorContains(t, err, "400")
}
