package target_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
)

// testImage writes size bytes of pseudo-random disk to a file and gives
// the artifact of it; the bytes differ by seed, so a mixed-up part shows.
func testImage(t testing.TB, composeID string, size int64, img target.Image) (target.Artifact, []byte) {
	t.Helper()
	b := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)})
	_, _ = rng.Read(b)
	p := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	sum := sha256.Sum256(b)
	return target.Artifact{
		ComposeID: composeID, Name: "kiln-" + composeID, Filename: "disk.raw",
		Path: p, Size: size, SHA256: hex.EncodeToString(sum[:]), Image: img,
	}, b
}

// recorder is a Reporter that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	steps   []string
	done    int64
	total   int64
	onBytes func()
}

func (r *recorder) Step(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.steps) == 0 || r.steps[len(r.steps)-1] != s {
		r.steps = append(r.steps, s)
	}
}

func (r *recorder) Bytes(done, total int64) {
	r.mu.Lock()
	r.done, r.total = done, total
	f := r.onBytes
	r.mu.Unlock()
	if f != nil {
		f()
	}
}

var rawDisk = target.Image{Type: "ami", Format: "raw", BootMode: "hybrid", Arch: "x86_64"}

func newS3Target(t *testing.T, srv *targettest.S3Server, cfg target.S3Config) target.Target {
	t.Helper()
	reg, err := target.Build(target.Config{S3: &cfg}, srv.EnvFunc(), "")
	require.NoError(t, err)
	tg, err := reg.Lookup("aws.s3")
	require.NoError(t, err)
	return tg
}

func TestS3UploadsInPartsAndGivesASignedLink(t *testing.T) {
	srv := targettest.StartS3(t)
	tg := newS3Target(t, srv, srv.S3Config())
	assert.True(t, target.WantsFile(tg), "the configured aws.s3 uploads the file")
	assert.NoError(t, tg.Check(rawDisk, nil))
	assert.EqualError(t, tg.Check(rawDisk, json.RawMessage(`{"region":"x"}`)), "options.region: this upload type takes no options")

	a, want := testImage(t, "c-s3", 12*1024*1024+123, rawDisk)
	rec := &recorder{}
	before := time.Now()
	res, err := tg.Upload(context.Background(), a, nil, rec)
	require.NoError(t, err)

	assert.Equal(t, want, srv.Object(t, "images/c-s3/disk.raw"), "object bytes = image bytes")
	assert.Empty(t, srv.OpenUploads(t))
	for part := 1; part <= 3; part++ {
		assert.Equal(t, 1, srv.PartAttempts(part), "part %d", part)
	}
	assert.Equal(t, 0, srv.PartAttempts(4), "12 MiB in 5 MiB parts is three parts")
	assert.Equal(t, []string{target.StepUploading}, rec.steps)
	assert.Equal(t, a.Size, rec.done)
	assert.Equal(t, a.Size, rec.total)

	require.NotNil(t, res.ExpiresAt)
	assert.WithinDuration(t, before.Add(7*24*time.Hour), *res.ExpiresAt, time.Minute)
	assert.Contains(t, res.URL, "X-Amz-Expires=604800")
	resp, err := http.Get(res.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(got))
	assert.Equal(t, want, got, "the link gives the image")
}

func TestS3SmallImageIsOnePut(t *testing.T) {
	srv := targettest.StartS3(t)
	cfg := srv.S3Config()
	cfg.Expiry = target.Duration(time.Hour)
	tg := newS3Target(t, srv, cfg)
	a, want := testImage(t, "c-small", 1024*1024, rawDisk)
	res, err := tg.Upload(context.Background(), a, nil, &recorder{})
	require.NoError(t, err)
	assert.Equal(t, want, srv.Object(t, "images/c-small/disk.raw"))
	assert.Equal(t, 0, srv.PartAttempts(1), "no multipart upload for one part's worth")
	assert.Contains(t, res.URL, "X-Amz-Expires=3600")
}

func TestS3RetriesAFailedPart(t *testing.T) {
	srv := targettest.StartS3(t)
	tg := newS3Target(t, srv, srv.S3Config())
	srv.FailPart(2, 1)
	a, want := testImage(t, "c-retry", 11*1024*1024, rawDisk)
	_, err := tg.Upload(context.Background(), a, nil, &recorder{})
	require.NoError(t, err)
	assert.Equal(t, 2, srv.PartAttempts(2), "the 500 was retried")
	assert.Equal(t, want, srv.Object(t, "images/c-retry/disk.raw"))
}

// s3Failure checks a failed upload: its error names the target and the
// step, and it left no multipart upload open and no object.
func s3Failure(t *testing.T, srv *targettest.S3Server, err error, step string) {
	t.Helper()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "aws.s3: "+step+": "), "error %q names aws.s3 and %q", err, step)
	var se *target.StepError
	assert.ErrorAs(t, err, &se)
	assert.Empty(t, srv.OpenUploads(t), "no multipart upload left open")
	assert.Empty(t, srv.Keys(t), "no object left")
}

func TestS3Failures(t *testing.T) {
	t.Run("a part fails for good", func(t *testing.T) {
		srv := targettest.StartS3(t)
		tg := newS3Target(t, srv, srv.S3Config())
		srv.FailPart(2, 1000)
		a, _ := testImage(t, "c-500", 11*1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		s3Failure(t, srv, err, "upload the image")
		assert.Contains(t, err.Error(), "InternalError")
		assert.Equal(t, 3, srv.PartAttempts(2), "tried max_attempts times")
	})
	t.Run("credentials refused", func(t *testing.T) {
		srv := targettest.StartS3(t)
		srv.Env[targettest.S3AccessKeyIDEnv] = "SOMEONEELSE"
		tg := newS3Target(t, srv, srv.S3Config())
		a, _ := testImage(t, "c-creds", 6*1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		s3Failure(t, srv, err, "upload the image")
		assert.Contains(t, err.Error(), "InvalidAccessKeyId")
	})
	t.Run("server down", func(t *testing.T) {
		srv := targettest.StartS3(t)
		tg := newS3Target(t, srv, srv.S3Config())
		srv.Close()
		a, _ := testImage(t, "c-down", 6*1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "aws.s3: upload the image: "), err.Error())
		assert.Contains(t, err.Error(), "connect")
	})
	t.Run("a part lands changed", func(t *testing.T) {
		srv := targettest.StartS3(t)
		tg := newS3Target(t, srv, srv.S3Config())
		srv.CorruptPart(2)
		a, _ := testImage(t, "c-corrupt", 11*1024*1024, rawDisk)
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		s3Failure(t, srv, err, "upload the image")
		assert.Contains(t, err.Error(), "check what landed: the object's ETag is")
	})
	t.Run("canceled", func(t *testing.T) {
		srv := targettest.StartS3(t)
		tg := newS3Target(t, srv, srv.S3Config())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := &recorder{onBytes: cancel}
		a, _ := testImage(t, "c-cancel", 26*1024*1024, rawDisk)
		_, err := tg.Upload(ctx, a, nil, rec)
		s3Failure(t, srv, err, "upload the image")
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestS3RequeueStartsCleanly(t *testing.T) {
	srv := targettest.StartS3(t)
	tg := newS3Target(t, srv, srv.S3Config())
	a, want := testImage(t, "c-requeue", 11*1024*1024, rawDisk)

	// What a worker that died mid-upload leaves: an open multipart
	// upload of the compose's key with a part in it.
	client := s3.New(s3.Options{
		Region: targettest.S3Region, BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(targettest.S3AccessKeyID, targettest.S3SecretAccessKey, ""),
	})
	key := "images/c-requeue/disk.raw"
	mu, err := client.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(targettest.S3Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	_, err = client.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: aws.String(targettest.S3Bucket), Key: aws.String(key), UploadId: mu.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader(strings.Repeat("x", 5*1024*1024))})
	require.NoError(t, err)
	require.Equal(t, []string{key}, srv.OpenUploads(t))

	for range 2 {
		_, err := tg.Upload(context.Background(), a, nil, &recorder{})
		require.NoError(t, err)
	}
	assert.Empty(t, srv.OpenUploads(t), "the dead worker's upload was aborted")
	assert.Equal(t, []string{key}, srv.Keys(t), "one object per compose, however often it is uploaded")
	assert.Equal(t, want, srv.Object(t, key))
}

func TestS3Configuration(t *testing.T) {
	var cfg target.Config
	_, err := toml.Decode(`
[s3]
bucket = "images"
prefix = "p/"
region = "eu-west-1"
endpoint = "http://127.0.0.1:9000"
path_style = true
expiry = "48h"
part_size_mib = 32
concurrency = 4
access_key_id_env = "MY_KEY"
secret_access_key_env = "MY_SECRET"
`, &cfg)
	require.NoError(t, err)
	require.NotNil(t, cfg.S3)
	assert.Equal(t, target.S3Config{
		Bucket: "images", Prefix: "p/", Expiry: target.Duration(48 * time.Hour),
		AWSAccess:  target.AWSAccess{Region: "eu-west-1", AccessKeyIDEnv: "MY_KEY", SecretAccessKeyEnv: "MY_SECRET"},
		S3Endpoint: target.S3Endpoint{Endpoint: "http://127.0.0.1:9000", PathStyle: true, PartSize: 32, Concurrency: 4},
	}, *cfg.S3)

	env := func(k string) string { return map[string]string{"MY_KEY": "k", "MY_SECRET": "s"}[k] }
	_, err = target.Build(cfg, env, "")
	require.NoError(t, err)

	_, err = target.Build(target.Config{S3: &target.S3Config{Expiry: target.Duration(8 * 24 * time.Hour), AWSAccess: target.AWSAccess{AccessKeyIDEnv: "MY_KEY"}, S3Endpoint: target.S3Endpoint{PartSize: 1}}}, env, "")
	require.Error(t, err)
	for _, want := range []string{
		"[targets.s3] bucket: required",
		"[targets.s3] region: required",
		"[targets.s3] expiry: 192h0m0s is out of range",
		"[targets.s3] access_key_id_env, secret_access_key_env: set both or neither",
		"[targets.s3] part_size_mib: at least 5",
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = target.Build(cfg, func(string) string { return "" }, "")
	assert.ErrorContains(t, err, "the environment variables MY_KEY and MY_SECRET must both be set")
}
