package worker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/workerproto"
)

// The build log tenants read names none of the worker's directories,
// even when a path arrives split across writes; nor does a failure.
func TestBuildLogsHideTheWorkersPaths(t *testing.T) {
	var mu sync.Mutex
	var got strings.Builder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got.Write(b)
		mu.Unlock()
	}))
	defer srv.Close()
	cache := filepath.Join(t.TempDir(), "kiln-cache")
	l := &logStream{ctx: context.Background(), client: &workerproto.Client{BaseURL: srv.URL}, job: &workerproto.Job{ID: "j", Token: "t"},
		scrub: hostPaths(cache), last: time.Now().Add(-time.Hour)}
	tree := cache + "/work/build-1234/tree"
	half := len(tree) / 2
	_, err := io.WriteString(l, "== os: org.kiln.mmdebstrap\nI: extracting into "+tree[:half])
	require.NoError(t, err)
	_, err = io.WriteString(l, tree[half:]+"/usr\nfetched "+cache+"/debs/ab/abcd.deb\nno newline "+cache)
	require.NoError(t, err)
	l.Flush()
	mu.Lock()
	log := got.String()
	mu.Unlock()
	assert.NotContains(t, log, cache)
	assert.Contains(t, log, "I: extracting into <work>/build-1234/tree/usr\n")
	assert.Contains(t, log, "fetched <cache>/debs/ab/abcd.deb\n")
	assert.True(t, strings.HasSuffix(log, "no newline <cache>"), log)

	w := &Worker{scrub: hostPaths(cache)}
	assert.Equal(t, "mkfs.ext4: <work>/x/disk.img: No space left on device", w.scrub.Replace("mkfs.ext4: "+cache+"/work/x/disk.img: No space left on device"))
}
