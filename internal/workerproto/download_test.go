package workerproto_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/workerproto"
)

// A download that breaks off goes on where it stopped with a Range
// request, and the whole is checked against the build's digest.
func TestGetFileResumesABrokenDownload(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	sum := sha256.Sum256(data)
	var mu sync.Mutex
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		first := len(ranges) == 1
		mu.Unlock()
		assert.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
		assert.Equal(t, workerproto.Prefix+"/jobs/j1/files/disk.raw", r.URL.Path)
		if first {
			// Half the file, then the connection drops.
			w.Header().Set("Content-Length", "1048576")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			conn.Close()
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	c := &workerproto.Client{BaseURL: srv.URL, MinBackoff: time.Millisecond}
	path := filepath.Join(t.TempDir(), "disk.raw")
	var last int64
	err := c.GetFile(context.Background(), &workerproto.Job{ID: "j1", Token: "tok"}, "disk.raw", path, int64(len(data)), hex.EncodeToString(sum[:]), func(n int64) { last = n })
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, []string{"", "bytes=524288-"}, ranges, "the second request asked for the rest only")
	assert.Positive(t, last)
}

// A file whose digest is not the build's is refused, and nothing of it
// is kept to go on from.
func TestGetFileRefusesAWrongDigest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("tampered"))
	}))
	defer srv.Close()
	c := &workerproto.Client{BaseURL: srv.URL}
	path := filepath.Join(t.TempDir(), "disk.raw")
	sum := sha256.Sum256([]byte("original"))
	err := c.GetFile(context.Background(), &workerproto.Job{ID: "j1", Token: "tok"}, "disk.raw", path, 8, hex.EncodeToString(sum[:]), nil)
	require.ErrorContains(t, err, "the downloaded image's SHA-256 is")
	fi, statErr := os.Stat(path)
	require.NoError(t, statErr)
	assert.Zero(t, fi.Size())
}
