package target_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

// rawArtifact writes size random bytes as a raw disk image of compose id
// and returns it as an artifact, with its SHA-256.
func rawArtifact(t *testing.T, id string, size int) (target.Artifact, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	sum := sha256.Sum256(data)
	return target.Artifact{
		ComposeID: id, Name: "kiln-" + id, Filename: "disk.raw", Path: p,
		Size: int64(size), SHA256: hex.EncodeToString(sum[:]),
		Image: target.Image{Type: "raw", Format: "raw", BootMode: "hybrid", Arch: "x86_64"},
	}, data
}

func newOCI(t *testing.T, cfg target.OCIConfig) *target.OCIObjectStorage {
	t.Helper()
	o, err := target.NewOCIObjectStorage(cfg, noEnv)
	require.NoError(t, err)
	target.SetOCIRetryBase(o, time.Millisecond)
	return o
}

// fetch reads a URL.
func fetch(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestOCICheck(t *testing.T) {
	srv := targettest.StartOCIObjectStorage(t)
	o := newOCI(t, srv.Config)
	assert.Equal(t, "oci.objectstorage", o.Type())
	for _, img := range []target.Image{qcow2Image, containerImage, {Type: "iso", Format: "iso", BootMode: "hybrid", Arch: "aarch64"}} {
		assert.NoError(t, o.Check(img, nil))
		assert.NoError(t, o.Check(img, json.RawMessage(`{}`)))
	}
	assert.EqualError(t, o.Check(qcow2Image, json.RawMessage(`{"bucket":"x"}`)), "options.bucket: this upload type takes no options")
	assert.True(t, target.WantsFile(o))
}

var qcow2Image = target.Image{Type: "qcow2", Format: "qcow2", BootMode: "hybrid", Arch: "x86_64"}

func TestOCIConfig(t *testing.T) {
	_, err := target.NewOCIObjectStorage(target.OCIConfig{PartSize: 1000, Parallel: -1, Endpoint: "ftp://x", PrivateKeyPassphraseEnv: "UNSET"}, noEnv)
	require.Error(t, err)
	for _, want := range []string{
		"[targets.oci].tenancy: missing", "[targets.oci].user: missing", "[targets.oci].fingerprint: missing",
		"[targets.oci].region: missing", "[targets.oci].namespace: missing", "[targets.oci].bucket: missing",
		"[targets.oci].private_key_file: missing", "[targets.oci].private_key_passphrase_env: the environment variable UNSET is empty or not set",
		`[targets.oci].endpoint: "ftp://x" is not an http(s):// URL`, "[targets.oci].part_size: 1000 is less than 1 MiB",
		"[targets.oci].parallel: must be 1 or more",
	} {
		assert.Contains(t, err.Error(), want)
	}

	srv := targettest.StartOCIObjectStorage(t)
	cfg := srv.Config
	cfg.PrivateKeyFile = filepath.Join(t.TempDir(), "not-a-key.pem")
	require.NoError(t, os.WriteFile(cfg.PrivateKeyFile, []byte("not a key"), 0o600))
	_, err = target.NewOCIObjectStorage(cfg, noEnv)
	assert.ErrorContains(t, err, "[targets.oci].private_key_file: "+cfg.PrivateKeyFile+" is not a usable RSA private key")

	reg, err := target.Build(target.Config{OCI: &srv.Config}, noEnv, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"aws.s3", "local", "oci.objectstorage"}, reg.Types())
	_, err = target.Build(target.Config{OCI: &target.OCIConfig{}}, noEnv, "")
	assert.ErrorContains(t, err, "[targets.oci].tenancy: missing")
}

func TestOCIUploadsSmallImageInOneRequest(t *testing.T) {
	srv := targettest.StartOCIObjectStorage(t)
	o := newOCI(t, srv.Config)
	a, data := rawArtifact(t, "c1", 300<<10)
	var rep recordingReporter
	before := time.Now()
	res, err := o.Upload(context.Background(), a, nil, &rep)
	require.NoError(t, err)

	stored, ok := srv.Object("c1/disk.raw")
	require.True(t, ok, "objects: %v", srv.Objects())
	assert.Equal(t, data, stored)
	assert.Equal(t, []string{"ListMultipartUploads", "HeadObject", "PutObject", "HeadObject", "ListPreauthenticatedRequests", "CreatePreauthenticatedRequest"}, srv.Calls())
	require.NotNil(t, res.ExpiresAt)
	assert.WithinDuration(t, before.Add(target.DefaultOCIPARExpiry), *res.ExpiresAt, time.Minute)
	assert.True(t, strings.HasPrefix(res.URL, srv.URL+"/p/"), res.URL)
	status, got := fetch(t, res.URL)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, data, got, "the link serves the image")
	assert.Equal(t, []string{"kiln-c1 c1/disk.raw"}, srv.PARs())
	assert.Equal(t, []string{target.StepUploading}, rep.steps)
	require.NotEmpty(t, rep.bytes)
	assert.Equal(t, [2]int64{300 << 10, 300 << 10}, rep.bytes[len(rep.bytes)-1])
}

func TestOCIUploadsBigImageInParallelParts(t *testing.T) {
	srv := targettest.StartOCIObjectStorage(t)
	cfg := srv.Config
	cfg.PartSize = 1 << 20
	cfg.PARExpiry = time.Hour
	o := newOCI(t, cfg)
	a, data := rawArtifact(t, "c2", 5<<20+12345)
	srv.FailUploadParts(2)
	var rep recordingReporter
	res, err := o.Upload(context.Background(), a, nil, &rep)
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Failed(), "two parts failed and were tried again")
	stored, ok := srv.Object("c2/disk.raw")
	require.True(t, ok)
	assert.Equal(t, data, stored)
	calls := srv.Calls()
	assert.Equal(t, 6+2, countOf(calls, "UploadPart"), "six parts, two of them twice")
	assert.Equal(t, 1, countOf(calls, "CommitMultipartUpload"))
	assert.Zero(t, countOf(calls, "PutObject"))
	assert.Empty(t, srv.OpenMultipartUploads())
	assert.WithinDuration(t, time.Now().Add(time.Hour), *res.ExpiresAt, time.Minute)
	_, got := fetch(t, res.URL)
	assert.Equal(t, data, got)
	last := rep.bytes[len(rep.bytes)-1]
	assert.Equal(t, [2]int64{a.Size, a.Size}, last)
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// sdkClient is the SDK's own client on the test server, to do what a
// first attempt that died would have left.
func sdkClient(t *testing.T, cfg target.OCIConfig) objectstorage.ObjectStorageClient {
	key, err := os.ReadFile(cfg.PrivateKeyFile)
	require.NoError(t, err)
	c, err := objectstorage.NewObjectStorageClientWithConfigurationProvider(common.NewRawConfigurationProvider(cfg.Tenancy, cfg.User, cfg.Region, cfg.Fingerprint, string(key), nil))
	require.NoError(t, err)
	c.Host = cfg.Endpoint
	return c
}

func TestOCIRequeuedUploadCleansUpAndReuses(t *testing.T) {
	srv := targettest.StartOCIObjectStorage(t)
	cfg := srv.Config
	cfg.PartSize = 1 << 20
	o := newOCI(t, cfg)
	a, data := rawArtifact(t, "c3", 3<<20)

	// A first attempt died after opening a multipart upload and sending a
	// part of it.
	ctx := context.Background()
	c := sdkClient(t, cfg)
	object := "c3/disk.raw"
	ns, bucket := cfg.Namespace, cfg.Bucket
	mu, err := c.CreateMultipartUpload(ctx, objectstorage.CreateMultipartUploadRequest{NamespaceName: &ns, BucketName: &bucket,
		CreateMultipartUploadDetails: objectstorage.CreateMultipartUploadDetails{Object: &object}})
	require.NoError(t, err)
	one, n := 1, int64(4)
	_, err = c.UploadPart(ctx, objectstorage.UploadPartRequest{NamespaceName: &ns, BucketName: &bucket, ObjectName: &object,
		UploadId: mu.UploadId, UploadPartNum: &one, ContentLength: &n, UploadPartBody: io.NopCloser(strings.NewReader("junk"))})
	require.NoError(t, err)
	// Another compose's upload is none of this one's business.
	other := "c9/disk.raw"
	_, err = c.CreateMultipartUpload(ctx, objectstorage.CreateMultipartUploadRequest{NamespaceName: &ns, BucketName: &bucket,
		CreateMultipartUploadDetails: objectstorage.CreateMultipartUploadDetails{Object: &other}})
	require.NoError(t, err)
	require.Len(t, srv.OpenMultipartUploads(), 2)

	res1, err := o.Upload(ctx, a, nil, target.NoReporter{})
	require.NoError(t, err)
	open := srv.OpenMultipartUploads()
	require.Len(t, open, 1)
	assert.True(t, strings.HasPrefix(open[0], "c9/disk.raw "), "only the compose's own leftover is aborted: %v", open)
	stored, _ := srv.Object(object)
	assert.Equal(t, data, stored)

	// The job is requeued once more after the upload went through: the
	// object is reused, and the link replaced.
	before := len(srv.Calls())
	res2, err := o.Upload(ctx, a, nil, target.NoReporter{})
	require.NoError(t, err)
	second := srv.Calls()[before:]
	assert.Zero(t, countOf(second, "UploadPart")+countOf(second, "PutObject")+countOf(second, "CreateMultipartUpload"), "nothing is uploaded twice: %v", second)
	assert.Equal(t, 1, countOf(second, "DeletePreauthenticatedRequest"))
	assert.Equal(t, []string{"c3/disk.raw"}, srv.Objects())
	assert.Equal(t, []string{"kiln-c3 c3/disk.raw"}, srv.PARs(), "one link for the compose")
	status, _ := fetch(t, res1.URL)
	assert.Equal(t, http.StatusNotFound, status, "the first link is gone")
	_, got := fetch(t, res2.URL)
	assert.Equal(t, data, got)
}

// cancelOnPart cancels the upload when the reporter sees the first part
// done.
type cancelOnPart struct {
	target.NoReporter
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancelOnPart) Bytes(done, total int64) {
	if done > 0 {
		c.once.Do(c.cancel)
	}
}

func TestOCIFailures(t *testing.T) {
	t.Run("server down", func(t *testing.T) {
		srv := targettest.StartOCIObjectStorage(t)
		cfg := srv.Config
		cfg.Endpoint = "http://127.0.0.1:1"
		o := newOCI(t, cfg)
		a, _ := rawArtifact(t, "d1", 1024)
		_, err := o.Upload(context.Background(), a, nil, target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "oci.objectstorage: abort the uploads a previous attempt left: ")
		assert.Contains(t, err.Error(), "connection refused")
	})
	t.Run("500 on every part", func(t *testing.T) {
		srv := targettest.StartOCIObjectStorage(t)
		cfg := srv.Config
		cfg.PartSize = 1 << 20
		o := newOCI(t, cfg)
		a, _ := rawArtifact(t, "d2", 3<<20)
		srv.FailUploadParts(-1)
		_, err := o.Upload(context.Background(), a, nil, target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "oci.objectstorage: upload the image: part ")
		assert.Contains(t, err.Error(), "InternalServerError")
		assert.GreaterOrEqual(t, countOf(srv.Calls(), "UploadPart"), 5, "a failed part is tried five times")
		assert.Equal(t, 1, countOf(srv.Calls(), "AbortMultipartUpload"))
		assert.Empty(t, srv.OpenMultipartUploads(), "the multipart upload is aborted")
		assert.Empty(t, srv.Objects())
		assert.Empty(t, srv.PARs())
	})
	t.Run("credentials refused", func(t *testing.T) {
		srv := targettest.StartOCIObjectStorage(t)
		o := newOCI(t, srv.WrongKeyConfig(t))
		a, _ := rawArtifact(t, "d3", 1024)
		_, err := o.Upload(context.Background(), a, nil, target.NoReporter{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "oci.objectstorage: abort the uploads a previous attempt left: ")
		assert.Contains(t, err.Error(), "NotAuthenticated")
		assert.Equal(t, []string{"refused"}, srv.Calls(), "a refused request is not tried again")
		assert.Empty(t, srv.Objects())
	})
	t.Run("canceled mid-upload", func(t *testing.T) {
		srv := targettest.StartOCIObjectStorage(t)
		cfg := srv.Config
		cfg.PartSize = 1 << 20
		cfg.Parallel = 1
		o := newOCI(t, cfg)
		a, _ := rawArtifact(t, "d4", 4<<20)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := o.Upload(ctx, a, nil, &cancelOnPart{cancel: cancel})
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "oci.objectstorage: upload the image: ")
		assert.Less(t, countOf(srv.Calls(), "UploadPart"), 4, "the upload stopped")
		assert.Equal(t, 1, countOf(srv.Calls(), "AbortMultipartUpload"))
		assert.Empty(t, srv.OpenMultipartUploads(), "the canceled upload is aborted")
		assert.Empty(t, srv.Objects())
	})
	t.Run("a file of another size than the build recorded", func(t *testing.T) {
		srv := targettest.StartOCIObjectStorage(t)
		o := newOCI(t, srv.Config)
		a, _ := rawArtifact(t, "d5", 1024)
		a.Size = 2048
		_, err := o.Upload(context.Background(), a, nil, target.NoReporter{})
		assert.EqualError(t, err, "oci.objectstorage: upload the image: disk.raw is 1024 bytes, not the 2048 the build recorded")
	})
}

// corruptingTransport flips a byte of the first UploadPart body it
// carries, as a faulty link would.
type corruptingTransport struct {
	once sync.Once
}

func (c *corruptingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/u/") && req.Body != nil {
		c.once.Do(func() {
			body, _ := io.ReadAll(req.Body)
			req.Body.Close()
			body[len(body)/2] ^= 0xff
			req.Body = io.NopCloser(bytes.NewReader(body))
		})
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestOCIPartCorruptedOnTheWayIsRefusedAndAborted(t *testing.T) {
	srv := targettest.StartOCIObjectStorage(t)
	cfg := srv.Config
	cfg.PartSize = 1 << 20
	o := newOCI(t, cfg)
	target.SetOCIHTTPClient(o, &http.Client{Transport: &corruptingTransport{}})
	a, _ := rawArtifact(t, "e1", 2<<20)
	_, err := o.Upload(context.Background(), a, nil, target.NoReporter{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "oci.objectstorage: upload the image: part ")
	assert.Contains(t, err.Error(), "InvalidContentMD5", "the service checks each part against the MD5 sent with it")
	assert.Empty(t, srv.OpenMultipartUploads())
	assert.Empty(t, srv.Objects())
}

func TestSectionsDecodeFromTOML(t *testing.T) {
	var cfg target.Config
	md, err := toml.Decode(`
[registry]
host = "registry.example.com"
namespace = "kiln"
username = "kiln-push"
password_env = "KILN_REGISTRY_PASSWORD"
jobs = 8
[oci]
tenancy = "ocid1.tenancy.oc1..t"
user = "ocid1.user.oc1..u"
fingerprint = "aa:bb"
private_key_file = "/etc/kiln/oci.pem"
region = "eu-frankfurt-1"
namespace = "ns"
bucket = "images"
par_expiry = "36h"
part_size = 67108864
parallel = 2
`, &cfg)
	require.NoError(t, err)
	assert.Empty(t, md.Undecoded())
	assert.Equal(t, target.RegistryConfig{Host: "registry.example.com", Namespace: "kiln", Username: "kiln-push", PasswordEnv: "KILN_REGISTRY_PASSWORD", Jobs: 8}, *cfg.Registry)
	assert.Equal(t, target.OCIConfig{
		Tenancy: "ocid1.tenancy.oc1..t", User: "ocid1.user.oc1..u", Fingerprint: "aa:bb", PrivateKeyFile: "/etc/kiln/oci.pem",
		Region: "eu-frankfurt-1", Namespace: "ns", Bucket: "images", PARExpiry: 36 * time.Hour, PartSize: 64 << 20, Parallel: 2,
	}, *cfg.OCI)
}
