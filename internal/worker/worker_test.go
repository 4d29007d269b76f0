package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// gatedResolver stands in for package resolution, which these tests only
// need to take a while: it blocks until released or its context ends.
type gatedResolver struct {
	called  chan struct{}
	release chan struct{}
}

func (g *gatedResolver) Resolve(ctx context.Context, _ depsolve.Request) (*depsolve.Result, error) {
	close(g.called)
	select {
	case <-g.release:
		return nil, errors.New("released")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// queueWithJob is a store and worker API with one depsolve job queued.
func queueWithJob(t *testing.T, lease time.Duration) (*sqlite.DB, string, string, string) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	secret, hash := store.NewSecret("kwt_")
	require.NoError(t, db.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "test", Hash: hash, CreatedAt: time.Now()}))
	args, _ := json.Marshal(workerproto.DepsolveArgs{Distro: "debian-12", Arch: "x86_64", ImageType: "tar", Blueprint: json.RawMessage(`{"name":"t"}`)})
	c := store.Compose{ID: store.NewID(), OrgID: "a", CreatedAt: time.Now(), ImageName: "t", Request: json.RawMessage(`{}`)}
	job := store.Job{ID: store.NewID(), ComposeID: c.ID, OrgID: "a", Type: workerproto.KindDepsolve, Args: args}
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{job}))
	srv := httptest.NewServer(workerapi.Handler(workerapi.Config{Queue: db, Tokens: db, Artifacts: artifacts.Local{Dir: t.TempDir()}, Lease: lease, PollTimeout: time.Second}))
	t.Cleanup(srv.Close)
	return db, srv.URL, secret, c.ID
}

func startWorker(t *testing.T, url, secret string, grace time.Duration, r depsolve.Resolver, h *worker.Health) (context.CancelFunc, <-chan struct{}) {
	reg, err := distro.Load()
	require.NoError(t, err)
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: url, Key: secret}, Name: "w", Grace: grace,
		CacheDir: t.TempDir(), Resolver: r, Distros: reg, Health: h,
		// Never reached: the resolver stands in for the repositories.
		Mirrors: map[string]string{"debian": "http://mirror.invalid/debian", "debian-security": "http://mirror.invalid/debian-security"}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel, done
}

func jobState(t *testing.T, db *sqlite.DB, composeID string) store.Job {
	js, err := db.ComposeJobs(context.Background(), "a", composeID)
	require.NoError(t, err)
	require.Len(t, js, 1)
	return js[0]
}

// On shutdown a worker takes no more jobs but lets the running one end
// within the grace period instead of handing it back.
func TestShutdownLetsTheRunningJobFinishWithinGrace(t *testing.T) {
	db, url, secret, id := queueWithJob(t, time.Minute)
	r := &gatedResolver{called: make(chan struct{}), release: make(chan struct{})}
	health := worker.NewHealth()
	hs := httptest.NewServer(health.Handler())
	defer hs.Close()
	assert.Equal(t, http.StatusServiceUnavailable, get(t, hs.URL+"/readyz").StatusCode, "not ready before the server answered")
	stop, done := startWorker(t, url, secret, time.Minute, r, health)
	<-r.called
	stop()
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, store.JobRunning, jobState(t, db, id).State, "the job goes on after the worker was told to stop")
	close(r.release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop after its job ended")
	}
	j := jobState(t, db, id)
	assert.Equal(t, store.JobFailure, j.State, "the job ran to its own end")
	require.NotNil(t, j.Error)
	assert.Contains(t, j.Error.Details, "released")
	assert.Equal(t, 1, j.Attempts)

	assert.Equal(t, http.StatusOK, get(t, hs.URL+"/livez").StatusCode)
	assert.Equal(t, http.StatusOK, get(t, hs.URL+"/readyz").StatusCode, "ready once the server answered")
	body, _ := io.ReadAll(get(t, hs.URL+"/metrics").Body)
	assert.Contains(t, string(body), `kiln_worker_jobs_total{outcome="failure",type="depsolve"} 1`)
	assert.Contains(t, string(body), `kiln_worker_busy 0`)
}

func get(t *testing.T, url string) *http.Response {
	resp, err := http.Get(url)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// A job still running when the grace period ends goes back to the queue.
func TestShutdownHandsTheJobBackAfterGrace(t *testing.T) {
	db, url, secret, id := queueWithJob(t, time.Minute)
	r := &gatedResolver{called: make(chan struct{}), release: make(chan struct{})}
	stop, done := startWorker(t, url, secret, 200*time.Millisecond, r, nil)
	<-r.called
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not hand its job back after the grace period")
	}
	j := jobState(t, db, id)
	assert.Equal(t, store.JobPending, j.State, "the job is back in the queue for another worker")
	assert.Equal(t, 1, j.Attempts)
}

// A worker gets only jobs of the architectures it declared, and only with
// a worker token that is not revoked.
func TestJobsAreRoutedByArchAndNeedAWorkerToken(t *testing.T) {
	ctx := context.Background()
	db, url, secret, _ := queueWithJob(t, time.Minute)
	c := store.Compose{ID: store.NewID(), OrgID: "a", CreatedAt: time.Now(), ImageName: "t", Request: json.RawMessage(`{}`)}
	build := store.Job{ID: store.NewID(), ComposeID: c.ID, OrgID: "a", Type: workerproto.KindBuild, Arch: "x86_64", Args: json.RawMessage(`{}`)}
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{build}))

	arm := &workerproto.Client{BaseURL: url, Key: secret}
	j, err := arm.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindBuild}, Arches: []string{"aarch64"}, Worker: "arm"})
	require.NoError(t, err)
	assert.Nil(t, j, "an aarch64 worker is not handed an x86_64 build")

	_, err = (&workerproto.Client{BaseURL: url, Key: "kwt_not-a-token"}).RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindBuild}, Arches: []string{"x86_64"}})
	assert.ErrorContains(t, err, "401")

	x86 := &workerproto.Client{BaseURL: url, Key: secret}
	j, err = x86.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindBuild}, Arches: []string{"aarch64", "x86_64"}, Worker: "x86"})
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, build.ID, j.ID)

	tokens, err := db.ListWorkerTokens(ctx)
	require.NoError(t, err)
	require.NoError(t, db.RevokeWorkerToken(ctx, tokens[0].ID))
	_, err = x86.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindDepsolve}, Arches: []string{"x86_64"}})
	assert.ErrorContains(t, err, "401", "a revoked worker token gets no more jobs")
}

// A worker busy with a long job stays ready: its heartbeats count as the
// server answering, not only its requests for jobs.
func TestHeartbeatsKeepTheWorkerReady(t *testing.T) {
	_, url, secret, _ := queueWithJob(t, time.Second) // a heartbeat every 250 ms
	r := &gatedResolver{called: make(chan struct{}), release: make(chan struct{})}
	health := worker.NewHealth()
	health.ReadyWithin = 800 * time.Millisecond
	hs := httptest.NewServer(health.Handler())
	defer hs.Close()
	startWorker(t, url, secret, 0, r, health)
	<-r.called
	time.Sleep(2 * time.Second)
	assert.Equal(t, http.StatusOK, get(t, hs.URL+"/readyz").StatusCode, "ready while it builds, long after it asked for the job")
	close(r.release)
}

// Revoking a worker token ends the leases its workers hold: the job is
// back in the queue at once, and the worker's calls under the old lease
// answer 401; the worker drops the job rather than finishing it.
func TestRevokingTheWorkerTokenEndsItsLeases(t *testing.T) {
	ctx := context.Background()
	db, url, secret, id := queueWithJob(t, time.Minute)
	c := &workerproto.Client{BaseURL: url, Key: secret}
	j, err := c.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindDepsolve}, Worker: "rack-1"})
	require.NoError(t, err)
	require.NotNil(t, j)
	_, err = c.Heartbeat(ctx, j)
	require.NoError(t, err)

	tokens, err := db.ListWorkerTokens(ctx)
	require.NoError(t, err)
	require.NoError(t, db.RevokeWorkerToken(ctx, tokens[0].ID))
	assert.Equal(t, store.JobPending, jobState(t, db, id).State, "requeued at once")

	for _, call := range []struct{ path, body string }{
		{"/heartbeat", ""},
		{"/progress", `{"done":1,"total":2}`},
		{"/log", "building\n"},
		{"/finish", `{"result":{}}`},
	} {
		req, err := http.NewRequest("POST", url+workerproto.Prefix+"/jobs/"+j.ID+call.path, strings.NewReader(call.body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+j.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s: %s", call.path, body)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer", call.path)
		assert.Contains(t, string(body), "revoked", call.path)
	}
	_, err = c.Heartbeat(ctx, j)
	assert.ErrorContains(t, err, "revoked")

	// Another worker takes the job without waiting for the lease.
	other, hash := store.NewSecret("kwt_")
	require.NoError(t, db.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "rack-2", Hash: hash, CreatedAt: time.Now()}))
	j2, err := (&workerproto.Client{BaseURL: url, Key: other}).RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindDepsolve}, Worker: "rack-2"})
	require.NoError(t, err)
	require.NotNil(t, j2)
	assert.Equal(t, j.ID, j2.ID)
}

// A worker whose token is revoked while it builds stops the job and does
// not finish it: the job is another worker's now.
func TestAWorkerWhoseTokenIsRevokedDropsItsJob(t *testing.T) {
	ctx := context.Background()
	db, url, secret, id := queueWithJob(t, time.Second) // a heartbeat every 250 ms
	r := &gatedResolver{called: make(chan struct{}), release: make(chan struct{})}
	startWorker(t, url, secret, 0, r, nil)
	<-r.called
	tokens, err := db.ListWorkerTokens(ctx)
	require.NoError(t, err)
	require.NoError(t, db.RevokeWorkerToken(ctx, tokens[0].ID))
	time.Sleep(time.Second) // heartbeats hear of it; the resolver's context ends
	j := jobState(t, db, id)
	assert.Equal(t, store.JobPending, j.State, "the worker did not finish the job it no longer holds")
}

// The worker API answers a wrong method with 405, Allow and its error
// shape, and a 401 with WWW-Authenticate.
func TestWorkerAPIMethodsAndAuthentication(t *testing.T) {
	_, url, _, _ := queueWithJob(t, time.Minute)
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/jobs", "POST"},
		{"PUT", "/jobs/x/heartbeat", "POST"},
		{"POST", "/jobs/x/files/disk.qcow2", "GET, PUT"},
		{"GET", "/jobs/x/uploads/u", "DELETE"},
	} {
		req, err := http.NewRequest(tc.method, url+workerproto.Prefix+tc.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body struct {
			Errors []struct{ Title, Detail string } `json:"errors"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), "%s %s", tc.method, tc.path)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", tc.method, tc.path)
		assert.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
		require.NotEmpty(t, body.Errors)
	}
	resp, err := http.Post(url+workerproto.Prefix+"/jobs", "application/json", strings.NewReader(`{"types":["depsolve"]}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer realm="kiln-worker"`, resp.Header.Get("WWW-Authenticate"))
}

// buildQueue is a store and worker API holding a compose whose depsolve
// job is done (its manifest is m) and whose build job waits.
type buildQueue struct {
	db        *sqlite.DB
	url, key  string
	composeID string
	files     artifacts.Local
}

func queueWithBuild(t *testing.T, m *manifest.Manifest, lease time.Duration) *buildQueue {
	ctx := context.Background()
	q := &buildQueue{files: artifacts.Local{Dir: t.TempDir()}}
	var err error
	q.db, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { q.db.Close() })
	var hash string
	q.key, hash = store.NewSecret("kwt_")
	require.NoError(t, q.db.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "test", Hash: hash, CreatedAt: time.Now()}))
	c := store.Compose{ID: store.NewID(), OrgID: "a", CreatedAt: time.Now(), ImageName: "t", Request: json.RawMessage(`{}`)}
	dep := store.Job{ID: store.NewID(), ComposeID: c.ID, OrgID: "a", Type: workerproto.KindDepsolve, Args: json.RawMessage(`{}`)}
	build := store.Job{ID: store.NewID(), ComposeID: c.ID, OrgID: "a", Type: workerproto.KindBuild, Arch: "x86_64", Args: json.RawMessage(`{}`), Deps: []string{dep.ID}}
	require.NoError(t, q.db.CreateCompose(ctx, c, []store.Job{dep, build}))
	q.composeID = c.ID
	srv := httptest.NewServer(workerapi.Handler(workerapi.Config{Queue: q.db, Tokens: q.db, Artifacts: q.files, Lease: lease, PollTimeout: time.Second}))
	t.Cleanup(srv.Close)
	q.url = srv.URL

	client := &workerproto.Client{BaseURL: q.url, Key: q.key}
	j, err := client.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindDepsolve}, Worker: "depsolver"})
	require.NoError(t, err)
	require.NotNil(t, j)
	data, err := m.Marshal()
	require.NoError(t, err)
	require.NoError(t, client.Finish(ctx, j, workerproto.DepsolveResult{Manifest: data}, nil))
	return q
}

// buildJob is the compose's build job as the store has it.
func (q *buildQueue) buildJob(t *testing.T) store.Job {
	js, err := q.db.ComposeJobs(context.Background(), "a", q.composeID)
	require.NoError(t, err)
	for _, j := range js {
		if j.Type == workerproto.KindBuild {
			return j
		}
	}
	t.Fatal("no build job")
	return store.Job{}
}

// waitBuild waits until the build job is no longer pending or running.
func (q *buildQueue) waitBuild(t *testing.T) store.Job {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if j := q.buildJob(t); j.State != store.JobPending && j.State != store.JobRunning {
			return j
		}
	}
	t.Fatal("the build job did not end")
	return store.Job{}
}

func (q *buildQueue) file(t *testing.T, name string) []byte {
	f, err := q.files.Open(context.Background(), q.composeID, name)
	require.NoError(t, err, name)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

func startBuilder(t *testing.T, q *buildQueue, b worker.Builder) {
	reg, err := distro.Load()
	require.NoError(t, err)
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: q.url, Key: q.key}, Name: "builder",
		Types: []string{workerproto.KindBuild}, CacheDir: t.TempDir(), Resolver: &gatedResolver{}, Distros: reg, Builder: b})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A build job hands the manifest to the builder and puts what it built
// into the compose's files: the artifact (whose size and SHA-256 are the
// job's result), the manifest, the SBOM; its stages are the job's
// progress and the build log says what was built.
func TestBuildJobUploadsWhatTheBuilderBuilt(t *testing.T) {
	m := composetest.TarManifest()
	q := queueWithBuild(t, m, time.Minute)
	startBuilder(t, q, &composetest.Builder{Size: 64 << 10})
	j := q.waitBuild(t)
	require.Equal(t, store.JobSuccess, j.State, "%+v", j.Error)

	want, err := composetest.Artifact(m, 64<<10)
	require.NoError(t, err)
	assert.Equal(t, want, q.file(t, "t.tar.xz"))
	sum := sha256.Sum256(want)
	var res workerproto.BuildResult
	require.NoError(t, json.Unmarshal(j.Result, &res))
	assert.Equal(t, workerproto.BuildResult{Filename: "t.tar.xz", Size: 64 << 10, SHA256: hex.EncodeToString(sum[:])}, res)
	data, err := m.Marshal()
	require.NoError(t, err)
	assert.JSONEq(t, string(data), string(q.file(t, workerproto.Manifest)), "the manifest the depsolve job wrote")
	assert.Contains(t, string(q.file(t, workerproto.SBOM)), `"spdxVersion": "SPDX-2.3"`)
	assert.Equal(t, store.Progress{Done: 2, Total: 2}, j.Progress)
	log := string(q.file(t, workerproto.BuildLog))
	assert.Contains(t, log, "== [2/2] archive: kiln.tar done in")
	assert.Contains(t, log, "built t.tar.xz (65536 bytes, sha256 "+res.SHA256+")")
}

// A build that fails in a stage fails its job with the stage and the
// tool's last line, and uploads no image.
func TestFailedBuildJobNamesTheStage(t *testing.T) {
	m := composetest.TarManifest()
	q := queueWithBuild(t, m, time.Minute)
	startBuilder(t, q, &composetest.Builder{FailAt: "kiln.tar", FailMessage: "tar: exit status 2: writing\ntar: No space left on device"})
	j := q.waitBuild(t)
	require.Equal(t, store.JobFailure, j.State)
	require.NotNil(t, j.Error)
	assert.Equal(t, "stage kiln.tar of pipeline archive: tar: No space left on device", j.Error.Reason)
	assert.Contains(t, string(q.file(t, workerproto.BuildLog)), "build failed: archive: stage kiln.tar: tar: exit status 2")
	_, err := q.files.Open(context.Background(), q.composeID, "t.tar.xz")
	assert.ErrorIs(t, err, artifacts.ErrNotFound, "no image")
}

// A build that fails on what the blueprint asks for (the check after
// package installation) fails its job with each problem and its
// blueprint field, which the service keeps with the failure.
func TestFailedBuildJobCarriesBlueprintProblems(t *testing.T) {
	m := composetest.TarManifest()
	q := queueWithBuild(t, m, time.Minute)
	problems := blueprint.Errors{
		{Path: "customizations.services.enabled[0]", Message: "no installed unit is called cockpit.socket"},
		{Path: "customizations.user[0].groups[0]", Message: `the image has no group "wheel"; Debian's is "sudo"`},
	}
	startBuilder(t, q, &composetest.Builder{FailAt: "kiln.hostname", FailProblems: problems})
	j := q.waitBuild(t)
	require.Equal(t, store.JobFailure, j.State)
	require.NotNil(t, j.Error)
	assert.Equal(t, "stage kiln.hostname of pipeline os: the image does not have what the blueprint asks for (2 problems, each under its field)", j.Error.Reason)
	details, got := workerproto.DecodeDetails(j.Error.Details)
	assert.Equal(t, []workerproto.Problem{
		{Field: "customizations.services.enabled[0]", Message: "no installed unit is called cockpit.socket"},
		{Field: "customizations.user[0].groups[0]", Message: `the image has no group "wheel"; Debian's is "sudo"`},
	}, got)
	assert.Contains(t, details, "os: stage kiln.hostname: customizations.services.enabled[0]: no installed unit")
}

// Canceling the compose stops a running build at the next heartbeat.
func TestCancelingTheComposeStopsTheBuild(t *testing.T) {
	m := composetest.TarManifest()
	q := queueWithBuild(t, m, time.Second) // a heartbeat every 250 ms
	fake := &composetest.Builder{}
	fake.Block()
	defer fake.Release()
	started := fake.Started()
	startBuilder(t, q, fake)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the build did not start")
	}
	require.NoError(t, q.db.CancelCompose(context.Background(), "a", q.composeID))
	j := q.waitBuild(t)
	assert.Equal(t, store.JobCanceled, j.State)
	assert.Equal(t, 1, fake.Builds())
	_, err := q.files.Open(context.Background(), q.composeID, "t.tar.xz")
	assert.ErrorIs(t, err, artifacts.ErrNotFound, "no image")
}

// barrierResolver blocks every call until n calls are in at once.
type barrierResolver struct {
	mu  sync.Mutex
	n   int
	all chan struct{}
}

func (b *barrierResolver) Resolve(ctx context.Context, _ depsolve.Request) (*depsolve.Result, error) {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil, errors.New("released")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A worker that runs several jobs at once takes them together and runs
// them side by side.
func TestAWorkerRunsJobsAtOnce(t *testing.T) {
	db, url, secret, first := queueWithJob(t, time.Minute)
	ctx := context.Background()
	ids := []string{first}
	for range 2 {
		args, _ := json.Marshal(workerproto.DepsolveArgs{Distro: "debian-12", Arch: "x86_64", ImageType: "tar", Blueprint: json.RawMessage(`{"name":"t"}`)})
		c := store.Compose{ID: store.NewID(), OrgID: "a", CreatedAt: time.Now(), ImageName: "t", Request: json.RawMessage(`{}`)}
		require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: workerproto.KindDepsolve, Args: args}}))
		ids = append(ids, c.ID)
	}
	r := &barrierResolver{n: 3, all: make(chan struct{})}
	reg, err := distro.Load()
	require.NoError(t, err)
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: url, Key: secret}, Name: "w", Jobs: 3,
		CacheDir: t.TempDir(), Resolver: r, Distros: reg,
		Mirrors: map[string]string{"debian": "http://mirror.invalid/debian", "debian-security": "http://mirror.invalid/debian-security"}})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-r.all:
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not run its three jobs at once")
	}
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if jobState(t, db, id).State != store.JobFailure {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "every job ran to its end")
	for _, id := range ids {
		j := jobState(t, db, id)
		assert.Equal(t, "w", j.Worker)
		assert.Equal(t, 1, j.Attempts, "each job was handed out once")
	}
}
