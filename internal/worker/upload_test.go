package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/service/workerapi"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/worker"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// readingTarget is an upload type that reads the image from the worker's
// disk, as every cloud target does: it keeps what it read, reports the
// registering step and waits to be let go, or fails the way it is told.
type readingTarget struct {
	mu          sync.Mutex
	got         []byte
	artifact    target.Artifact
	registering chan struct{}
	release     chan struct{}
	fail        error
	blockForCtx bool
}

func (r *readingTarget) Type() string                              { return "aws" }
func (r *readingTarget) Check(target.Image, json.RawMessage) error { return nil }

func (r *readingTarget) Upload(ctx context.Context, a target.Artifact, _ json.RawMessage, rep target.Reporter) (target.Result, error) {
	b, err := os.ReadFile(a.Path)
	if err != nil {
		return target.Result{}, err
	}
	r.mu.Lock()
	r.got, r.artifact = b, a
	r.mu.Unlock()
	rep.Step(target.StepUploading)
	rep.Bytes(int64(len(b)), int64(len(b)))
	if r.fail != nil {
		return target.Result{}, r.fail
	}
	if r.blockForCtx {
		<-ctx.Done()
		return target.Result{}, &target.StepError{Target: "aws", Step: "import the snapshot", Err: ctx.Err()}
	}
	rep.Step(target.StepRegistering)
	close(r.registering)
	<-r.release
	return target.Result{AMI: "ami-0123456789abcdef0", Region: "eu-west-1"}, nil
}

// uploadQueue is a store and worker API with a compose whose build is
// done (its image in the artifact store) and whose upload job waits.
func uploadQueue(t *testing.T, image []byte, sum string) (*sqlite.DB, string, string, string) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	secret, hash := store.NewSecret("kwt_")
	require.NoError(t, db.CreateWorkerToken(ctx, store.WorkerToken{ID: store.NewID(), Name: "test", Hash: hash, CreatedAt: time.Now()}))
	arts := artifacts.Local{Dir: t.TempDir()}
	c := store.Compose{ID: store.NewID(), OrgID: "a", CreatedAt: time.Now(), ImageName: "web", Request: json.RawMessage(`{}`)}
	build, upload := store.NewID(), store.NewID()
	args, _ := json.Marshal(workerproto.UploadArgs{Type: "aws", Name: "web", Image: target.Image{Type: "ami", Format: "raw", BootMode: "hybrid", Arch: "x86_64"}})
	require.NoError(t, db.CreateCompose(ctx, c, []store.Job{
		{ID: build, ComposeID: c.ID, OrgID: "a", Type: workerproto.KindBuild, Arch: "x86_64", Args: json.RawMessage(`{}`)},
		{ID: upload, ComposeID: c.ID, OrgID: "a", Type: workerproto.KindUpload, Args: args, Deps: []string{build}, MaxAttempts: 1},
	}))
	l, err := db.Dequeue(ctx, []string{workerproto.KindBuild}, []string{"x86_64"}, store.Worker{Name: "builder"}, time.Minute)
	require.NoError(t, err)
	_, err = arts.Put(ctx, c.ID, "web.ami.raw", strings.NewReader(string(image)))
	require.NoError(t, err)
	res, _ := json.Marshal(workerproto.BuildResult{Filename: "web.ami.raw", Size: int64(len(image)), SHA256: sum})
	require.NoError(t, db.Finish(ctx, l.Job.ID, l.Token, res, nil))
	srv := httptest.NewServer(workerapi.Handler(workerapi.Config{Queue: db, Tokens: db, Artifacts: arts, Lease: time.Minute, PollTimeout: time.Second}))
	t.Cleanup(srv.Close)
	return db, srv.URL, secret, c.ID
}

func startUploader(t *testing.T, url, secret string, tg target.Target, timeout time.Duration) {
	reg, err := distro.Load()
	require.NoError(t, err)
	w, err := worker.New(worker.Config{Client: &workerproto.Client{BaseURL: url, Key: secret}, Name: "uploader",
		Types: []string{workerproto.KindUpload}, CacheDir: t.TempDir(), Distros: reg, Resolver: &gatedResolver{},
		Mirrors: map[string]string{"debian": "http://mirror.invalid/debian"},
		Targets: target.New(tg), UploadTimeout: timeout})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func uploadJob(t *testing.T, db *sqlite.DB, composeID string) store.Job {
	t.Helper()
	js, err := db.ComposeJobs(context.Background(), "a", composeID)
	require.NoError(t, err)
	for _, j := range js {
		if j.Type == workerproto.KindUpload {
			return j
		}
	}
	t.Fatal("no upload job")
	return store.Job{}
}

func waitForEnd(t *testing.T, db *sqlite.DB, composeID string) store.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if j := uploadJob(t, db, composeID); j.State == store.JobSuccess || j.State == store.JobFailure {
			return j
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the upload job did not end")
	return store.Job{}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The upload job fetches the built image from the service, checked, hands
// it to the target with the compose's name and image, shows the
// registering step while the cloud imports, and records where it went.
func TestUploadJobDeliversTheBuiltImage(t *testing.T) {
	image := []byte(strings.Repeat("kiln disk image ", 300000)) // ~4.6 MiB
	db, url, secret, id := uploadQueue(t, image, sha(image))
	tg := &readingTarget{registering: make(chan struct{}), release: make(chan struct{})}
	startUploader(t, url, secret, tg, time.Minute)

	select {
	case <-tg.registering:
	case <-time.After(20 * time.Second):
		t.Fatal("the target was not reached")
	}
	require.Eventually(t, func() bool { return uploadJob(t, db, id).Progress.Step == target.StepRegistering }, 10*time.Second, 50*time.Millisecond,
		"the service hears of the registering step")
	close(tg.release)
	j := waitForEnd(t, db, id)
	require.Equal(t, store.JobSuccess, j.State, "%+v", j.Error)
	assert.Equal(t, image, tg.got, "the target read the built image")
	assert.Equal(t, "web", tg.artifact.Name)
	assert.Equal(t, "ami", tg.artifact.Image.Type)
	assert.Equal(t, sha(image), tg.artifact.SHA256)
	var res workerproto.UploadResult
	require.NoError(t, json.Unmarshal(j.Result, &res))
	assert.Equal(t, "ami-0123456789abcdef0", res.AMI)
	assert.Equal(t, "eu-west-1", res.Region)
	_, err := os.Stat(tg.artifact.Path)
	assert.True(t, os.IsNotExist(err), "the fetched copy is removed once delivered")
}

// An image that does not match what the build recorded is never
// delivered.
func TestUploadJobRefusesAnImageThatDoesNotMatchTheBuild(t *testing.T) {
	image := []byte("a small image")
	db, url, secret, id := uploadQueue(t, image, sha([]byte("another image")))
	tg := &readingTarget{registering: make(chan struct{}), release: make(chan struct{})}
	startUploader(t, url, secret, tg, time.Minute)
	j := waitForEnd(t, db, id)
	require.Equal(t, store.JobFailure, j.State)
	assert.Equal(t, "the upload could not fetch the image", j.Error.Reason)
	assert.Contains(t, j.Error.Details, "SHA-256")
	assert.Nil(t, tg.got, "the target never saw it")
}

// A failed step is the job's reason, naming the target and the step; an
// upload past the timeout is stopped and says so.
func TestUploadJobFailures(t *testing.T) {
	image := []byte("a small image")
	t.Run("a step fails", func(t *testing.T) {
		db, url, secret, id := uploadQueue(t, image, sha(image))
		startUploader(t, url, secret, &readingTarget{fail: &target.StepError{Target: "aws", Step: "register the image", Err: errors.New("InvalidParameter: the snapshot is not ready")}}, time.Minute)
		j := waitForEnd(t, db, id)
		require.Equal(t, store.JobFailure, j.State)
		assert.Equal(t, "the upload failed: aws: register the image: InvalidParameter: the snapshot is not ready", j.Error.Reason)
	})
	t.Run("the timeout passes", func(t *testing.T) {
		db, url, secret, id := uploadQueue(t, image, sha(image))
		startUploader(t, url, secret, &readingTarget{blockForCtx: true}, 500*time.Millisecond)
		j := waitForEnd(t, db, id)
		require.Equal(t, store.JobFailure, j.State)
		assert.Contains(t, j.Error.Reason, "it took longer than the upload timeout (500ms)")
		assert.Contains(t, j.Error.Reason, "aws: import the snapshot")
	})
}
