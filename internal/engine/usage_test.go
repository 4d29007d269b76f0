package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPruneEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	mk := func(rel string, size int, age time.Duration) string {
		p := filepath.Join(cache, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{1}, size), 0o644))
		when := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(p, when, when))
		return p
	}
	oldDeb := mk("debs/aa/old.deb", 64<<10, 3*time.Hour)
	newDeb := mk("debs/bb/new.deb", 64<<10, time.Minute)
	oldTree := filepath.Join(cache, "trees", "k1")
	mk("trees/k1/etc/file", 64<<10, 2*time.Hour)
	require.NoError(t, os.Chtimes(oldTree, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)))
	meta := mk("metadata/m1/lists", 64<<10, 5*time.Hour)
	require.NoError(t, os.Chtimes(filepath.Dir(meta), time.Now().Add(-5*time.Hour), time.Now().Add(-5*time.Hour)))

	entries, err := Entries(cache)
	require.NoError(t, err)
	require.Len(t, entries, 4)
	assert.Equal(t, "metadata", entries[0].Kind, "least recently used first")

	removed, err := Prune(cache, 210<<10) // the four entries take about 268 KiB on disk
	require.NoError(t, err)
	var paths []string
	for _, e := range removed {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{oldDeb}, paths, "the oldest package goes; metadata is kept")
	for _, p := range []string{newDeb, oldTree, meta} {
		_, err := os.Stat(p)
		assert.NoError(t, err, p)
	}

	removed, err = Prune(cache, 0)
	require.NoError(t, err)
	assert.Len(t, removed, 2)
	_, err = os.Stat(meta)
	assert.NoError(t, err, "metadata belongs to the package solver")
}

func TestReporters(t *testing.T) {
	t.Parallel()
	var plain bytes.Buffer
	r := NewTextReporter(&plain, false)
	r.Report(Event{Kind: Download, Done: 0, Size: 100 << 20})
	r.Report(Event{Kind: Download, Done: 55 << 20, Size: 100 << 20})
	r.Report(Event{Kind: Download, Done: 100 << 20, Size: 100 << 20})
	r.Report(Event{Kind: StageStart, Pipeline: "os", Stage: "kiln.hostname", Index: 3, Total: 9})
	r.Report(Event{Kind: StageDone, Pipeline: "os", Stage: "kiln.hostname", Index: 3, Total: 9, Elapsed: 1500 * time.Millisecond})
	r.Report(Event{Kind: StageCached, Pipeline: "os", Stage: "kiln.debs.install", Index: 1, Total: 9})
	out := plain.String()
	assert.Contains(t, out, "downloading packages: 55% (55.0 MiB of 100.0 MiB)")
	assert.Contains(t, out, "[3/9] os: kiln.hostname 1.5s\n")
	assert.Contains(t, out, "[1/9] os: kiln.debs.install cached\n")
	assert.NotContains(t, out, "\r", "no terminal control when not on a terminal")

	var live bytes.Buffer
	NewTextReporter(&live, true).Report(Event{Kind: Download, Done: 100, Size: 100})
	assert.Contains(t, live.String(), "\r  downloading packages [####################] 100%")

	var js bytes.Buffer
	NewJSONReporter(&js).Report(Event{Kind: StageDone, Pipeline: "os", Stage: "kiln.users", Index: 2, Total: 5})
	assert.True(t, strings.HasPrefix(js.String(), `{"time":`))
	assert.Contains(t, js.String(), `"kind":"stage-done","pipeline":"os","stage":"kiln.users","index":2,"total":5`)
}
