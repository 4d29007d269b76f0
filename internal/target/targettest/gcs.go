package targettest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// GCS is fake-gcs-server (its library, fakestorage) serving Cloud
// Storage's JSON API on a loopback port, with one bucket, behind a front
// that can check each request's bearer token and fail upload requests on
// demand. Start it with StartGCS.
type GCS struct {
	// URL is the server's address, for a storage_endpoint.
	URL string
	// Bucket is the bucket made at the start.
	Bucket string
	// Server is the fake itself, to read and list objects.
	Server *fakestorage.Server

	tb   testing.TB
	http *httptest.Server

	mu sync.Mutex
	// authorize, when set, checks a request's bearer token.
	authorize func(token string) bool
	uploads   int
	failAfter int
	failTimes int
	failCode  int
	composes  []int
	sessions  map[string]bool
}

// StartGCS starts a GCS server with the bucket "kiln-images". It stops
// when the test ends.
func StartGCS(tb testing.TB) *GCS {
	tb.Helper()
	g := &GCS{tb: tb, Bucket: "kiln-images", sessions: map[string]bool{}}
	g.http = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	g.http.Start()
	g.URL = g.http.URL
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		NoListener:  true,
		ExternalURL: g.URL,
		PublicHost:  strings.TrimPrefix(g.URL, "http://"),
	})
	if err != nil {
		g.http.Close()
		tb.Fatalf("start fake-gcs-server: %v", err)
	}
	g.Server = srv
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: g.Bucket})
	tb.Cleanup(func() {
		g.http.Close()
		srv.Stop()
	})
	return g
}

// Stop stops listening: later requests find nothing there (a test of a
// server that is down). The objects can still be read.
func (g *GCS) Stop() {
	g.http.Close()
}

// RequireToken makes every request carry a bearer token that authorize
// accepts; others are answered 401 and fail the test.
func (g *GCS) RequireToken(authorize func(token string) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.authorize = authorize
}

// FailUploads answers upload requests (an upload's start and each of its
// chunks) with status code: the first `after` go through, then the next
// `times` fail (times < 0: all of them).
func (g *GCS) FailUploads(after, times, code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.uploads, g.failAfter, g.failTimes, g.failCode = 0, after, times, code
}

// FailComposes answers the next compose requests with these status
// codes, one a request.
func (g *GCS) FailComposes(codes ...int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.composes = append(g.composes, codes...)
}

// UploadRequests counts the upload requests since the last FailUploads.
func (g *GCS) UploadRequests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.uploads
}

// Objects lists the bucket's object names, sorted.
func (g *GCS) Objects() []string {
	g.tb.Helper()
	objs, _, err := g.Server.ListObjectsWithOptions(g.Bucket, fakestorage.ListOptions{})
	if err != nil {
		g.tb.Fatalf("list the bucket: %v", err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return names
}

// ObjectSHA256 is the hex SHA-256 of an object's content.
func (g *GCS) ObjectSHA256(bucket, name string) (string, int64, error) {
	obj, err := g.Server.GetObject(bucket, name)
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(obj.Content)
	return hex.EncodeToString(sum[:]), int64(len(obj.Content)), nil
}

// Object is an object's content.
func (g *GCS) Object(bucket, name string) ([]byte, error) {
	obj, err := g.Server.GetObject(bucket, name)
	if err != nil {
		return nil, err
	}
	return obj.Content, nil
}

// OpenSessions are the resumable upload sessions started and neither
// finished nor canceled.
func (g *GCS) OpenSessions() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []string
	for id, open := range g.sessions {
		if open {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (g *GCS) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	authorize := g.authorize
	upload := strings.HasPrefix(r.URL.Path, "/upload/")
	fail := 0
	if upload {
		g.uploads++
		if g.uploads > g.failAfter && g.failTimes != 0 {
			fail = g.failCode
			if g.failTimes > 0 {
				g.failTimes--
			}
		}
	}
	if strings.HasSuffix(r.URL.Path, "/compose") && len(g.composes) > 0 {
		fail, g.composes = g.composes[0], g.composes[1:]
	}
	g.mu.Unlock()
	if authorize != nil {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !authorize(token) {
			g.tb.Errorf("GCS: %s %s without a valid bearer token", r.Method, r.URL.Path)
			googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
			return
		}
	}
	if fail != 0 {
		googleError(w, fail, "backendError", fmt.Sprintf("injected failure %d", fail))
		return
	}
	if upload {
		g.trackSession(w, r)
		return
	}
	g.Server.HTTPHandler().ServeHTTP(w, r)
}

// trackSession passes an upload request on, noting the resumable
// sessions it starts and ends.
func (g *GCS) trackSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := &statusRecorder{ResponseWriter: w}
	g.Server.HTTPHandler().ServeHTTP(rec, r)
	g.mu.Lock()
	defer g.mu.Unlock()
	if q.Get("uploadType") != "resumable" {
		return
	}
	if id := q.Get("upload_id"); id != "" {
		if r.Method == http.MethodDelete || rec.code == http.StatusOK || rec.code == http.StatusCreated {
			g.sessions[id] = false
		}
		return
	}
	if loc := rec.Header().Get("Location"); loc != "" {
		if i := strings.Index(loc, "upload_id="); i >= 0 {
			id, _, _ := strings.Cut(loc[i+len("upload_id="):], "&")
			g.sessions[id] = true
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// googleError answers as Google's JSON APIs do.
func googleError(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"reason":%q,"message":%q}]}}`, code, msg, reason, msg)
}
