package stages

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func ociOpts() manifest.OCIArchive {
	return manifest.OCIArchive{
		Arch: "amd64",
		Config: manifest.OCIConfig{
			Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"},
			User:       "dev",
			Cmd:        []string{"/bin/bash"},
			Entrypoint: []string{"/usr/bin/env"},
			WorkingDir: "/home/u",
			Labels:     map[string]string{"org.opencontainers.image.title": "box", "org.opencontainers.image.version": "1.2"},
		},
		Tag: "box:1.2",
	}
}

// buildOCI runs the stage on tree and returns the archive.
func buildOCI(t *testing.T, tree string, opts manifest.OCIArchive, epoch time.Time) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.tar")
	env, log := diskEnv(t, tree, out)
	env.Epoch = epoch
	require.NoError(t, (&OCIArchive{Opts: opts}).Run(context.Background(), env), log.String())
	assert.NoDirExists(t, filepath.Join(env.Work, "oci-layout"), "the layout's work copy is removed")
	return out
}

// untarLayout unpacks the layout archive with Go's tar reader (so nothing
// of the stage's own code reads it back), checking every entry's header.
func untarLayout(t *testing.T, archive string, epoch time.Time) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
		assert.Equal(t, 0, hdr.Uid, hdr.Name)
		assert.Equal(t, 0, hdr.Gid, hdr.Name)
		assert.True(t, hdr.ModTime.Equal(epoch), "%s: mtime %s", hdr.Name, hdr.ModTime)
		require.False(t, strings.Contains(hdr.Name, "..") || strings.HasPrefix(hdr.Name, "/"), hdr.Name)
		dst := filepath.Join(dir, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			assert.Equal(t, int64(0o755), hdr.Mode, hdr.Name)
			require.NoError(t, os.MkdirAll(dst, 0o755))
		case tar.TypeReg:
			assert.Equal(t, int64(0o644), hdr.Mode, hdr.Name)
			w, err := os.Create(dst)
			require.NoError(t, err)
			_, err = io.Copy(w, tr)
			require.NoError(t, err)
			require.NoError(t, w.Close())
		default:
			t.Fatalf("unexpected entry %s of type %c", hdr.Name, hdr.Typeflag)
		}
	}
	return dir, names
}

// readLayout opens the layout's one image, checking the index on the way.
func readLayout(t *testing.T, dir, tag string) (v1.Image, v1.Hash) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	desc := im.Manifests[0]
	assert.Equal(t, types.OCIManifestSchema1, desc.MediaType)
	if tag != "" {
		assert.Equal(t, map[string]string{"org.opencontainers.image.ref.name": tag}, desc.Annotations)
	} else {
		assert.Empty(t, desc.Annotations)
	}
	img, err := idx.Image(desc.Digest)
	require.NoError(t, err)
	return img, desc.Digest
}

func TestOCIArchiveImage(t *testing.T) {
	t.Parallel()
	requireTools(t, "tar")
	tree := tarTree(t)
	epoch := time.Unix(1700000000, 0).UTC()
	opts := ociOpts()
	archive := buildOCI(t, tree, opts, epoch)

	dir, names := untarLayout(t, archive, epoch)
	require.GreaterOrEqual(t, len(names), 7)
	assert.Equal(t, []string{"blobs/", "blobs/sha256/"}, names[:2])
	assert.Equal(t, []string{"index.json", "oci-layout"}, names[len(names)-2:])
	assert.Len(t, names, 7, "three blobs: config, manifest, layer")
	assert.IsIncreasing(t, names, "entries are sorted")
	// Every blob is named by its digest.
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	require.NoError(t, err)
	for _, b := range blobs {
		assert.Equal(t, b.Name(), sha256File(t, filepath.Join(dir, "blobs", "sha256", b.Name())))
	}

	img, _ := readLayout(t, dir, opts.Tag)
	// validate reads every blob and checks digests, diff IDs and sizes
	// against the manifest and the config.
	require.NoError(t, validate.Image(img))
	m, err := img.Manifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIManifestSchema1, m.MediaType)
	assert.Equal(t, types.OCIConfigJSON, m.Config.MediaType)
	require.Len(t, m.Layers, 1)
	assert.Equal(t, types.OCILayer, m.Layers[0].MediaType)

	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, "amd64", cf.Architecture)
	assert.True(t, cf.Created.Time.Equal(epoch), "created %s", cf.Created.Time)
	assert.Equal(t, opts.Config.Env, cf.Config.Env)
	assert.Equal(t, "dev", cf.Config.User)
	assert.Equal(t, []string{"/bin/bash"}, cf.Config.Cmd)
	assert.Equal(t, []string{"/usr/bin/env"}, cf.Config.Entrypoint)
	assert.Equal(t, "/home/u", cf.Config.WorkingDir)
	assert.Equal(t, opts.Config.Labels, cf.Config.Labels)
	assert.Equal(t, "layers", cf.RootFS.Type)
	require.Len(t, cf.History, 1)
	assert.True(t, cf.History[0].Created.Time.Equal(epoch))
	assert.False(t, cf.History[0].EmptyLayer)

	// The layer is the tree as the tar stage archives it.
	layers, err := img.Layers()
	require.NoError(t, err)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	entries := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		entries[hdr.Name] = hdr
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			contents[hdr.Name] = string(b)
		}
	}
	require.Contains(t, entries, "./etc/hostname")
	assert.Equal(t, "kiln\n", contents["./etc/hostname"])
	require.Contains(t, entries, "./usr/bin/tool")
	assert.Equal(t, int64(0o4755), entries["./usr/bin/tool"].Mode&0o7777)
	require.Contains(t, entries, "./bin")
	assert.Equal(t, "usr/bin", entries["./bin"].Linkname)
	require.Contains(t, entries, "./etc/hostname.hard")
	assert.Equal(t, byte(tar.TypeLink), entries["./etc/hostname.hard"].Typeflag)
	require.Contains(t, entries, "./home/u/notes")
	assert.Equal(t, "yes", entries["./home/u/notes"].PAXRecords["SCHILY.xattr.user.kiln"])
	assert.True(t, entries["./usr/bin/tool"].ModTime.Equal(epoch), "newer files are clamped to the epoch")
	assert.True(t, entries["./etc/hostname"].ModTime.Equal(time.Unix(1500000000, 0)), "older files keep their time")
	if os.Geteuid() == 0 {
		assert.Equal(t, 1000, entries["./home/u/notes"].Uid)
		assert.Equal(t, 0, entries["./etc/hostname"].Uid)
	}
}

func TestOCIArchiveIsReproducible(t *testing.T) {
	t.Parallel()
	requireTools(t, "tar")
	tree := tarTree(t)
	epoch := time.Unix(1700000000, 0).UTC()
	digest := func(archive string, epoch time.Time) v1.Hash {
		dir, _ := untarLayout(t, archive, epoch)
		_, d := readLayout(t, dir, ociOpts().Tag)
		return d
	}
	a := buildOCI(t, tree, ociOpts(), epoch)
	b := buildOCI(t, tree, ociOpts(), epoch)
	assert.Equal(t, sha256File(t, a), sha256File(t, b), "the same tree and epoch give the same archive")
	assert.Equal(t, digest(a, epoch), digest(b, epoch))

	later := epoch.Add(time.Hour)
	c := buildOCI(t, tree, ociOpts(), later)
	assert.NotEqual(t, digest(a, epoch), digest(c, later), "the epoch is in the image")

	other := ociOpts()
	other.Config.User = "root"
	d := buildOCI(t, tree, other, epoch)
	assert.NotEqual(t, digest(a, epoch), digest(d, epoch), "the config is in the image")
}

func TestOCIArchiveWithoutTagOrConfig(t *testing.T) {
	t.Parallel()
	requireTools(t, "tar")
	tree := tarTree(t)
	epoch := time.Unix(1700000000, 0).UTC()
	archive := buildOCI(t, tree, manifest.OCIArchive{Arch: "arm64"}, epoch)
	dir, _ := untarLayout(t, archive, epoch)
	img, _ := readLayout(t, dir, "")
	require.NoError(t, validate.Image(img))
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "arm64", cf.Architecture)
	assert.Empty(t, cf.Config.User)
	assert.Empty(t, cf.Config.Cmd)
	assert.Empty(t, cf.Config.Env)
}

func TestOCIArchiveRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(o *manifest.OCIArchive)
		field string
	}{
		{"no arch", func(o *manifest.OCIArchive) { o.Arch = "" }, "arch"},
		{"unknown arch", func(o *manifest.OCIArchive) { o.Arch = "x86_64" }, "arch"},
		{"tag with a space", func(o *manifest.OCIArchive) { o.Tag = "box 1" }, "tag"},
		{"tag ending in a separator", func(o *manifest.OCIArchive) { o.Tag = "box:" }, "tag"},
		{"tag with a slash first", func(o *manifest.OCIArchive) { o.Tag = "/box" }, "tag"},
		{"env without =", func(o *manifest.OCIArchive) { o.Config.Env = []string{"PATH"} }, "config.env"},
		{"env with an empty name", func(o *manifest.OCIArchive) { o.Config.Env = []string{"=x"} }, "config.env"},
		{"user with a newline", func(o *manifest.OCIArchive) { o.Config.User = "dev\nroot" }, "config.user"},
		{"relative working dir", func(o *manifest.OCIArchive) { o.Config.WorkingDir = "home" }, "config.working_dir"},
		{"working dir with ..", func(o *manifest.OCIArchive) { o.Config.WorkingDir = "/home/../etc" }, "config.working_dir"},
		{"empty label key", func(o *manifest.OCIArchive) { o.Config.Labels = map[string]string{"": "x"} }, "config.labels"},
		{"empty cmd program", func(o *manifest.OCIArchive) { o.Config.Cmd = []string{""} }, "config.cmd"},
		{"empty entrypoint program", func(o *manifest.OCIArchive) { o.Config.Entrypoint = []string{"", "x"} }, "config.entrypoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := ociOpts()
			tc.edit(&opts)
			out := filepath.Join(t.TempDir(), "image.tar")
			env, _ := diskEnv(t, t.TempDir(), out)
			err := (&OCIArchive{Opts: opts}).Run(context.Background(), env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.field+" ")
			assert.NoFileExists(t, out)
		})
	}
}

func TestOCIArchiveFailureLeavesNoOutput(t *testing.T) {
	t.Parallel()
	requireTools(t, "tar")
	t.Run("input is not a tree", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
		out := filepath.Join(t.TempDir(), "image.tar")
		env, _ := diskEnv(t, file, out)
		err := (&OCIArchive{Opts: ociOpts()}).Run(context.Background(), env)
		require.ErrorContains(t, err, "not a directory tree")
		assert.NoFileExists(t, out)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "image.tar")
		require.NoError(t, os.WriteFile(out, []byte("stale"), 0o644))
		env, _ := diskEnv(t, tarTree(t), out)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := (&OCIArchive{Opts: ociOpts()}).Run(ctx, env)
		require.ErrorIs(t, err, context.Canceled)
		assert.NoFileExists(t, out)
		// No half-written blob is left in the work directory either.
		var left []string
		require.NoError(t, filepath.WalkDir(env.Work, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, p)
			}
			return err
		}))
		assert.Empty(t, left)
	})
}
