package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// noResolver is the resolver of a worker that only builds.
type noResolver struct{}

func (noResolver) Resolve(context.Context, depsolve.Request) (*depsolve.Result, error) {
	return nil, errors.New("this worker does not resolve packages")
}

// A compose whose build fails on what only the installed packages can
// tell (no such unit, group or shell) shows each problem in its status,
// one item under the request's field: the worker running the build (on
// the fake builder) reports them, the service keeps them with the
// failure.
func TestBuildProblemsShowInTheComposeStatus(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()} // the build log goes here
	ts := newTestServer(t, func(c *Config) { c.Artifacts = arts })
	id := composeOfType(t, ts, "qcow2")
	m, err := composetest.TarManifest().Marshal()
	require.NoError(t, err)
	runJob(t, ts, workerproto.KindDepsolve, workerproto.DepsolveResult{Manifest: m}, nil)

	ctx := context.Background()
	key, hash := store.NewSecret("kwt_")
	require.NoError(t, ts.db.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "test", Hash: hash, CreatedAt: time.Now()}))
	srv := httptest.NewServer(workerapi.Handler(workerapi.Config{Queue: ts.db, Tokens: ts.db, Artifacts: arts, Lease: time.Minute, PollTimeout: time.Second}))
	t.Cleanup(srv.Close)
	fake := &composetest.Builder{FailAt: "kiln.hostname", FailProblems: blueprint.Errors{
		{Path: "customizations.services.enabled[0]", Message: "no installed unit is called nginx.service"},
		{Path: "customizations.user[0].groups[0]", Message: `the image has no group "sudo"`},
		{Path: "customizations.user[0].shell", Message: "/bin/zsh is not in the image; add the package zsh"},
	}}
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: srv.URL, Key: key}, Name: "builder",
		Types: []string{workerproto.KindBuild}, CacheDir: t.TempDir(), Resolver: noResolver{}, Distros: ts.server.cfg.Distros, Builder: fake})
	require.NoError(t, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })

	var st map[string]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, st = statusOf(t, ts, id); st["status"] == "failure" {
			break
		}
	}
	require.Equal(t, "failure", st["status"], "%v", st)
	e := st["error"].(map[string]any)
	assert.Equal(t, "build failed: stage kiln.hostname of pipeline os: the image does not have what the blueprint asks for (3 problems, each under its field)", e["reason"])
	assert.Equal(t, []any{
		map[string]any{"field": "customizations.services.enabled[0]", "detail": "customizations.services.enabled[0]: no installed unit is called nginx.service"},
		map[string]any{"field": "customizations.users[0].groups[0]", "detail": `customizations.users[0].groups[0]: the image has no group "sudo"`},
		map[string]any{"field": "customizations.users[0].shell", "detail": "customizations.users[0].shell: /bin/zsh is not in the image; add the package zsh"},
	}, e["details"], "one item per problem, under the request's field")

	// The listing shows the same.
	_, items := listed(t, ts, "")
	require.Len(t, items, 1)
	assert.Equal(t, e, items[0]["image_status"].(map[string]any)["error"])
}
