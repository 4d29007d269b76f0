package ociindex_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
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

	"github.com/kiln-project/kiln/internal/engine/stages"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/ociindex"
	"github.com/kiln-project/kiln/internal/ociindex/ocitest"
)

// twoPlatforms writes an arm64 and an amd64 archive of app:1.0 sharing
// one layer, and returns their paths (arm64 first) and manifest digests.
func twoPlatforms(t *testing.T) (paths, digests []string) {
	t.Helper()
	dir := t.TempDir()
	shared := ocitest.Layer(t, 64<<10)
	for _, arch := range []string{"arm64", "amd64"} {
		p := filepath.Join(dir, "app-debian-12-"+arch+".oci.tar")
		d := ocitest.WriteArchive(t, p, ocitest.Spec{Arch: arch, Layers: []v1.Layer{shared, ocitest.Layer(t, 32<<10)}, RefName: "app:1.0"})
		paths, digests = append(paths, p), append(digests, d)
	}
	return paths, digests
}

// tarEntry is an entry of a tar as read back.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, p string) []tarEntry {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, tarEntry{hdr, data})
	}
}

func TestAssembleWritesOneIndexOfBothPlatforms(t *testing.T) {
	paths, digests := twoPlatforms(t)
	out := filepath.Join(t.TempDir(), "app-debian-12-multiarch.oci.tar")
	idx, err := ociindex.Assemble(out, paths, ociindex.Options{})
	require.NoError(t, err)
	assert.Equal(t, "app:1.0", idx.RefName, "the inputs' reference name")
	assert.Equal(t, "linux/amd64, linux/arm64", idx.Platforms(), "sorted by platform, whatever the inputs' order")
	require.Len(t, idx.Manifests, 2)
	assert.Equal(t, digests[1], idx.Manifests[0].Descriptor.Digest.String())
	assert.Equal(t, paths[1], idx.Manifests[0].Source)
	assert.Equal(t, digests[0], idx.Manifests[1].Descriptor.Digest.String())

	// Read back with go-containerregistry's own layout reader.
	dir := ocitest.Unpack(t, out)
	top, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	topManifest, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, topManifest.Manifests, 1, "index.json points at the one image index")
	d := topManifest.Manifests[0]
	assert.Equal(t, types.OCIImageIndex, d.MediaType)
	assert.Equal(t, idx.Digest, d.Digest)
	assert.Equal(t, idx.Size, d.Size)
	assert.Equal(t, map[string]string{"org.opencontainers.image.ref.name": "app:1.0"}, d.Annotations)

	index, err := top.ImageIndex(d.Digest)
	require.NoError(t, err)
	got, err := index.Digest()
	require.NoError(t, err)
	assert.Equal(t, idx.Digest, got, "the index blob's bytes have the digest index.json names")
	require.NoError(t, validate.Index(index), "every manifest, config and layer is whole and matches its digest")
	im, err := index.IndexManifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIImageIndex, im.MediaType)
	assert.Equal(t, "app:1.0", im.Annotations["org.opencontainers.image.ref.name"])
	require.Len(t, im.Manifests, 2)
	for i, want := range []struct{ arch, digest string }{{"amd64", digests[1]}, {"arm64", digests[0]}} {
		m := im.Manifests[i]
		assert.Equal(t, types.OCIManifestSchema1, m.MediaType)
		assert.Equal(t, want.digest, m.Digest.String())
		require.NotNil(t, m.Platform)
		assert.Equal(t, v1.Platform{OS: "linux", Architecture: want.arch}, *m.Platform)
		img, err := index.Image(m.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, want.arch, cf.Architecture)
	}

	// Each blob is stored once: two manifests, two configs, the shared
	// layer, a layer of each platform, and the index.
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Len(t, blobs, 8)

	entries := readTar(t, out)
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
		assert.Equal(t, ocitest.Epoch, e.hdr.ModTime.UTC(), e.hdr.Name)
		assert.Zero(t, e.hdr.Uid)
		assert.Zero(t, e.hdr.Gid)
	}
	assert.IsIncreasing(t, names, "entries are sorted")
	assert.Equal(t, []string{"blobs/", "blobs/sha256/"}, names[:2])
	assert.Equal(t, []string{"index.json", "oci-layout"}, names[len(names)-2:])
	assert.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(entries[len(entries)-1].data))

	platforms, err := ociindex.Platforms(out)
	require.NoError(t, err)
	assert.Equal(t, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, platforms)
	platforms, err = ociindex.Platforms(paths[0])
	require.NoError(t, err)
	assert.Empty(t, platforms, "an archive of one image has no index of platforms")
	_, err = ociindex.Platforms(filepath.Join(dir, "index.json"))
	assert.ErrorContains(t, err, "index.json: is not a tar archive")
}

func TestAssembleIsDeterministic(t *testing.T) {
	paths, _ := twoPlatforms(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.oci.tar"), filepath.Join(dir, "b.oci.tar")
	ia, err := ociindex.Assemble(a, paths, ociindex.Options{})
	require.NoError(t, err)
	ib, err := ociindex.Assemble(b, []string{paths[1], paths[0]}, ociindex.Options{})
	require.NoError(t, err)
	assert.Equal(t, ia.Digest, ib.Digest)
	ba, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(ba, bb), "the same inputs, in any order, give the same bytes")

	// A given name and epoch are recorded instead of the inputs'.
	c := filepath.Join(dir, "c.oci.tar")
	epoch := time.Unix(1800000000, 0).UTC()
	ic, err := ociindex.Assemble(c, paths, ociindex.Options{RefName: "team/app:2.0", Epoch: epoch})
	require.NoError(t, err)
	assert.Equal(t, "team/app:2.0", ic.RefName)
	assert.NotEqual(t, ia.Digest, ic.Digest, "the name is in the index")
	for _, e := range readTar(t, c) {
		assert.Equal(t, epoch, e.hdr.ModTime.UTC(), e.hdr.Name)
	}
}

// writeTar writes a tar of the given files at p.
func writeTar(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(data))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
}

// damage overwrites the blob of digest d in the layout dir with other
// bytes of the same size.
func damage(t *testing.T, dir string, d v1.Hash) {
	t.Helper()
	p := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	junk := make([]byte, fi.Size())
	rand.Read(junk)
	require.NoError(t, os.WriteFile(p, junk, 0o644))
}

// layoutManifest reads the one manifest of the layout dir.
func layoutManifest(t *testing.T, dir string) *v1.Manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)
	var index v1.IndexManifest
	require.NoError(t, json.Unmarshal(raw, &index))
	raw, err = os.ReadFile(filepath.Join(dir, "blobs", "sha256", index.Manifests[0].Digest.Hex))
	require.NoError(t, err)
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	require.NoError(t, err)
	return m
}

func TestAssembleRefusesBadInputs(t *testing.T) {
	dir := t.TempDir()
	good := func(name, arch string) string {
		p := filepath.Join(dir, name)
		ocitest.WriteArchive(t, p, ocitest.Spec{Arch: arch, Layers: []v1.Layer{ocitest.Layer(t, 16<<10)}, RefName: "app:1.0"})
		return p
	}
	amd64, arm64, amd64Again := good("amd64.oci.tar", "amd64"), good("arm64.oci.tar", "arm64"), good("amd64-again.oci.tar", "amd64")

	rootTree := filepath.Join(dir, "tree.tar")
	writeTar(t, rootTree, map[string]string{"etc/hostname": "box\n", "index.json": "{}"})
	notTar := filepath.Join(dir, "disk.raw")
	junk := make([]byte, 8192)
	rand.Read(junk)
	require.NoError(t, os.WriteFile(notTar, junk, 0o644))

	twoManifests := filepath.Join(dir, "two-manifests.oci.tar")
	{
		d := t.TempDir()
		ocitest.WriteLayout(t, d, ocitest.Spec{Arch: "arm64", Layers: []v1.Layer{ocitest.Layer(t, 1024)}})
		lp, err := layout.FromPath(d)
		require.NoError(t, err)
		require.NoError(t, lp.AppendImage(ocitest.Image(t, ocitest.Spec{Arch: "s390x", Layers: []v1.Layer{ocitest.Layer(t, 1024)}})))
		ocitest.Pack(t, d, twoManifests)
	}
	badLayer := filepath.Join(dir, "bad-layer.oci.tar")
	var badLayerDigest v1.Hash
	{
		d := t.TempDir()
		ocitest.WriteLayout(t, d, ocitest.Spec{Arch: "arm64", Layers: []v1.Layer{ocitest.Layer(t, 16<<10)}, RefName: "app:1.0"})
		badLayerDigest = layoutManifest(t, d).Layers[0].Digest
		damage(t, d, badLayerDigest)
		ocitest.Pack(t, d, badLayer)
	}
	badConfig := filepath.Join(dir, "bad-config.oci.tar")
	var badConfigDigest v1.Hash
	{
		d := t.TempDir()
		ocitest.WriteLayout(t, d, ocitest.Spec{Arch: "arm64", Layers: []v1.Layer{ocitest.Layer(t, 1024)}})
		badConfigDigest = layoutManifest(t, d).Config.Digest
		damage(t, d, badConfigDigest)
		ocitest.Pack(t, d, badConfig)
	}
	missingLayer := filepath.Join(dir, "missing-layer.oci.tar")
	{
		d := t.TempDir()
		ocitest.WriteLayout(t, d, ocitest.Spec{Arch: "arm64", Layers: []v1.Layer{ocitest.Layer(t, 1024)}})
		l := layoutManifest(t, d).Layers[0].Digest
		require.NoError(t, os.Remove(filepath.Join(d, "blobs", "sha256", l.Hex)))
		ocitest.Pack(t, d, missingLayer)
	}
	otherName := filepath.Join(dir, "other-name.oci.tar")
	ocitest.WriteArchive(t, otherName, ocitest.Spec{Arch: "arm64", Layers: []v1.Layer{ocitest.Layer(t, 1024)}, RefName: "web:1.0"})

	for _, tc := range []struct {
		name   string
		inputs []string
		want   []string
	}{
		{"one platform only", []string{amd64}, []string{"an image index needs the archives of two platforms or more, not 1"}},
		{"the same platform twice", []string{amd64, arm64, amd64Again}, []string{
			"amd64.oci.tar and amd64-again.oci.tar are both linux/amd64 images: an image index holds one image per platform; give each architecture's archive once",
		}},
		{"a root tree, not an OCI layout", []string{amd64, rootTree}, []string{
			"tree.tar: is not an OCI image layout: it has no oci-layout file; give the OCI archive a container build wrote (<name>-<distro>-<arch>.oci.tar)",
		}},
		{"not a tar", []string{notTar, arm64}, []string{"disk.raw: is not a tar archive ("}},
		{"a layout of two images", []string{amd64, twoManifests}, []string{
			"two-manifests.oci.tar: index.json lists 2 manifests, not 1: each input is one platform's image, as a container build writes it",
		}},
		{"a layer that does not match its digest", []string{amd64, badLayer}, []string{
			"bad-layer.oci.tar: the blob " + badLayerDigest.String() + " has digest sha256:",
			"the archive is damaged; build it again",
		}},
		{"a config that does not match its digest", []string{amd64, badConfig}, []string{
			"bad-config.oci.tar: the config's blob " + badConfigDigest.String() + " has digest sha256:",
		}},
		{"a missing layer", []string{amd64, missingLayer}, []string{"missing-layer.oci.tar: layer 1 sha256:", "is missing: the archive has no blobs/sha256/"}},
		{"different names", []string{amd64, otherName}, []string{
			`the inputs carry different reference names (amd64.oci.tar is "app:1.0", other-name.oci.tar is "web:1.0"): build them from the same blueprint, or name the index`,
		}},
		{"every problem at once", []string{rootTree, twoManifests, amd64, amd64Again, notTar}, []string{
			"tree.tar: is not an OCI image layout",
			"two-manifests.oci.tar: index.json lists 2 manifests",
			"amd64.oci.tar and amd64-again.oci.tar are both linux/amd64 images",
			"disk.raw: is not a tar archive",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "multiarch.oci.tar")
			_, err := ociindex.Assemble(out, tc.inputs, ociindex.Options{})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			_, serr := os.Stat(out)
			assert.True(t, os.IsNotExist(serr), "no archive is written")
			left, _ := os.ReadDir(filepath.Dir(out))
			assert.Empty(t, left, "no temporary file is left")
		})
	}

	// A damaged input leaves an archive already there as it was.
	out := filepath.Join(t.TempDir(), "multiarch.oci.tar")
	require.NoError(t, os.WriteFile(out, []byte("keep"), 0o644))
	_, err := ociindex.Assemble(out, []string{amd64, badLayer}, ociindex.Options{})
	require.Error(t, err)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))

	_, err = ociindex.Assemble(out, []string{amd64, arm64}, ociindex.Options{RefName: "bad name"})
	assert.ErrorContains(t, err, `the reference name "bad name" is not valid`)
	assert.False(t, strings.Contains(err.Error(), "amd64.oci.tar"))
}

// engineArchive makes an OCI archive the way the container image type
// does (the engine's OCI archive stage, on a small tree) for the OCI
// architecture arch.
func engineArchive(t *testing.T, p, arch string) {
	t.Helper()
	tree := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "etc", "hostname"), []byte(arch+"\n"), 0o644))
	var log bytes.Buffer
	env := &stages.Env{Input: tree, Output: p, Work: t.TempDir(), Epoch: ocitest.Epoch, Log: &log}
	stage := &stages.OCIArchive{Opts: manifest.OCIArchive{Arch: arch, Tag: "app:latest", Config: manifest.OCIConfig{Cmd: []string{"/bin/bash"}}}}
	require.NoError(t, stage.Run(context.Background(), env), log.String())
}

func TestAssembleTheEnginesArchives(t *testing.T) {
	dir := t.TempDir()
	amd64, arm64 := filepath.Join(dir, "app-debian-12-x86_64.oci.tar"), filepath.Join(dir, "app-debian-12-aarch64.oci.tar")
	engineArchive(t, amd64, "amd64")
	engineArchive(t, arm64, "arm64")
	out := filepath.Join(dir, "app-debian-12-multiarch.oci.tar")
	idx, err := ociindex.Assemble(out, []string{arm64, amd64}, ociindex.Options{})
	require.NoError(t, err)
	assert.Equal(t, "app:latest", idx.RefName)
	assert.Equal(t, "linux/amd64, linux/arm64", idx.Platforms())
	for _, e := range readTar(t, out) {
		assert.Equal(t, ocitest.Epoch, e.hdr.ModTime.UTC(), "the builds' epoch: %s", e.hdr.Name)
	}
	top, err := layout.ImageIndexFromPath(ocitest.Unpack(t, out))
	require.NoError(t, err)
	index, err := top.ImageIndex(idx.Digest)
	require.NoError(t, err)
	require.NoError(t, validate.Index(index))
}
