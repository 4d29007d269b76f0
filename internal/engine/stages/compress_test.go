package stages

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// sparseDisk writes a sparse file of size bytes with a few random blocks
// in it and returns its path.
func sparseDisk(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	for _, off := range []int64{0, 1 << 20, size - 64<<10} {
		block := make([]byte, 64<<10)
		_, err := rand.Read(block)
		require.NoError(t, err)
		_, err = f.WriteAt(block, off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	return p
}

// allocated is the number of bytes a file takes on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	out, err := exec.Command("stat", "-c", "%b %B", p).Output()
	require.NoError(t, err)
	var blocks, unit int64
	_, err = fmt.Sscan(string(out), &blocks, &unit)
	require.NoError(t, err)
	return blocks * unit
}

func TestCompress(t *testing.T) {
	t.Parallel()
	requireTools(t, "xz", "zstd", "stat")
	const size = 256 << 20
	input := sparseDisk(t, size)
	require.Less(t, allocated(t, input), int64(1<<20), "the test input is sparse")
	want := sha256File(t, input)
	for _, tc := range []struct{ format, magic string }{
		{"xz", "\xfd7zXZ\x00"},
		{"zstd", "\x28\xb5\x2f\xfd"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			var sums []string
			for i := 0; i < 2; i++ {
				out := filepath.Join(t.TempDir(), "disk.raw."+tc.format)
				env, log := diskEnv(t, input, out)
				require.NoError(t, (&Compress{Opts: manifest.Compress{Format: tc.format}}).Run(context.Background(), env), log.String())
				sums = append(sums, sha256File(t, out))
				data, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.Equal(t, tc.magic, string(data[:len(tc.magic)]))
				assert.Less(t, len(data), 1<<20, "the holes compress to almost nothing")

				restored := filepath.Join(t.TempDir(), "restored")
				f, err := os.Create(restored)
				require.NoError(t, err)
				cmd := exec.Command(tc.format, "-d", "-c", out)
				cmd.Stdout = f
				require.NoError(t, cmd.Run())
				require.NoError(t, f.Close())
				fi, err := os.Stat(restored)
				require.NoError(t, err)
				assert.Equal(t, int64(size), fi.Size())
				assert.Equal(t, want, sha256File(t, restored), "decompressing gives the input back")
			}
			assert.Equal(t, sums[0], sums[1], "the same input gives the same bytes")
		})
	}
}

func TestCompressRejects(t *testing.T) {
	t.Parallel()
	requireTools(t, "xz")
	input := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(input, []byte("disk"), 0o644))
	out := filepath.Join(t.TempDir(), "out")
	for _, format := range []string{"", "gzip", "bzip2", "xz -9"} {
		env, _ := diskEnv(t, input, out)
		assert.ErrorContains(t, (&Compress{Opts: manifest.Compress{Format: format}}).Run(context.Background(), env), `format "`+format+`" is not supported`)
	}
	env, _ := diskEnv(t, filepath.Join(t.TempDir(), "missing"), out)
	assert.ErrorContains(t, (&Compress{Opts: manifest.Compress{Format: "xz"}}).Run(context.Background(), env), "opening the input")
	env, _ = diskEnv(t, t.TempDir(), out)
	assert.ErrorContains(t, (&Compress{Opts: manifest.Compress{Format: "xz"}}).Run(context.Background(), env), "is not a regular file")
	assert.NoFileExists(t, out)

	// A compressor that does not finish leaves no output behind.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env, _ = diskEnv(t, input, out)
	assert.ErrorIs(t, (&Compress{Opts: manifest.Compress{Format: "xz"}}).Run(ctx, env), context.Canceled)
	assert.NoFileExists(t, out)
}
