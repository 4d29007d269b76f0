package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// TestServiceBuildsACompose runs the service on loopback with no
// in-process worker. A first worker leases the depsolve job and dies
// (never heartbeats); the job is requeued when its lease expires and a
// real worker then runs the whole compose — depsolve, a real build of a
// root-filesystem tar, upload — while the test follows the build log. The
// image is downloaded (whole and by range) and the customizations are
// checked in it, and its manifest, SBOM and package list are checked. It
// is the one real compose through the service; that disk images boot is
// proven by test/e2e.
func TestServiceBuildsACompose(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	cache := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(testhost.CacheDir(t), "debs"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(testhost.CacheDir(t), "debs"), filepath.Join(cache, "debs")))
	deps := newTestDeps(t)
	secret := tokenForAcme(ctx, t, data)

	const key = "kwk_test"
	base, done := startService(ctx, t, Config{Listen: "127.0.0.1:0", DataDir: data, Workers: -1, WorkerKey: key, Resolver: deps.resolver,
		Mirrors: deps.mirrors, Lease: 4 * time.Second, RescueEvery: 500 * time.Millisecond, Distros: deps.distros})
	api := base + "/api/image-builder/v1"
	call := func(method, path string, body any, headers ...string) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, api+path, rd)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secret)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}

	resp, body := call("GET", "/packages?distribution=debian-12&architecture=x86_64&search=jq&limit=5", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"name":"jq"`, "searched in the repository metadata")

	// A compose naming a package the repositories lack is refused at once,
	// at its field, beside its other problems.
	resp, body = call("POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "svc",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local", "options": map[string]any{}}}},
		"customizations": map[string]any{"packages": []any{"jq", "jqq"}, "timezone": map[string]any{"timezone": "Mars/Olympus"}},
	})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"field":"customizations.packages[1]"`)
	assert.Contains(t, string(body), `package \"jqq\" does not exist in debian-12`)
	assert.Contains(t, string(body), `"field":"customizations.timezone.timezone"`)

	sshKey := filepath.Join(t.TempDir(), "id_ed25519")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kiln-service", "-f", sshKey).CombinedOutput()
	require.NoError(t, err, string(out))
	pub, err := os.ReadFile(sshKey + ".pub")
	require.NoError(t, err)
	resp, body = call("POST", "/compose", map[string]any{
		"distribution": "debian-12",
		"image_name":   "svc",
		"image_requests": []any{map[string]any{
			"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local", "options": map[string]any{}},
		}},
		"customizations": map[string]any{
			"packages": []any{"jq"},
			"hostname": "kiln-service",
			"users":    []any{map[string]any{"name": "ops", "groups": []any{"sudo"}, "ssh_key": strings.TrimSpace(string(pub))}},
			"files":    []any{map[string]any{"path": "/etc/kiln-release", "mode": "0644", "data": "built by the service\n"}},
		},
	})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))
	id := created.ID

	// A worker takes the depsolve job and dies without a heartbeat.
	dead := &workerproto.Client{BaseURL: base, Key: key}
	j, err := dead.RequestJob(ctx, workerproto.JobRequest{Types: []string{"depsolve"}, Arches: []string{"x86_64"}, Worker: "dies"})
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, id, j.ComposeID)
	_, body = call("GET", "/composes/"+id, nil)
	assert.Contains(t, string(body), `"status":"building"`)

	// The worker that does the work.
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: base, Key: key}, Name: "real",
		CacheDir: cache, Mirrors: deps.mirrors, Resolver: deps.resolver, Distros: deps.distros})
	require.NoError(t, err)
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() { _ = w.Run(wctx); close(workerDone) }()
	defer func() { stopWorker(); <-workerDone }()

	// Follow the log while the compose runs.
	logCh := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", api+"/composes/"+id+"/logs", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			logCh <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		logCh <- string(b)
	}()

	var status struct {
		ImageStatus struct {
			Status       string `json:"status"`
			UploadStatus struct {
				Status  string `json:"status"`
				Options struct {
					URL string `json:"url"`
				} `json:"options"`
			} `json:"upload_status"`
			Error *struct{ Reason, Details string } `json:"error"`
		} `json:"image_status"`
	}
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		_, body = call("GET", "/composes/"+id, nil)
		require.NoError(t, json.Unmarshal(body, &status), string(body))
		if s := status.ImageStatus.Status; s == "success" || s == "failure" {
			break
		}
		time.Sleep(time.Second)
	}
	require.Equal(t, "success", status.ImageStatus.Status, string(body))
	assert.Equal(t, "success", status.ImageStatus.UploadStatus.Status)
	// The local store's images are downloaded by a signed link.
	link := status.ImageStatus.UploadStatus.Options.URL
	assert.True(t, strings.HasPrefix(link, "/api/image-builder/v1/composes/"+id+"/download?"), link)
	assert.Contains(t, link, "signature=")

	var followed string
	select {
	case followed = <-logCh:
	case <-time.After(30 * time.Second):
		t.Fatal("the followed log did not end with the compose")
	}
	assert.Contains(t, followed, "kiln.debs.install")
	assert.Contains(t, followed, "built svc-debian-12-x86_64.tar.xz")

	// The depsolve job ran twice: the dead worker's attempt was rescued.
	db2, err := sqlite.Open(ctx, filepath.Join(data, "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	js, err := db2.ComposeJobs(ctx, "acme", id)
	require.NoError(t, err)
	require.NoError(t, db2.Close())
	assert.Equal(t, 2, js[0].Attempts)
	assert.Equal(t, "real", js[0].Worker)

	// The image, whole by its signed link (no token) and by range with
	// the token, then unpacked and checked.
	image := filepath.Join(t.TempDir(), "svc.tar.xz")
	req, err := http.NewRequestWithContext(ctx, "GET", base+link, nil)
	require.NoError(t, err)
	dl, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, dl.StatusCode)
	assert.Contains(t, dl.Header.Get("Content-Disposition"), "svc-debian-12-x86_64.tar.xz")
	f, err := os.Create(image)
	require.NoError(t, err)
	_, err = io.Copy(f, dl.Body)
	dl.Body.Close()
	require.NoError(t, err)
	require.NoError(t, f.Close())
	head := make([]byte, 100)
	f, err = os.Open(image)
	require.NoError(t, err)
	_, err = io.ReadFull(f, head)
	f.Close()
	require.NoError(t, err)
	resp, part := call("GET", "/composes/"+id+"/download", nil, "Range", "bytes=0-99")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, head, part)

	root := t.TempDir()
	out, err = exec.Command("tar", "--numeric-owner", "-xJf", image, "-C", root).CombinedOutput()
	require.NoError(t, err, "unpacking the image: %s", out)
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, p))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "kiln-service\n", read("etc/hostname"))
	assert.Regexp(t, `(?m)^sudo:x:\d+:(.*,)?ops(,.*)?$`, read("etc/group"), "ops is in the sudo group")
	assert.Contains(t, read("home/ops/.ssh/authorized_keys"), strings.TrimSpace(string(pub)))
	jq, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Status}", "jq").Output()
	require.NoError(t, err)
	assert.Equal(t, "install ok installed", string(jq))
	assert.Equal(t, "built by the service\n", read("etc/kiln-release"))

	_, body = call("GET", "/composes/"+id+"/metadata", nil)
	assert.Contains(t, string(body), `"name":"jq"`)
	_, body = call("GET", "/composes/"+id+"/sboms", nil)
	var sboms []struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name string `json:"name"`
		} `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(body, &sboms))
	require.Len(t, sboms, 1)
	assert.Equal(t, "SPDX-2.3", sboms[0].SPDXVersion)
	assert.Greater(t, len(sboms[0].Packages), 50)
	_, body = call("GET", "/composes/"+id+"/manifests", nil)
	var manifests []struct {
		Pipelines []any `json:"pipelines"`
	}
	require.NoError(t, json.Unmarshal(body, &manifests))
	require.Len(t, manifests, 1)
	assert.NotEmpty(t, manifests[0].Pipelines)

	mresp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	mets, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	assert.Contains(t, string(mets), `kiln_job_duration_seconds_count{arch="x86_64",image_type="tar",outcome="success",type="build"} 1`)
	assert.Contains(t, string(mets), `kiln_job_queue_wait_seconds_count{arch="",type="depsolve"} 2`, "leased twice")
	assert.Contains(t, string(mets), `kiln_jobs{arch="",state="success",type="upload"} 1`)
	assert.Regexp(t, `kiln_workers_active [12]\n`, string(mets))

	stopWorker()
	<-workerDone
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not stop")
	}
}

// TestInProcessWorkersBuildWithTheConfiguredBuilder runs the service with
// one in-process worker whose builder is the fake: a compose goes API →
// queue → depsolve → build → upload, and the image downloaded is the one
// the fake built from the compose's manifest.
func TestInProcessWorkersBuildWithTheConfiguredBuilder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	deps := newTestDeps(t)
	secret := tokenForAcme(ctx, t, data)

	fake := &composetest.Builder{Size: 100 << 10}
	base, done := startService(ctx, t, Config{Listen: "127.0.0.1:0", DataDir: data, Workers: 1, CacheDir: t.TempDir(), Resolver: deps.resolver,
		Mirrors: deps.mirrors, Distros: deps.distros, Builder: fake})
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		return testhost.APICall(t, method, base+"/api/image-builder/v1"+path, secret, body)
	}

	code, body := call("POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "fake",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local", "options": map[string]any{}}}},
		"customizations": map[string]any{"hostname": "built-by-the-fake"},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))

	var status struct {
		ImageStatus struct {
			Status string `json:"status"`
			Error  any    `json:"error"`
		} `json:"image_status"`
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, body = call("GET", "/composes/"+created.ID, nil)
		require.NoError(t, json.Unmarshal(body, &status), string(body))
		if s := status.ImageStatus.Status; s == "success" || s == "failure" {
			break
		}
	}
	require.Equal(t, "success", status.ImageStatus.Status, string(body))
	assert.Equal(t, 1, fake.Builds(), "the in-process worker built with the configured builder")

	code, image := call("GET", "/composes/"+created.ID+"/download", nil)
	require.Equal(t, http.StatusOK, code)
	_, mbody := call("GET", "/composes/"+created.ID+"/manifests", nil)
	var manifests []json.RawMessage
	require.NoError(t, json.Unmarshal(mbody, &manifests))
	require.Len(t, manifests, 1)
	m, err := manifest.Parse(manifests[0])
	require.NoError(t, err)
	want, err := composetest.Artifact(m, 100<<10)
	require.NoError(t, err)
	assert.Equal(t, want, image, "the image the fake built from the compose's manifest")
	assert.Contains(t, string(image), `"hostname": "built-by-the-fake"`)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not stop")
	}
}

// testDeps are what a test service plans and solves with: apt over the
// run's shared metadata cache, the host's Debian mirrors and the
// distributions.
type testDeps struct {
	resolver *apt.Resolver
	mirrors  map[string]string
	distros  *distro.Registry
}

func newTestDeps(t *testing.T) testDeps {
	t.Helper()
	resolver, err := apt.New(apt.Config{CacheDir: testhost.CacheDir(t)})
	require.NoError(t, err)
	entries, err := aptsources.Read("/")
	require.NoError(t, err)
	mirrors, err := aptsources.FindDebianMirrors(entries, []string{"bookworm"})
	require.NoError(t, err)
	reg, err := distro.Load()
	require.NoError(t, err)
	return testDeps{resolver: resolver, mirrors: map[string]string{"debian": mirrors.Main, "debian-security": mirrors.Security}, distros: reg}
}

// tokenForAcme creates the database in the data directory with an API
// token of org acme, and returns its secret.
func tokenForAcme(ctx context.Context, t *testing.T, data string) string {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(data, "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	secret, hash := store.NewSecret("kiln_")
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: "acme", Name: "test", Hash: hash, CreatedAt: time.Now()}))
	require.NoError(t, db.Close())
	return secret
}

// startService runs the service with cfg until ctx ends, and returns its
// base URL once it listens and the channel Run's result arrives on.
func startService(ctx context.Context, t *testing.T, cfg Config) (string, <-chan error) {
	t.Helper()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Ready = func(a string) { addr <- a }
	go func() { done <- Run(ctx, cfg) }()
	select {
	case a := <-addr:
		return "http://" + a, done
	case err := <-done:
		t.Fatalf("the service did not start: %v", err)
		return "", nil
	}
}
