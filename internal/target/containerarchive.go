package target

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/ociindex"
)

// ociArchive is an OCI image layout packed in a tar, as kiln's container
// image type writes it, read in place (see ociindex.Archive): pushing it
// needs no unpacked copy.
type ociArchive struct {
	*ociindex.Archive
}

// openOCIArchive indexes the tar at p.
func openOCIArchive(p string) (*ociArchive, error) {
	a, err := ociindex.OpenArchive(p)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s %w", path.Base(p), err)
	}
	return &ociArchive{a}, nil
}

// Contents is what the archive holds, as index.json lists it: one image
// (what a container build writes), or one image index of several
// platforms' images (what a multi-architecture build writes). Exactly
// one of the image and the index is returned.
func (a *ociArchive) Contents() (v1.Image, v1.ImageIndex, error) {
	raw, err := a.ReadSmall("index.json")
	if err != nil {
		return nil, nil, err
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, nil, fmt.Errorf("index.json: %w", err)
	}
	if len(index.Manifests) != 1 {
		return nil, nil, fmt.Errorf("index.json lists %d manifests; a container image has exactly one (an image, or an image index of several platforms)", len(index.Manifests))
	}
	d := index.Manifests[0]
	switch d.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		img, err := a.imageOf(d)
		return img, nil, err
	case types.OCIImageIndex, types.DockerManifestList:
		idx, err := a.indexOf(d)
		return nil, idx, err
	}
	return nil, nil, fmt.Errorf("index.json lists a %s, not an image manifest or an image index", d.MediaType)
}

// readVerified reads the small blob d names and checks its digest.
func (a *ociArchive) readVerified(d v1.Descriptor, what string) ([]byte, error) {
	raw, err := a.ReadSmall(ociindex.BlobName(d.Digest))
	if err != nil {
		return nil, err
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(raw)); got != d.Digest {
		return nil, fmt.Errorf("the %s's blob has digest %s, not the %s it is named by", what, got, d.Digest)
	}
	return raw, nil
}

// indexOf is the image index d names, with each of its images checked as
// imageOf checks one. Only images are taken in the index, not nested
// indexes.
func (a *ociArchive) indexOf(d v1.Descriptor) (v1.ImageIndex, error) {
	raw, err := a.readVerified(d, "image index")
	if err != nil {
		return nil, err
	}
	parsed, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the image index: %w", err)
	}
	if len(parsed.Manifests) == 0 {
		return nil, fmt.Errorf("the image index %s lists no images", d.Digest)
	}
	idx := &archiveIndex{mediaType: d.MediaType, digest: d.Digest, manifest: raw, parsed: parsed, images: map[v1.Hash]v1.Image{}}
	var problems []string
	for _, m := range parsed.Manifests {
		what := m.Digest.String()
		if m.Platform != nil {
			what = m.Platform.String() + " " + what
		}
		if !m.MediaType.IsImage() {
			problems = append(problems, fmt.Sprintf("the image index lists a %s (%s), not an image manifest", m.MediaType, what))
			continue
		}
		img, err := a.imageOf(m)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the image %s: %v", what, err))
			continue
		}
		idx.images[m.Digest] = img
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return idx, nil
}

// imageOf is the image whose manifest d names, its blobs checked to be
// in the archive with the sizes the manifest says.
func (a *ociArchive) imageOf(d v1.Descriptor) (v1.Image, error) {
	if d.MediaType != types.OCIManifestSchema1 && d.MediaType != types.DockerManifestSchema2 {
		return nil, fmt.Errorf("index.json lists a %s, not an image manifest", d.MediaType)
	}
	manifest, err := a.readVerified(d, "manifest")
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return nil, fmt.Errorf("the manifest: %w", err)
	}
	blobs := map[v1.Hash]v1.Descriptor{m.Config.Digest: m.Config}
	for _, l := range m.Layers {
		blobs[l.Digest] = l
	}
	var problems []string
	for h, desc := range blobs {
		size, ok := a.Size(ociindex.BlobName(h))
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("the blob %s is missing", h))
		case size != desc.Size:
			problems = append(problems, fmt.Sprintf("the blob %s is %d bytes, not the %d the manifest says", h, size, desc.Size))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return partial.CompressedToImage(&archiveImage{a: a, mediaType: d.MediaType, manifest: manifest, parsed: m, blobs: blobs})
}

// archiveIndex is the archive's image index for go-containerregistry:
// its images are the archive's, checked by imageOf.
type archiveIndex struct {
	mediaType types.MediaType
	digest    v1.Hash
	manifest  []byte
	parsed    *v1.IndexManifest
	images    map[v1.Hash]v1.Image
}

// MediaType implements v1.ImageIndex.
func (x *archiveIndex) MediaType() (types.MediaType, error) { return x.mediaType, nil }

// Digest implements v1.ImageIndex: the digest its bytes were checked
// against.
func (x *archiveIndex) Digest() (v1.Hash, error) { return x.digest, nil }

// Size implements v1.ImageIndex.
func (x *archiveIndex) Size() (int64, error) { return int64(len(x.manifest)), nil }

// IndexManifest implements v1.ImageIndex.
func (x *archiveIndex) IndexManifest() (*v1.IndexManifest, error) { return x.parsed.DeepCopy(), nil }

// RawManifest implements v1.ImageIndex.
func (x *archiveIndex) RawManifest() ([]byte, error) { return x.manifest, nil }

// Image implements v1.ImageIndex.
func (x *archiveIndex) Image(h v1.Hash) (v1.Image, error) {
	img, ok := x.images[h]
	if !ok {
		return nil, fmt.Errorf("the image index has no image %s", h)
	}
	return img, nil
}

// ImageIndex implements v1.ImageIndex: an archive's index holds images
// only.
func (x *archiveIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("the image index %s holds images only, not the index %s", x.digest, h)
}

// archiveImage is the archive's image for go-containerregistry.
type archiveImage struct {
	a         *ociArchive
	mediaType types.MediaType
	manifest  []byte
	parsed    *v1.Manifest
	blobs     map[v1.Hash]v1.Descriptor
}

// RawConfigFile implements partial.CompressedImageCore.
func (i *archiveImage) RawConfigFile() ([]byte, error) {
	return i.a.ReadSmall(ociindex.BlobName(i.parsed.Config.Digest))
}

// MediaType implements partial.CompressedImageCore.
func (i *archiveImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }

// RawManifest implements partial.CompressedImageCore.
func (i *archiveImage) RawManifest() ([]byte, error) { return i.manifest, nil }

// LayerByDigest implements partial.CompressedImageCore.
func (i *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := i.blobs[h]
	if !ok {
		return nil, fmt.Errorf("the manifest has no blob %s", h)
	}
	return &archiveBlob{a: i.a, desc: d}, nil
}

// archiveBlob is a blob of the archive.
type archiveBlob struct {
	a    *ociArchive
	desc v1.Descriptor
}

// Digest implements partial.CompressedLayer.
func (b *archiveBlob) Digest() (v1.Hash, error) { return b.desc.Digest, nil }

// Size implements partial.CompressedLayer.
func (b *archiveBlob) Size() (int64, error) { return b.desc.Size, nil }

// MediaType implements partial.CompressedLayer.
func (b *archiveBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

// Compressed implements partial.CompressedLayer: the blob's bytes as
// stored.
func (b *archiveBlob) Compressed() (io.ReadCloser, error) {
	r, err := b.a.Open(ociindex.BlobName(b.desc.Digest))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(r), nil
}
