package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apimodel"
	"github.com/kiln-project/kiln/internal/service"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/sparse"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/testhost"
)

// kiln is a kiln service for one test: its API, an in-process worker that
// builds with the engine in the test's cache, and the upload targets the
// test configured. Images built through it have gone the way users' do:
// the API, the queue, depsolve, build, the artifact store, the upload.
type kiln struct {
	base, token string
}

// startKiln runs a service with one in-process worker whose engine cache
// is cache, delivering to the targets the [targets] configuration section
// tc sets up, with env for the secrets it names.
func startKiln(t *testing.T, cache string, tc target.Config, env target.Env) *kiln {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	data := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(data, "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	secret, hash := store.NewSecret("kiln_")
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: "e2e", Name: "test", Hash: hash, CreatedAt: time.Now()}))
	require.NoError(t, db.Close())

	reg, mirrors, resolver := hostDeps(t)
	if env == nil {
		env = func(string) string { return "" }
	}
	targets, err := target.Build(tc, env, "")
	require.NoError(t, err)

	addr := make(chan string, 1)
	done := make(chan error, 1)
	cfg := service.Config{Listen: "127.0.0.1:0", DataDir: data, Workers: 1, CacheDir: cache, Resolver: resolver,
		Mirrors: mirrors, Distros: reg,
		Targets: targets, UploadTimeout: 20 * time.Minute, Ready: func(a string) { addr <- a }}
	go func() { done <- service.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-addr:
		return &kiln{base: "http://" + a + "/api/image-builder/v1", token: secret}
	case err := <-done:
		t.Fatalf("the service did not start: %v", err)
		return nil
	}
}

// call makes an API request and returns its status and body.
func (k *kiln) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	return testhost.APICall(t, method, k.base+path, k.token, body)
}

// compose submits a compose of the blueprint text (TOML, as a user writes
// it, sent as the API's customizations) for imageType, delivered by
// upload ({type, options}), and returns its ID.
func (k *kiln) compose(t *testing.T, bpText, imageType string, upload map[string]any) string {
	t.Helper()
	return k.composeSized(t, bpText, imageType, 0, upload)
}

// composeSized is compose with the image's size in bytes (0: the type's
// default).
func (k *kiln) composeSized(t *testing.T, bpText, imageType string, size int64, upload map[string]any) string {
	t.Helper()
	bp, err := blueprint.Parse([]byte(bpText), blueprint.FormatTOML)
	require.NoError(t, err)
	cust, err := apimodel.CustomizationsFromBlueprint(bp)
	require.NoError(t, err)
	ir := map[string]any{"architecture": "x86_64", "image_type": imageType, "upload_request": upload}
	if size > 0 {
		ir["size"] = size
	}
	status, body := k.call(t, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": bp.Name,
		"image_requests": []any{ir},
		"customizations": cust,
	})
	require.Equal(t, http.StatusCreated, status, string(body))
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))
	return created.ID
}

// composeStatus is the part of a compose's status these tests read.
type composeStatus struct {
	ImageStatus struct {
		Status       string `json:"status"`
		UploadStatus struct {
			Status  string         `json:"status"`
			Type    string         `json:"type"`
			Options map[string]any `json:"options"`
		} `json:"upload_status"`
		Error *struct {
			Reason  string `json:"reason"`
			Details any    `json:"details"`
		} `json:"error"`
	} `json:"image_status"`
}

// wait follows the compose until it ends, failing the test unless it
// succeeded, and returns its last status; seen collects the statuses it
// went through.
func (k *kiln) wait(t *testing.T, id string, timeout time.Duration) (composeStatus, map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(timeout)
	for {
		status, body := k.call(t, "GET", "/composes/"+id, nil)
		require.Equal(t, http.StatusOK, status, string(body))
		var st composeStatus
		require.NoError(t, json.Unmarshal(body, &st))
		seen[st.ImageStatus.Status] = true
		switch st.ImageStatus.Status {
		case "success":
			return st, seen
		case "failure":
			_, logs := k.call(t, "GET", "/composes/"+id+"/logs", nil)
			if len(logs) > 6000 {
				logs = logs[len(logs)-6000:]
			}
			t.Fatalf("compose %s failed: %s\nend of its log:\n%s", id, body, logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("compose %s did not end within %s: %s", id, timeout, body)
		}
		time.Sleep(time.Second)
	}
}

// download saves the compose's image, from the service's artifact store,
// as dst.
func (k *kiln) download(t *testing.T, id, dst string) string {
	t.Helper()
	req, err := http.NewRequest("GET", k.base+"/composes/"+id+"/download", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+k.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	f, err := os.Create(dst)
	require.NoError(t, err)
	defer f.Close()
	_, err = sparse.Copy(f, resp.Body)
	require.NoError(t, err)
	return dst
}

// TestMain bounds the heap of this package's test process, where the
// service, its worker and the clouds' test servers all run: the S3 test
// server holds a disk's multipart upload in memory (its parts, then the
// object they make), gigabytes for a cloud image, and without a bound the
// collector lets the heap grow to twice that before it runs.
func TestMain(m *testing.M) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(6 << 30)
	}
	os.Exit(m.Run())
}
