package stages

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// tarTree is a small tree with what tar must keep: owners, modes, links,
// a hard link and an extended attribute.
func tarTree(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	writeTree(t, tree, "/etc/hostname", "kiln\n")
	writeTree(t, tree, "/usr/bin/tool", "#!/bin/sh\n")
	writeTree(t, tree, "/home/u/notes", "hello\n")
	require.NoError(t, os.Chmod(filepath.Join(tree, "usr/bin/tool"), os.ModeSetuid|0o755))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(tree, "bin")))
	require.NoError(t, os.Link(filepath.Join(tree, "etc/hostname"), filepath.Join(tree, "etc/hostname.hard")))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Lchown(filepath.Join(tree, "home/u"), 1000, 1000))
		require.NoError(t, os.Lchown(filepath.Join(tree, "home/u/notes"), 1000, 1000))
	}
	// Files newer than the epoch are clamped, older ones keep their time.
	old := time.Unix(1500000000, 0)
	require.NoError(t, os.Chtimes(filepath.Join(tree, "etc/hostname"), old, old))
	require.NoError(t, syscall.Setxattr(filepath.Join(tree, "home/u/notes"), "user.kiln", []byte("yes"), 0))
	return tree
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func TestTarArchiveIsReproducible(t *testing.T) {
	t.Parallel()
	requireTools(t, "tar", "xz", "gzip", "pigz", "zstd")
	tree := tarTree(t)
	for _, comp := range []string{"", "gzip", "xz", "zstd"} {
		t.Run(orNone(comp), func(t *testing.T) {
			t.Parallel()
			var sums []string
			for i := 0; i < 2; i++ {
				out := filepath.Join(t.TempDir(), "archive")
				env, log := diskEnv(t, tree, out)
				require.NoError(t, (&TarArchive{Opts: manifest.TarArchive{Compression: comp}}).Run(context.Background(), env), log.String())
				sums = append(sums, sha256File(t, out))
				if i == 0 {
					listing := tarListing(t, out, comp)
					assert.Contains(t, listing, "-rwsr-xr-x 0/0")
					assert.Contains(t, listing, "./usr/bin/tool")
					assert.Contains(t, listing, "./bin -> usr/bin")
					assert.Contains(t, listing, "./etc/hostname.hard link to ./etc/hostname")
					assert.Contains(t, listing, "2017-07-14", "older files keep their time")
					assert.Contains(t, listing, "2023-11-14", "newer files are clamped to the epoch")
					if os.Geteuid() == 0 {
						assert.Contains(t, listing, "1000/1000")
					}
					assert.NotContains(t, listing, "PaxHeaders.")
					assert.Contains(t, tarXattrs(t, out, comp), "x: 3 user.kiln")
				}
			}
			assert.Equal(t, sums[0], sums[1], "the same tree and epoch give the same bytes")
		})
	}
}

func tarListing(t *testing.T, archive, comp string) string {
	t.Helper()
	return tarList(t, archive, comp, "--numeric-owner", "--full-time", "-tv")
}

// tarXattrs lists the archive's extended attributes.
func tarXattrs(t *testing.T, archive, comp string) string {
	t.Helper()
	return tarList(t, archive, comp, "--xattrs", "--xattrs-include=*", "-tvv")
}

func tarList(t *testing.T, archive, comp string, opts ...string) string {
	t.Helper()
	argv := append(append([]string{"tar"}, opts...), "-f", archive)
	switch comp {
	case "xz":
		argv = append(argv, "-J")
	case "gzip":
		argv = append(argv, "-z")
	case "zstd":
		argv = append(argv, "--zstd")
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.ReplaceAll(string(out), "\t", " ")
}

func TestTarArchiveRejects(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "archive")
	env, _ := diskEnv(t, t.TempDir(), out)
	assert.ErrorContains(t, (&TarArchive{Opts: manifest.TarArchive{Compression: "bzip2"}}).Run(context.Background(), env), `compression "bzip2" is not supported`)
	env.Input = filepath.Join(t.TempDir(), "missing")
	assert.ErrorContains(t, (&TarArchive{}).Run(context.Background(), env), "is not a directory tree")
	assert.NoFileExists(t, out)
}

// Another build linking the same shared files while the tree is archived
// changes their link count, and with it their ctime: the archive is still
// made, with the files whole.
func TestTarArchiveWhileSharedFilesAreLinked(t *testing.T) {
	requireTools(t, "tar")
	tree := t.TempDir()
	big := filepath.Join(tree, "big")
	f, err := os.Create(big)
	require.NoError(t, err)
	_, err = io.CopyN(f, rand.Reader, 64<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	elsewhere := t.TempDir()

	stop := make(chan struct{})
	linked := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				linked <- n
				return
			default:
			}
			link := filepath.Join(elsewhere, "link")
			if os.Link(big, link) == nil {
				n++
				os.Remove(link)
			}
		}
	}()
	out := filepath.Join(t.TempDir(), "archive")
	env, log := diskEnv(t, tree, out)
	for range 5 {
		require.NoError(t, (&TarArchive{Opts: manifest.TarArchive{}}).Run(context.Background(), env), log.String())
	}
	close(stop)
	assert.Positive(t, <-linked, "the file was linked while it was archived")
	assert.Contains(t, tarListing(t, out, ""), fmt.Sprintf("%d", 64<<20), "the file is whole in the archive")
}
