package stages

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// decompressed returns the tar archive inside a compressed file.
func decompressed(t *testing.T, p, comp string) []byte {
	t.Helper()
	if comp == "" {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		return data
	}
	tool := map[string]string{"gzip": "gzip", "xz": "xz", "zstd": "zstd"}[comp]
	data, err := exec.Command(tool, "-d", "-c", p).Output()
	require.NoError(t, err)
	return data
}

func TestFileArchive(t *testing.T) {
	t.Parallel()
	requireTools(t, "tar", "gzip", "pigz", "xz", "zstd")
	const size = 64 << 20
	input := sparseDisk(t, size)
	want := sha256File(t, input)
	tests := []struct {
		name   string
		opts   manifest.FileArchive
		magic  string // the compressed file's first bytes
		format string // the tar header's magic and version
		typ    byte   // the member's type flag
	}{
		{"gce", manifest.FileArchive{Name: "disk.raw", Format: "oldgnu", Sparse: true, Compression: "gzip"}, "\x1f\x8b", "ustar  \x00", 'S'},
		{"gnu sparse xz", manifest.FileArchive{Name: "disk.img", Format: "gnu", Sparse: true, Compression: "xz"}, "\xfd7zXZ\x00", "ustar  \x00", 'S'},
		{"oldgnu not sparse", manifest.FileArchive{Name: "disk.raw", Format: "oldgnu"}, "", "ustar  \x00", '0'},
		{"posix zstd", manifest.FileArchive{Name: "root.img", Format: "posix", Compression: "zstd"}, "\x28\xb5\x2f\xfd", "ustar\x0000", '0'},
		{"ustar", manifest.FileArchive{Name: "disk.raw", Format: "ustar"}, "", "ustar\x0000", '0'},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sums []string
			for i := 0; i < 2; i++ {
				out := filepath.Join(t.TempDir(), "archive")
				env, log := diskEnv(t, input, out)
				require.NoError(t, (&FileArchive{Opts: tc.opts}).Run(context.Background(), env), log.String())
				sums = append(sums, sha256File(t, out))
				if i > 0 {
					continue
				}
				raw, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.True(t, bytes.HasPrefix(raw, []byte(tc.magic)), "the archive starts with %q", tc.magic)
				tarball := decompressed(t, out, tc.opts.Compression)
				require.Greater(t, len(tarball), 512)
				assert.Equal(t, tc.format, string(tarball[257:265]), "the tar format's magic")
				assert.Equal(t, tc.typ, tarball[156], "the first member's type")
				if tc.opts.Sparse {
					assert.Less(t, len(tarball), 2<<20, "only the data is stored, not the holes")
				}

				listing := strings.TrimSpace(tarList(t, out, tc.opts.Compression, "--numeric-owner", "--full-time", "-tv"))
				assert.Equal(t, 1, len(strings.Split(listing, "\n")), "one member: %s", listing)
				assert.Regexp(t, `^-rw-r--r-- 0/0 +67108864 2023-11-14 22:13:20 `+tc.opts.Name+`$`, listing)

				dir := t.TempDir()
				argv := []string{"tar", "-x", "-f", out, "-C", dir}
				if tc.opts.Compression != "" {
					argv = append(argv, "--use-compress-program="+tc.opts.Compression)
				}
				x, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
				require.NoError(t, err, "%s", x)
				fi, err := os.Stat(filepath.Join(dir, tc.opts.Name))
				require.NoError(t, err)
				assert.Equal(t, int64(size), fi.Size())
				assert.Equal(t, want, sha256File(t, filepath.Join(dir, tc.opts.Name)), "extraction gives the input back")
			}
			assert.Equal(t, sums[0], sums[1], "the same input and epoch give the same bytes")
		})
	}
}

func TestFileArchiveRejects(t *testing.T) {
	t.Parallel()
	input := filepath.Join(t.TempDir(), "disk.raw")
	require.NoError(t, os.WriteFile(input, []byte("disk"), 0o644))
	out := filepath.Join(t.TempDir(), "archive")
	ok := manifest.FileArchive{Name: "disk.raw", Format: "oldgnu", Sparse: true, Compression: "gzip"}
	tests := []struct {
		change func(o *manifest.FileArchive)
		want   string
	}{
		{func(o *manifest.FileArchive) { o.Name = "" }, `name "" is not a plain file name`},
		{func(o *manifest.FileArchive) { o.Name = "../disk.raw" }, `name "../disk.raw" is not a plain file name`},
		{func(o *manifest.FileArchive) { o.Name = ".." }, `name ".." is not a plain file name`},
		{func(o *manifest.FileArchive) { o.Name = "/disk.raw" }, `name "/disk.raw" is not a plain file name`},
		{func(o *manifest.FileArchive) { o.Name = "a/disk.raw" }, `name "a/disk.raw" is not a plain file name`},
		{func(o *manifest.FileArchive) { o.Name = "--to-command=sh" }, `name "--to-command=sh" is not a plain file name`},
		{func(o *manifest.FileArchive) { o.Name = strings.Repeat("d", 101) }, "is not a plain file name"},
		{func(o *manifest.FileArchive) { o.Format = "pax" }, `format "pax" is not supported`},
		{func(o *manifest.FileArchive) { o.Format = "" }, `format "" is not supported`},
		{func(o *manifest.FileArchive) { o.Format = "posix" }, `sparse is not supported with format "posix"`},
		{func(o *manifest.FileArchive) { o.Format = "ustar" }, `sparse is not supported with format "ustar"`},
		{func(o *manifest.FileArchive) { o.Compression = "bzip2" }, `compression "bzip2" is not supported`},
	}
	for _, tc := range tests {
		o := ok
		tc.change(&o)
		env, _ := diskEnv(t, input, out)
		assert.ErrorContains(t, (&FileArchive{Opts: o}).Run(context.Background(), env), tc.want)
	}
	env, _ := diskEnv(t, t.TempDir(), out)
	assert.ErrorContains(t, (&FileArchive{Opts: ok}).Run(context.Background(), env), "is not a regular file")
	assert.NoFileExists(t, out)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env, _ = diskEnv(t, input, out)
	assert.ErrorIs(t, (&FileArchive{Opts: ok}).Run(ctx, env), context.Canceled)
	assert.NoFileExists(t, out)
}
