package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine/stages"
)

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Lstat(a)
	require.NoError(t, err)
	fb, err := os.Lstat(b)
	require.NoError(t, err)
	return os.SameFile(fa, fb)
}

// Cached trees share /usr with the builds that restore them, and an entry
// whose shared files were changed in place is discarded, never reused.
func TestTreeSnapshots(t *testing.T) {
	ctx := context.Background()
	e, err := New(Config{CacheDir: t.TempDir()})
	require.NoError(t, err)
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, stages.WriteFile(src, "/usr/bin/tool", []byte("v1\n"), 0o755))
	require.NoError(t, stages.WriteFile(src, "/etc/conf", []byte("c\n"), 0o600))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(src, "bin")))
	require.NoError(t, os.Chmod(src, 0o751))

	require.NoError(t, e.storeTree(ctx, "k1", src))
	cached, ok := e.cachedTree("k1")
	require.True(t, ok)
	assert.True(t, sameFile(t, filepath.Join(src, "usr/bin/tool"), filepath.Join(cached, "usr/bin/tool")), "/usr is linked")
	assert.False(t, sameFile(t, filepath.Join(src, "etc/conf"), filepath.Join(cached, "etc/conf")), "the rest is copied")
	fi, err := os.Stat(cached)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o751), fi.Mode().Perm(), "the root directory's mode is kept")
	target, err := os.Readlink(filepath.Join(cached, "bin"))
	require.NoError(t, err)
	assert.Equal(t, "usr/bin", target)

	dst := filepath.Join(t.TempDir(), "dst")
	ok, err = e.restoreTree(ctx, "k1", dst)
	require.NoError(t, err)
	require.True(t, ok)
	fi, err = os.Stat(filepath.Join(dst, "etc/conf"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Replacing a shared file, as stages do, leaves the entry intact.
	require.NoError(t, stages.WriteFile(dst, "/usr/bin/tool", []byte("v2\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dst, "etc/conf"), []byte("changed\n"), 0o600))
	_, ok = e.cachedTree("k1")
	require.True(t, ok)
	got, err := os.ReadFile(filepath.Join(cached, "usr/bin/tool"))
	require.NoError(t, err)
	assert.Equal(t, "v1\n", string(got))

	// A finished tree that shares the entry's files unchanged spares the
	// entry its own walk.
	fin := filepath.Join(t.TempDir(), "fin")
	ok, err = e.restoreTree(ctx, "k1", fin)
	require.NoError(t, err)
	require.True(t, ok)
	same, err := linkedDigest(fin)
	require.NoError(t, err)
	e.verifyLinked([]string{"k1"}, same)
	assert.DirExists(t, e.entryPath("k1"))

	// Writing into a shared file changes the entry too: it is discarded,
	// also when the finished tree's digest is given (it shares the file).
	require.NoError(t, os.WriteFile(filepath.Join(src, "usr/bin/tool"), []byte("in place\n"), 0o755))
	changed, err := linkedDigest(fin)
	require.NoError(t, err)
	e.verifyLinked([]string{"k1"}, changed)
	assert.NoDirExists(t, e.entryPath("k1"))
	_, ok = e.cachedTree("k1")
	assert.False(t, ok)
	ok, err = e.restoreTree(ctx, "k1", filepath.Join(t.TempDir(), "again"))
	require.NoError(t, err)
	assert.False(t, ok, "a discarded entry is a miss")
}

// A finished tree moves into the cache; when another build stored the same
// entry first, it stays where it was.
func TestMoveTree(t *testing.T) {
	e, err := New(Config{CacheDir: t.TempDir()})
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, stages.WriteFile(dir, "/etc/hostname", []byte("a\n"), 0o644))
	at, digest, err := e.moveTree("k", dir)
	require.NoError(t, err)
	assert.NotEmpty(t, digest)
	assert.Equal(t, e.treePath("k"), at)
	assert.NoDirExists(t, dir)
	assert.FileExists(t, filepath.Join(at, "etc/hostname"))

	other := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, stages.WriteFile(other, "/etc/hostname", []byte("a\n"), 0o644))
	at, digest, err = e.moveTree("k", other)
	require.NoError(t, err)
	assert.Empty(t, digest, "not stored: no digest")
	assert.Equal(t, other, at)
	assert.FileExists(t, filepath.Join(other, "etc/hostname"))
	entries, err := os.ReadDir(filepath.Join(e.cfg.CacheDir, "trees"))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary entry is left")
}

// Facts are read from the shared /usr only: a finished tree whose linked
// digest another finished tree had takes its facts from the cache, and a
// tree with another /usr is read again.
func TestFactsByLinkedDigest(t *testing.T) {
	reads := 0
	e, err := New(Config{CacheDir: t.TempDir(), TreeFacts: func(tree string) ([]byte, error) {
		reads++
		return os.ReadFile(filepath.Join(tree, "usr/share/doc/p/copyright"))
	}})
	require.NoError(t, err)
	finish := func(key, hostname, license string) []byte {
		dir := filepath.Join(t.TempDir(), "tree")
		require.NoError(t, stages.WriteFile(dir, "/usr/share/doc/p/copyright", []byte(license), 0o644))
		require.NoError(t, os.Chtimes(filepath.Join(dir, "usr/share/doc/p/copyright"), time.Unix(100, 0), time.Unix(100, 0)))
		require.NoError(t, stages.WriteFile(dir, "/etc/hostname", []byte(hostname), 0o644))
		at, digest, err := e.moveTree(key, dir)
		require.NoError(t, err)
		facts := map[string][]byte{}
		require.NoError(t, e.readFacts("os", key, digest, at, facts))
		return facts["os"]
	}
	assert.Equal(t, "MIT", string(finish("k1", "a", "MIT")))
	assert.Equal(t, "MIT", string(finish("k2", "b", "MIT")))
	assert.Equal(t, 1, reads, "the same /usr is not read twice")
	assert.Equal(t, "GPL-2", string(finish("k3", "c", "GPL-2")))
	assert.Equal(t, 2, reads, "another /usr is read")
}
