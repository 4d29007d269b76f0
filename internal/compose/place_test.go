package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A rebuild keeps the copy of the cached artifact an earlier build made,
// and copies again whenever the copy or its source is not what was
// recorded.
func TestPlaceArtifactKeepsOnlyAnUntouchedCopy(t *testing.T) {
	ctx := context.Background()
	cache, out := t.TempDir(), t.TempDir()
	src := filepath.Join(cache, "files", "k", "img.qcow2")
	require.NoError(t, os.MkdirAll(filepath.Dir(src), 0o755))
	require.NoError(t, os.WriteFile(src, []byte("image one"), 0o644))
	dst := filepath.Join(out, "img.qcow2")

	copied, err := placeArtifact(ctx, cache, src, dst)
	require.NoError(t, err)
	assert.True(t, copied, "nothing there yet")
	copied, err = placeArtifact(ctx, cache, src, dst)
	require.NoError(t, err)
	assert.False(t, copied, "the untouched copy is kept")

	// Written in place with the same size (as a booted qemu would): copied
	// again, whatever its times say.
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("IMAGE"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	old := time.Unix(1000, 0)
	require.NoError(t, os.Chtimes(dst, old, old))
	copied, err = placeArtifact(ctx, cache, src, dst)
	require.NoError(t, err)
	assert.True(t, copied)
	b, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "image one", string(b))

	// Replaced by another file: copied again.
	require.NoError(t, os.Remove(dst))
	require.NoError(t, os.WriteFile(dst, []byte("other one"), 0o644))
	copied, err = placeArtifact(ctx, cache, src, dst)
	require.NoError(t, err)
	assert.True(t, copied)

	// Another cached file (another build's artifact) at the same path:
	// copied.
	src2 := filepath.Join(cache, "files", "k2", "img.qcow2")
	require.NoError(t, os.MkdirAll(filepath.Dir(src2), 0o755))
	require.NoError(t, os.WriteFile(src2, []byte("image two"), 0o644))
	copied, err = placeArtifact(ctx, cache, src2, dst)
	require.NoError(t, err)
	assert.True(t, copied)
	b, err = os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "image two", string(b))
	copied, err = placeArtifact(ctx, cache, src2, dst)
	require.NoError(t, err)
	assert.False(t, copied)
}
