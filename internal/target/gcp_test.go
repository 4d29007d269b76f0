package target_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	compute "google.golang.org/api/compute/v1"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

var gceImage = target.Image{Type: "gce", Format: "disk-tar", Compression: "gzip", BootMode: "hybrid", Arch: "x86_64"}

// gceArtifact writes a gce image file: a gzipped tar whose only member is
// a disk.raw of diskSize incompressible bytes.
func gceArtifact(t *testing.T, composeID string, diskSize int64) target.Artifact {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.tar.gz")
	f, err := os.Create(path)
	require.NoError(t, err)
	h := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(zw)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "disk.raw", Mode: 0o644, Size: diskSize, Format: tar.FormatGNU}))
	_, err = io.CopyN(tw, rand.Reader, diskSize)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)
	return target.Artifact{
		ComposeID: composeID,
		Name:      "kiln-" + composeID,
		Filename:  "disk.tar.gz",
		Path:      path,
		Size:      st.Size(),
		SHA256:    hex.EncodeToString(h.Sum(nil)),
		Image:     gceImage,
	}
}

// steps records a Reporter's calls.
type steps struct {
	mu     sync.Mutex
	steps  []string
	bytes  int
	onStep func(string)
	onByte func(done, total int64)
}

func (s *steps) Step(step string) {
	s.mu.Lock()
	s.steps = append(s.steps, step)
	f := s.onStep
	s.mu.Unlock()
	if f != nil {
		f(step)
	}
}

func (s *steps) Bytes(done, total int64) {
	s.mu.Lock()
	s.bytes++
	f := s.onByte
	s.mu.Unlock()
	if f != nil {
		f(done, total)
	}
}

func buildGCP(t *testing.T, cfg target.Config) target.Target {
	t.Helper()
	r, err := target.Build(cfg, func(string) string { return "" }, "")
	require.NoError(t, err)
	tg, err := r.Lookup("gcp")
	require.NoError(t, err)
	assert.True(t, target.WantsFile(tg))
	return tg
}

func TestGCPCheck(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)

	assert.NoError(t, tg.Check(gceImage, nil))
	assert.NoError(t, tg.Check(gceImage, json.RawMessage(`{"share_with_accounts":["user:alice@example.com","serviceAccount:ci@proj.iam.gserviceaccount.com","group:devs@example.com","domain:example.com"]}`)))

	err := tg.Check(gceImage, json.RawMessage(`{"share_with_accounts":["alice@example.com"]}`))
	assert.EqualError(t, err, `options.share_with_accounts[0]: "alice@example.com" has no kind of account; write "user:", "serviceAccount:", "group:" or "domain:" and the account, e.g. user:alice@example.com or domain:example.com`)
	err = tg.Check(gceImage, json.RawMessage(`{"share_with_accounts":["user:alice@example.com","User:bob@example.com","domain:Example..com"]}`))
	require.Error(t, err)
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined, "each bad entry is its own error")
	require.Len(t, joined.Unwrap(), 2)
	assert.True(t, strings.HasPrefix(joined.Unwrap()[0].Error(), `options.share_with_accounts[1]: "User:bob@example.com": unknown kind of account "User"`), err.Error())
	assert.True(t, strings.HasPrefix(joined.Unwrap()[1].Error(), `options.share_with_accounts[2]: "domain:Example..com": a domain is named by its lowercase DNS name`), err.Error())
	assert.EqualError(t, tg.Check(gceImage, json.RawMessage(`{"region":"eu"}`)), "options.region: unknown option (this upload type takes share_with_accounts)")

	qcow2 := target.Image{Type: "qcow2", Format: "qcow2", BootMode: "hybrid", Arch: "x86_64"}
	assert.EqualError(t, tg.Check(qcow2, nil), "gcp imports a disk.raw in a gzipped tar, which image type gce makes (image-builder calls it gcp); qcow2 images (qcow2) cannot be imported: ask for image type gce or gcp")
	arm := gceImage
	arm.Arch, arm.BootMode = "aarch64", "bios"
	assert.EqualError(t, tg.Check(arm, nil), "Compute Engine boots aarch64 images with UEFI; this image boots with BIOS only")
	arm.BootMode = "uefi"
	assert.NoError(t, tg.Check(arm, nil))

	// Every problem is named, not the first alone.
	err = tg.Check(qcow2, json.RawMessage(`{"share_with_accounts":["bob"]}`))
	assert.ErrorContains(t, err, "options.share_with_accounts[0]")
	assert.ErrorContains(t, err, "qcow2 images (qcow2) cannot be imported")
}

func TestGCPImageName(t *testing.T) {
	id := "6f1b2c3d-aaaa-bbbb-cccc-0123456789ab"
	assert.Equal(t, "kiln-6f1b2c3d-aaaa-bbbb-cccc-0123456789ab", target.GCPImageName("kiln-"+id, id), "the default name has the compose id already")
	assert.Equal(t, "my-web-server-6f1b2c3d", target.GCPImageName("My Web_Server!", id))
	assert.Equal(t, "kiln-2024-build-6f1b2c3d", target.GCPImageName("2024.build", id))
	long := target.GCPImageName(strings.Repeat("a", 100), id)
	assert.Len(t, long, 63)
	assert.True(t, strings.HasSuffix(long, "-6f1b2c3d"))
	assert.Equal(t, target.GCPImageName("x", id), target.GCPImageName("x", id), "deterministic")
	assert.NotEqual(t, target.GCPImageName("x", id), target.GCPImageName("x", "7f1b2c3d-0000"))
	assert.Equal(t, "kiln-6f1b2c3d", target.GCPImageName("", id))
}

func TestGCPUpload(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "c0ffee00-1111-2222-3333-444455556666", 3<<20)
	a.Name = "web server"
	share := json.RawMessage(`{"share_with_accounts":["user:alice@example.com","domain:example.com"]}`)
	require.NoError(t, tg.Check(a.Image, share))

	rep := &steps{}
	res, err := tg.Upload(context.Background(), a, share, rep)
	require.NoError(t, err)
	assert.Equal(t, target.Result{ImageName: "web-server-c0ffee00", ProjectID: "kiln-test"}, res)
	assert.Equal(t, []string{target.StepUploading, target.StepRegistering}, rep.steps)
	assert.Positive(t, rep.bytes)

	imp := servers.Compute.Imports()["web-server-c0ffee00"]
	assert.Equal(t, a.SHA256, imp.SHA256, "Compute Engine read the file's bytes")
	assert.Equal(t, a.Size, imp.Size)
	assert.Equal(t, target.GCSObjectURL("kiln-images", "kiln/c0ffee00-1111-2222-3333-444455556666/disk.tar.gz"), imp.Source)
	assert.ElementsMatch(t, []string{"UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"}, imp.GuestOSFeatures)
	assert.Equal(t, "X86_64", imp.Architecture)
	assert.Equal(t, "c0ffee00-1111-2222-3333-444455556666", imp.Labels["kiln-compose"])
	assert.NotEmpty(t, imp.RequestID)
	assert.Equal(t, "READY", servers.Compute.Images()["web-server-c0ffee00"].Status)
	assert.Equal(t, []string{"user:alice@example.com", "domain:example.com"}, servers.Compute.Members("web-server-c0ffee00", "roles/compute.imageUser"))
	assert.Empty(t, servers.GCS.Objects(), "the uploaded disk is deleted after the import")
	assert.Empty(t, servers.GCS.OpenSessions())
	assert.Greater(t, servers.GCS.UploadRequests(), 2, "the file went in several resumable chunks")

	calls := servers.Compute.Calls()
	calls = slices.DeleteFunc(calls, func(c string) bool { return c == "token" })
	assert.Equal(t, []string{"images.get", "images.insert", "globalOperations.get", "globalOperations.get", "images.getIamPolicy", "images.setIamPolicy"}, calls)
}

func TestGCPUploadBIOSImageIsNotUEFI(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "b1051111-0000", 64<<10)
	a.Image.BootMode = "bios"
	res, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"VIRTIO_SCSI_MULTIQUEUE", "GVNIC"}, servers.Compute.Imports()[res.ImageName].GuestOSFeatures)
	assert.NotContains(t, servers.Compute.Calls(), "images.setIamPolicy", "nothing to share")
}

func TestGCPUploadInParallelParts(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "9a4c0000-1111", 10<<20) // 3 parts of 4 MiB
	var last int64
	rep := &steps{onByte: func(done, total int64) {
		assert.Equal(t, a.Size, total)
		last = done
	}}
	res, err := tg.Upload(context.Background(), a, nil, rep)
	require.NoError(t, err)
	assert.Equal(t, a.Size, last, "the last report is the whole file")
	assert.Equal(t, a.SHA256, servers.Compute.Imports()[res.ImageName].SHA256, "the composed object is the file")
	assert.Empty(t, servers.GCS.Objects(), "parts and the composed object are deleted")
	assert.Empty(t, servers.GCS.OpenSessions())
}

func TestGCPUploadRetries(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "7e7a0000-1111", 3<<20)
	servers.GCS.FailUploads(1, 1, 503)
	servers.Compute.Fail("images.insert", 503)
	servers.Compute.Fail("globalOperations.get", 500)
	res, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, a.SHA256, servers.Compute.Imports()[res.ImageName].SHA256)
	assert.Len(t, servers.Compute.Images(), 1)
	calls := servers.Compute.Calls()
	assert.Equal(t, 2, count(calls, "images.insert"), "the insert was retried")
	assert.Empty(t, servers.GCS.Objects())
}

func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

// A job requeued after a crash between the upload and the insert finds
// the disk it left, uploads it again under the same name, and makes one
// image.
func TestGCPUploadRequeuedAfterCrashBeforeInsert(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "c7a50000-1111", 5<<20)

	crash := &steps{onStep: func(step string) {
		if step == target.StepRegistering {
			runtime.Goexit() // the worker dies here: no cleanup runs
		}
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tg.Upload(context.Background(), a, nil, crash)
	}()
	<-done
	require.NotEmpty(t, servers.GCS.Objects(), "the first attempt left its disk")
	require.Empty(t, servers.Compute.Images())

	res, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
	require.NoError(t, err)
	assert.Len(t, servers.Compute.Images(), 1)
	assert.Equal(t, a.SHA256, servers.Compute.Imports()[res.ImageName].SHA256)
	assert.Empty(t, servers.GCS.Objects())
}

// A job requeued after a crash during the import waits for the image the
// first attempt started rather than making a second.
func TestGCPUploadRequeuedDuringImport(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "1a2b0000-1111", 64<<10)
	name := target.GCPImageName(a.Name, a.ComposeID)
	servers.Compute.SeedPendingImage(compute.Image{Name: name, Labels: map[string]string{"kiln-compose": a.ComposeID}}, 2)
	servers.GCS.Server.CreateObject(objectOf(servers, "kiln/"+a.ComposeID+"/disk.tar.gz"))

	rep := &steps{}
	res, err := tg.Upload(context.Background(), a, json.RawMessage(`{"share_with_accounts":["group:ops@example.com"]}`), rep)
	require.NoError(t, err)
	assert.Equal(t, name, res.ImageName)
	assert.Equal(t, []string{target.StepRegistering}, rep.steps)
	assert.NotContains(t, servers.Compute.Calls(), "images.insert")
	assert.Equal(t, "READY", servers.Compute.Images()[name].Status)
	assert.Equal(t, []string{"group:ops@example.com"}, servers.Compute.Members(name, "roles/compute.imageUser"))
	assert.Empty(t, servers.GCS.Objects(), "the first attempt's disk is deleted")
}

// A job retried after the share failed reuses the image it made.
func TestGCPUploadRetriedAfterShareFailed(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "5a4e0000-1111", 64<<10)
	share := json.RawMessage(`{"share_with_accounts":["user:alice@example.com"]}`)
	servers.Compute.Fail("images.setIamPolicy", 403)
	_, err := tg.Upload(context.Background(), a, share, target.NoReporter{})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "gcp: share the image: "), err.Error())

	res, err := tg.Upload(context.Background(), a, share, target.NoReporter{})
	require.NoError(t, err)
	assert.Equal(t, 1, count(servers.Compute.Calls(), "images.insert"), "no second image")
	assert.Equal(t, []string{"user:alice@example.com"}, servers.Compute.Members(res.ImageName, "roles/compute.imageUser"))
	assert.Empty(t, servers.GCS.Objects())
}

func TestGCPUploadNeedsAComposeID(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "", 1<<10)
	_, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
	assert.EqualError(t, err, "gcp: read the options: the artifact has no compose id, which names the staged objects and the image")
	assert.Empty(t, servers.Compute.Calls())
}

func TestGCPUploadRefusesAnotherComposesImage(t *testing.T) {
	servers := targettest.StartGCP(t)
	tg := buildGCP(t, servers.Config)
	a := gceArtifact(t, "0the0000-1111", 64<<10)
	name := target.GCPImageName(a.Name, a.ComposeID)
	servers.Compute.SeedPendingImage(compute.Image{Name: name, Labels: map[string]string{"kiln-compose": "someone-else"}}, 0)
	_, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
	assert.EqualError(t, err, "gcp: look for the image: project kiln-test has an image named "+name+" that this compose did not make; name the image otherwise (image_name)")
}

// objectOf is an object of the GCP servers' bucket, as an earlier
// attempt left it.
func objectOf(servers *targettest.GCP, name string) fakestorage.Object {
	return fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: servers.GCS.Bucket, Name: name},
		Content:     []byte("left by a first attempt"),
	}
}

func TestGCPFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int64
		break_ func(*targettest.GCP)
		prefix string
	}{
		{"storage down", 64 << 10, func(s *targettest.GCP) { s.GCS.Stop() }, "gcp: upload the disk: "},
		{"500 mid-upload", 3 << 20, func(s *targettest.GCP) { s.GCS.FailUploads(2, -1, 500) }, "gcp: upload the disk: "},
		{"500 mid-upload of parts", 10 << 20, func(s *targettest.GCP) { s.GCS.FailUploads(4, -1, 500) }, "gcp: upload the disk: "},
		{"compose of the parts fails", 10 << 20, func(s *targettest.GCP) { s.GCS.FailComposes(500, 500, 500) }, "gcp: upload the disk: compose the parts: "},
		{"credentials refused", 64 << 10, func(s *targettest.GCP) { s.Compute.RefuseCredentials() }, "gcp: look for the image: "},
		{"insert forbidden", 64 << 10, func(s *targettest.GCP) { s.Compute.Fail("images.insert", 403) }, "gcp: import the image: "},
		{"import failed", 64 << 10, func(s *targettest.GCP) { s.Compute.Fail("operation", 1) }, "gcp: import the image: operation operation-1 failed: INVALID_IMAGE_FILE: "},
		{"compute down during import", 64 << 10, func(s *targettest.GCP) { s.Compute.Fail("globalOperations.get", 503, 503, 503) }, "gcp: import the image: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers := targettest.StartGCP(t)
			tg := buildGCP(t, servers.Config)
			a := gceArtifact(t, "fa110000-1111", tc.size)
			tc.break_(servers)
			_, err := tg.Upload(context.Background(), a, nil, target.NoReporter{})
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.prefix), err.Error())
			var se *target.StepError
			assert.True(t, errors.As(err, &se))
			assert.Empty(t, servers.GCS.Objects(), "no staging object or part is left")
			for name, img := range servers.Compute.Images() {
				t.Errorf("image %s (%s) is left", name, img.Status)
			}
		})
	}
}

func TestGCPCanceled(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		when func(cancel context.CancelFunc) *steps
		step string
	}{
		{"while uploading", 10 << 20, func(cancel context.CancelFunc) *steps {
			return &steps{onByte: func(done, _ int64) {
				if done > 0 {
					cancel()
				}
			}}
		}, "gcp: upload the disk: "},
		{"while importing", 64 << 10, func(cancel context.CancelFunc) *steps {
			return &steps{onStep: func(step string) {
				if step == target.StepRegistering {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
			}}
		}, "gcp: import the image: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers := targettest.StartGCP(t)
			servers.Compute.OperationPolls = 1 << 30
			tg := buildGCP(t, servers.Config)
			a := gceArtifact(t, "ca7c0000-1111", tc.size)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := tg.Upload(ctx, a, nil, tc.when(cancel))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.step), err.Error())
			assert.ErrorIs(t, err, context.Canceled)
			assert.Empty(t, servers.GCS.Objects())
			assert.Empty(t, servers.Compute.Images())
		})
	}
}

func TestGCPConfigFromTOML(t *testing.T) {
	var cfg struct {
		Targets target.Config `toml:"targets"`
	}
	_, err := toml.Decode(`
[targets.gcp]
project = "my-project"
bucket = "staging"
prefix = "kiln/"
location = "eu"
part_size = 33554432
retry_delay = "2s"
poll_interval = "5s"
`, &cfg)
	require.NoError(t, err)
	assert.Equal(t, &target.GCPConfig{Project: "my-project", Bucket: "staging", Prefix: "kiln/", Location: "eu", PartSize: 32 << 20, RetryDelay: 2 * time.Second, PollInterval: 5 * time.Second}, cfg.Targets.GCP)
}

func TestGCPConfigProblems(t *testing.T) {
	_, err := target.Build(target.Config{GCP: &target.GCPConfig{PartSize: 10, CredentialsFile: "/nonexistent/key.json", ComputeEndpoint: "localhost"}}, func(string) string { return "" }, "")
	require.Error(t, err)
	for _, want := range []string{
		"[targets.gcp] project: missing",
		"[targets.gcp] bucket: missing",
		"[targets.gcp] part_size: 10 is below the minimum",
		"[targets.gcp] compute_endpoint: \"localhost\" is not a URL",
		"[targets.gcp] credentials_file: cannot read the credentials file",
	} {
		assert.Contains(t, err.Error(), want)
	}

	key := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(key, []byte(`{"type":"gdch_service_account","private_key":"SECRET"}`), 0o600))
	_, err = target.Build(target.Config{GCP: &target.GCPConfig{Project: "p", Bucket: "b"}}, func(k string) string {
		if k == "GOOGLE_APPLICATION_CREDENTIALS" {
			return key
		}
		return ""
	}, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `[targets.gcp] GOOGLE_APPLICATION_CREDENTIALS: the credentials file`)
	assert.NotContains(t, err.Error(), "SECRET", "a secret is never shown")
}
