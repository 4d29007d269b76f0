package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/manifest"
)

// rebuilder builds manifests a second time in an engine cache of its own
// and requires the same bytes as the first build: the proof that an image
// is reproducible from its manifest alone, on any machine. Only the
// package downloads are shared with the first build (they are checked
// against the manifest's digests either way); every tree, file and
// artifact is the second cache's own. The image types a test builds from
// one blueprint share one rebuilder, as the first builds share one cache,
// so their package installation is done once more, not once per type.
type rebuilder struct{ cache string }

// newRebuilder is a rebuilder with a fresh cache.
func newRebuilder(t *testing.T) *rebuilder {
	t.Helper()
	return &rebuilder{cache: sharedCache(t)}
}

// assertRebuildsIdentically builds m again in the rebuilder's cache, with
// epoch as the first build had it (nil: the manifest's own), and asserts
// that the artifact has the SHA-256 of first, the first build's. Both
// hashes and the second build's time are logged; on a mismatch the
// failure names the image type and the first byte offset that differs.
func (r *rebuilder) assertRebuildsIdentically(t *testing.T, m *manifest.Manifest, first string, epoch *time.Time) {
	t.Helper()
	what := m.Output.Filename
	out := t.TempDir()
	start := time.Now()
	second := build(t, m, r.cache, out, epoch)
	took := time.Since(start)
	a, b := sha256File(t, first), sha256File(t, second)
	t.Logf("rebuild of %s in a cache of its own took %s: sha256 %s (first build), %s (second build)",
		what, took.Round(100*time.Millisecond), a, b)
	if a == b {
		return
	}
	off, err := compose.FirstDifference(first, second)
	require.NoError(t, err)
	where := fmt.Sprintf("the first differing byte is at offset %d (%#x)", off, off)
	if off < 0 {
		where = "the bytes agree (the files changed while they were read)"
	}
	assert.Fail(t, "the image is not reproducible",
		"%s: two builds of one manifest in two caches differ: sha256 %s and %s; %s",
		what, a, b, where)
	tail, _ := os.ReadFile(filepath.Join(out, "build.log"))
	if lines := bytes.Split(tail, []byte("\n")); len(lines) > 30 {
		tail = bytes.Join(lines[len(lines)-30:], []byte("\n"))
	}
	t.Logf("end of the second build's log:\n%s", tail)
}

// manifest is the manifest the service built compose id from.
func (k *kiln) manifest(t *testing.T, id string) *manifest.Manifest {
	t.Helper()
	status, body := k.call(t, "GET", "/composes/"+id+"/manifests", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var ms []json.RawMessage
	require.NoError(t, json.Unmarshal(body, &ms))
	require.Len(t, ms, 1)
	m, err := manifest.Parse(ms[0])
	require.NoError(t, err)
	return m
}
