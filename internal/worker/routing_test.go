package worker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/api"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// routedService is the API and the worker API over one database, as kiln
// serve mounts them, with an API token of org acme and a worker token.
type routedService struct {
	db                 *sqlite.DB
	url, token, wtoken string
}

func startRoutedService(t *testing.T) *routedService {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	reg, err := distro.Load()
	require.NoError(t, err)
	files := artifacts.Local{Dir: t.TempDir()}
	apiServer, err := api.New(api.Config{Store: db, Distros: reg, Artifacts: files})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", apiServer.Handler())
	mux.Handle(workerproto.Prefix+"/", workerapi.Handler(workerapi.Config{Queue: db, Tokens: db, Workers: db, Artifacts: files, PollTimeout: 200 * time.Millisecond}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	s := &routedService{db: db, url: srv.URL}
	var hash string
	s.token, hash = store.NewSecret("kiln_")
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: "acme", Name: "test", Hash: hash, CreatedAt: time.Now()}))
	s.wtoken, hash = store.NewSecret("kwt_")
	require.NoError(t, db.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "test", Hash: hash, CreatedAt: time.Now()}))
	return s
}

func (s *routedService) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	return testhost.APICall(t, method, s.url+api.Prefix+path, s.token, body)
}

// imageStatus is the part of a compose's status this test reads.
type imageStatus struct {
	Status  string `json:"status"`
	Waiting *struct {
		Architecture string `json:"architecture"`
		Reason       string `json:"reason"`
	} `json:"waiting"`
}

func (s *routedService) status(t *testing.T, id string) imageStatus {
	t.Helper()
	code, body := s.call(t, "GET", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var st struct {
		ImageStatus imageStatus `json:"image_status"`
	}
	require.NoError(t, json.Unmarshal(body, &st), string(body))
	return st.ImageStatus
}

func (s *routedService) build(t *testing.T, id string) store.Job {
	t.Helper()
	js, err := s.db.ComposeJobs(context.Background(), "acme", id)
	require.NoError(t, err)
	for _, j := range js {
		if j.Type == workerproto.KindBuild {
			return j
		}
	}
	t.Fatal("the compose has no build job")
	return store.Job{}
}

// runWorker runs a real worker that builds arches with the fake builder.
func (s *routedService) runWorker(t *testing.T, name string, arches []string, b worker.Builder) {
	reg, err := distro.Load()
	require.NoError(t, err)
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: s.url, Key: s.wtoken}, Name: name, Arches: arches,
		CacheDir: t.TempDir(), Resolver: &gatedResolver{}, Distros: reg, Builder: b})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// An aarch64 compose goes through the service to the one worker that
// declared aarch64: an x86_64-only worker polling all along never takes
// its build. Until a worker for aarch64 connects, the compose's status
// says that none does and how to start one; then it says nothing of it.
func TestAnAarch64BuildGoesOnlyToAWorkerThatDeclaredIt(t *testing.T) {
	ctx := context.Background()
	s := startRoutedService(t)
	code, body := s.call(t, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "arm",
		"image_requests": []any{map[string]any{"architecture": "aarch64", "image_type": "tar", "upload_request": map[string]any{"type": "local", "options": map[string]any{}}}},
		"customizations": map[string]any{"hostname": "arm01"},
	})
	require.Equal(t, http.StatusCreated, code, "a compose for an architecture no worker builds yet is accepted: %s", body)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))
	const reason = "no connected worker builds aarch64; start one with `kiln worker --arch aarch64`"
	st := s.status(t, created.ID)
	require.NotNil(t, st.Waiting, "no worker is connected")
	assert.Equal(t, "aarch64", st.Waiting.Architecture)
	assert.Equal(t, reason, st.Waiting.Reason)

	// The package solving is not what this test is about: a client
	// solves it, with the manifest of an aarch64 tar.
	solver := &workerproto.Client{BaseURL: s.url, Key: s.wtoken}
	j, err := solver.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindDepsolve}, Worker: "solver"})
	require.NoError(t, err)
	require.NotNil(t, j)
	m := composetest.TarManifest()
	m.Target.Arch = "aarch64"
	data, err := m.Marshal()
	require.NoError(t, err)
	require.NoError(t, solver.Finish(ctx, j, workerproto.DepsolveResult{Manifest: data}, nil))

	x86 := &composetest.Builder{Size: 4 << 10}
	s.runWorker(t, "x86", []string{"x86_64"}, x86)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ws, err := s.db.ConnectedWorkers(ctx, time.Now().Add(-store.ConnectedWindow))
		require.NoError(t, err)
		if len(ws) == 2 { // the solver and x86
			break
		}
		require.True(t, time.Now().Before(deadline), "the x86_64 worker did not poll")
	}
	time.Sleep(time.Second) // several polls of 200 ms
	assert.Equal(t, store.JobPending, s.build(t, created.ID).State, "the x86_64 worker does not take the aarch64 build")
	st = s.status(t, created.ID)
	require.NotNil(t, st.Waiting, "the connected worker builds only x86_64")
	assert.Equal(t, reason, st.Waiting.Reason)

	// A worker that builds aarch64 (here one that takes only uploads, so
	// that the build waits) connects: the message goes.
	probe := &workerproto.Client{BaseURL: s.url, Key: s.wtoken}
	j, err = probe.RequestJob(ctx, workerproto.JobRequest{Types: []string{workerproto.KindUpload}, Arches: []string{"aarch64"}, Worker: "arm-uploader"})
	require.NoError(t, err)
	require.Nil(t, j)
	st = s.status(t, created.ID)
	assert.Nil(t, st.Waiting, "a worker for aarch64 is connected")
	assert.Equal(t, store.JobPending, s.build(t, created.ID).State)

	arm := &composetest.Builder{Size: 4 << 10}
	s.runWorker(t, "arm", []string{"aarch64"}, arm)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st = s.status(t, created.ID)
		if st.Status == "success" || st.Status == "failure" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the compose did not end: %+v", st)
	}
	require.Equal(t, "success", st.Status)
	assert.Nil(t, st.Waiting)
	b := s.build(t, created.ID)
	assert.Equal(t, "arm", b.Worker, "the aarch64 worker built it")
	assert.Equal(t, "aarch64", b.Arch)
	assert.Equal(t, 1, arm.Builds())
	assert.Zero(t, x86.Builds(), "the x86_64 worker never built it")
}
