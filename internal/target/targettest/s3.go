// Package targettest starts the servers the upload targets are tested
// against: S3-protocol servers, emulators, and small servers that speak
// a cloud API's wire protocol where no emulator exists. Each starter
// takes a testing.TB, stops its server when the test ends, and returns
// the target configuration section that reaches it and what a test needs
// to check what landed.
package targettest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/kiln-project/kiln/internal/target"
)

// S3 bucket, region and the credentials StartS3's server accepts.
const (
	S3Bucket          = "kiln-targets"
	S3Region          = "us-east-1"
	S3AccessKeyID     = "KILNTESTACCESSKEY"
	S3SecretAccessKey = "kiln-test-secret-access-key"
	// The environment variables the sections StartS3 gives read the
	// credentials from (see S3Server.Env).
	S3AccessKeyIDEnv     = "KILN_TEST_AWS_ACCESS_KEY_ID"
	S3SecretAccessKeyEnv = "KILN_TEST_AWS_SECRET_ACCESS_KEY"
)

// S3Server is an in-memory S3-protocol server (gofakes3) on loopback,
// with the bucket S3Bucket. In front of gofakes3, which takes any
// credentials, it refuses requests signed (or presigned) with another
// access key than S3AccessKeyID, as S3 does, and it can fail chosen
// upload parts with 500s.
type S3Server struct {
	// URL is the server's endpoint.
	URL string
	// Env holds the credentials under S3AccessKeyIDEnv and
	// S3SecretAccessKeyEnv; EnvFunc reads it.
	Env map[string]string

	backend *s3mem.Backend
	fake    http.Handler
	srv     *httptest.Server

	mu           sync.Mutex
	failParts    map[int]int
	corruptParts map[int]bool
	partAttempts map[int]int
	puts         int
}

// StartS3 starts an S3Server for the test's lifetime.
func StartS3(tb testing.TB) *S3Server {
	tb.Helper()
	s := &S3Server{
		backend:      s3mem.New(),
		failParts:    map[int]int{},
		corruptParts: map[int]bool{},
		partAttempts: map[int]int{},
		Env: map[string]string{
			S3AccessKeyIDEnv:     S3AccessKeyID,
			S3SecretAccessKeyEnv: S3SecretAccessKey,
		},
	}
	if err := s.backend.CreateBucket(S3Bucket); err != nil {
		tb.Fatal(err)
	}
	s.fake = gofakes3.New(s.backend, gofakes3.WithoutVersioning(), gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// Close stops the server now (a test of a server that went away).
func (s *S3Server) Close() { s.srv.Close() }

// EnvFunc reads Env, as target.Build's env.
func (s *S3Server) EnvFunc() target.Env {
	return func(k string) string { return s.Env[k] }
}

// Access is the AWSAccess that reaches the server: its region, the
// credentials through Env, and retries quick enough for a test (3 tries,
// 20ms apart at most).
func (s *S3Server) Access() target.AWSAccess {
	return target.AWSAccess{
		Region:             S3Region,
		AccessKeyIDEnv:     S3AccessKeyIDEnv,
		SecretAccessKeyEnv: S3SecretAccessKeyEnv,
		MaxAttempts:        3,
		MaxBackoff:         target.Duration(20e6),
	}
}

// Endpoint is the S3Endpoint of the server: path-style, 5 MiB parts.
func (s *S3Server) Endpoint() target.S3Endpoint {
	return target.S3Endpoint{Endpoint: s.URL, PathStyle: true, PartSize: 5, Concurrency: 4}
}

// S3Config is a [targets.s3] section delivering to the server.
func (s *S3Server) S3Config() target.S3Config {
	return target.S3Config{Bucket: S3Bucket, Prefix: "images/", AWSAccess: s.Access(), S3Endpoint: s.Endpoint()}
}

// FailPart makes the next times uploads of part number part answer 500.
func (s *S3Server) FailPart(part, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failParts[part] = times
}

// CorruptPart makes the server store part number part with one byte
// changed, as a fault on the way or in the store would, answering as if
// all were well.
func (s *S3Server) CorruptPart(part int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corruptParts[part] = true
}

// PartAttempts is how many times part number part was sent, over all
// multipart uploads.
func (s *S3Server) PartAttempts(part int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partAttempts[part]
}

// Keys lists the bucket's objects.
func (s *S3Server) Keys(tb testing.TB) []string {
	tb.Helper()
	list, err := s.backend.ListBucket(S3Bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		tb.Fatal(err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

// Object is the content of the object at key, or nil when there is none.
func (s *S3Server) Object(tb testing.TB, key string) []byte {
	tb.Helper()
	b, err := s.object(key)
	if err != nil {
		return nil
	}
	return b
}

func (s *S3Server) object(key string) ([]byte, error) {
	obj, err := s.backend.GetObject(S3Bucket, key, nil)
	if err != nil {
		return nil, err
	}
	defer obj.Contents.Close()
	return io.ReadAll(obj.Contents)
}

// ObjectSHA256 is the hex SHA-256 and size of the object at key.
func (s *S3Server) ObjectSHA256(key string) (string, int64, error) {
	b, err := s.object(key)
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b)), nil
}

// OpenUploads lists the keys of the bucket's multipart uploads that were
// neither completed nor aborted, as S3's ListMultipartUploads gives them.
func (s *S3Server) OpenUploads(tb testing.TB) []string {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "/"+S3Bucket+"?uploads", nil)
	rec := httptest.NewRecorder()
	s.listUploads(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("list multipart uploads: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Uploads []struct {
			Key string `xml:"Key"`
		} `xml:"Upload"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		tb.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

func (s *S3Server) serve(w http.ResponseWriter, r *http.Request) {
	if key, ok := accessKeyOf(r); !ok || key != S3AccessKeyID {
		writeS3Error(w, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return
	}
	if r.Method == http.MethodPut && r.URL.Query().Get("uploadId") != "" {
		part, _ := strconv.Atoi(r.URL.Query().Get("partNumber"))
		s.mu.Lock()
		s.partAttempts[part]++
		fail := s.failParts[part] > 0
		if fail {
			s.failParts[part]--
		}
		corrupt := s.corruptParts[part]
		s.mu.Unlock()
		if corrupt {
			b, err := io.ReadAll(r.Body)
			if err == nil && len(b) > 0 {
				b[len(b)/2] ^= 0xff
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		if fail {
			_, _ = io.Copy(io.Discard, r.Body)
			writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			return
		}
	}
	if _, list := r.URL.Query()["uploads"]; list && r.Method == http.MethodGet {
		s.listUploads(w, r)
		return
	}
	s.fake.ServeHTTP(w, r)
}

// listUploads answers ListMultipartUploads. gofakes3 answers NoSuchUpload
// for a bucket that never had a multipart upload; S3 answers an empty
// list, as this does.
func (s *S3Server) listUploads(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	s.fake.ServeHTTP(rec, r)
	if rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), "<Code>NoSuchUpload</Code>") {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`, S3Bucket)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// accessKeyOf is the access key a SigV4 request was signed with, from
// its Authorization header or, presigned, its X-Amz-Credential.
func accessKeyOf(r *http.Request) (string, bool) {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
			return "", false
		}
		_, rest, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return "", false
		}
		cred, _, _ = strings.Cut(rest, ",")
	}
	key, scope, ok := strings.Cut(cred, "/")
	if !ok || strings.Count(scope, "/") != 3 || !strings.HasSuffix(scope, "/aws4_request") {
		return "", false
	}
	return key, true
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>kiln-test</RequestId></Error>`, code, msg)
}
