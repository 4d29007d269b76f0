package testhost

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3Bucket is the bucket StartS3 creates.
const S3Bucket = "kiln-test"

// StartS3 serves an in-memory S3-compatible server on loopback for the
// test's lifetime, with the bucket S3Bucket. It returns the artifact store
// spec that uses it (s3://kiln-test/artifacts?endpoint=...) and the
// environment that holds its credentials, which it also sets for the test
// (so the test cannot run in parallel); processes the test starts need env
// passed on. The server accepts any credentials and does not check
// signatures, presigned URLs' included.
func StartS3(tb testing.TB) (spec string, env map[string]string) {
	tb.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(S3Bucket); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithoutVersioning()).Server())
	tb.Cleanup(srv.Close)
	env = map[string]string{
		"AWS_ACCESS_KEY_ID":     "kiln-test-key",
		"AWS_SECRET_ACCESS_KEY": "kiln-test-secret",
	}
	for k, v := range env {
		tb.Setenv(k, v)
	}
	return "s3://" + S3Bucket + "/artifacts?endpoint=" + srv.URL + "&region=us-east-1", env
}
