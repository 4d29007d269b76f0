package stages

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// mixedData is size bytes of data that compresses the way an image does:
// runs of words (text, tables), runs of random bytes (compressed files,
// keys) and runs of zeros, from a fixed seed.
func mixedData(size int) []byte {
	r := mrand.New(mrand.NewPCG(20, 3))
	words := strings.Fields("kiln image build manifest stage tree disk root usr lib bin etc systemd debian package compress thread block")
	var b bytes.Buffer
	for b.Len() < size {
		switch n := 4096 + r.IntN(64<<10); r.IntN(3) {
		case 0:
			for end := b.Len() + n; b.Len() < end; {
				b.WriteString(words[r.IntN(len(words))])
				b.WriteByte(" \n\t/"[r.IntN(4)])
			}
		case 1:
			chunk := make([]byte, n)
			for i := range chunk {
				chunk[i] = byte(r.Uint32())
			}
			b.Write(chunk)
		default:
			b.Write(make([]byte, n))
		}
	}
	return b.Bytes()[:size]
}

// The compressors' output must not depend on the number of threads, or
// the same image built on machines with different processor counts would
// differ. Each codec is run as the stages run it, with one thread and with
// several, on more data than one of its blocks or jobs holds.
func TestCompressorsIgnoreThreadCount(t *testing.T) {
	t.Parallel()
	requireTools(t, "xz", "pigz", "zstd")
	input := filepath.Join(t.TempDir(), "input")
	require.NoError(t, os.WriteFile(input, mixedData(40<<20), 0o644))
	want := sha256File(t, input)
	for _, comp := range []string{"xz", "gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			t.Parallel()
			var first string
			for _, threads := range []int{1, 2, 5} {
				argv := compressorCommand(comp, threads)
				require.NotNil(t, argv)
				out := filepath.Join(t.TempDir(), "out")
				in, err := os.Open(input)
				require.NoError(t, err)
				f, err := os.Create(out)
				require.NoError(t, err)
				var msg bytes.Buffer
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = in, f, &msg
				err = cmd.Run()
				in.Close()
				require.NoError(t, f.Close())
				require.NoError(t, err, "%v: %s", argv, msg.String())
				sum := sha256File(t, out)
				if threads == 1 {
					first = sum
					restored := filepath.Join(t.TempDir(), "restored")
					r, err := os.Create(restored)
					require.NoError(t, err)
					tool := map[string]string{"xz": "xz", "gzip": "gzip", "zstd": "zstd"}[comp]
					d := exec.Command(tool, "-d", "-c", out)
					d.Stdout = r
					require.NoError(t, d.Run())
					require.NoError(t, r.Close())
					require.Equal(t, want, sha256File(t, restored), "decompressing gives the input back")
					if comp == "xz" {
						// More than one block: the threads had work to share.
						list, err := exec.Command("xz", "--robot", "--list", out).Output()
						require.NoError(t, err)
						assert.Regexp(t, `(?m)^file\t1\t[3-9]\t`, string(list), "blocks of %s", list)
					}
					continue
				}
				assert.Equal(t, first, sum, "%v gives the bytes it gives with one thread", argv)
			}
		})
	}
}

// The tools' own option variables must not reach them.
func TestToolEnvDropsOptionVariables(t *testing.T) {
	t.Setenv("XZ_OPT", "-9e")
	t.Setenv("ZSTD_CLEVEL", "19")
	t.Setenv("TAR_OPTIONS", "--owner=7")
	t.Setenv("KILN_KEPT", "yes")
	env := strings.Join(toolEnv(), "\n")
	assert.NotContains(t, env, "XZ_OPT")
	assert.NotContains(t, env, "ZSTD_CLEVEL")
	assert.NotContains(t, env, "TAR_OPTIONS")
	assert.Contains(t, env, "KILN_KEPT=yes")
}
