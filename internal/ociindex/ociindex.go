// Package ociindex assembles the OCI archives of one image built for
// several platforms (kiln's container image type, one build per
// architecture) into one multi-platform OCI archive: an OCI image layout
// whose index.json points at an OCI image index with one image manifest
// per platform, as a registry serves a multi-architecture image.
//
// The platforms' blobs are copied from their archives as they are
// (never recompressed), each stored once and checked against its digest
// on the way. The archive is deterministic: the same inputs give the
// same bytes, whatever order they are given in.
package ociindex

import (
	"archive/tar"
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refNameAnnotation is the image layout's reference name of an image
// (a tag, "app:1.0").
const refNameAnnotation = "org.opencontainers.image.ref.name"

// refNamePattern is the grammar of org.opencontainers.image.ref.name in
// the image layout specification.
var refNamePattern = regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@/+]|--)[A-Za-z0-9]+)*$`)

// Options say how Assemble names and dates the archive.
type Options struct {
	// RefName is the reference name index.json and the image index carry
	// (org.opencontainers.image.ref.name, e.g. "app:1.0"). Empty: the one
	// the inputs carry, which must then be the same in all of them.
	RefName string
	// Epoch is the modification time of every entry of the archive.
	// Zero: the newest of the inputs' entries (a build's epoch).
	Epoch time.Time
}

// Manifest is one platform's image in the index.
type Manifest struct {
	Platform v1.Platform
	// Descriptor is the image manifest's, as the index lists it.
	Descriptor v1.Descriptor
	// Source is the archive it came from.
	Source string
}

// Index is what Assemble wrote.
type Index struct {
	// Digest and Size are the image index's: the digest a registry
	// gives the tag it is pushed under.
	Digest v1.Hash
	Size   int64
	// RefName is the reference name recorded ("" for none).
	RefName string
	// Manifests are the platforms' images, in the index's order (by OS,
	// architecture and variant).
	Manifests []Manifest
}

// Platforms lists the index's platforms, "linux/amd64, linux/arm64".
func (x *Index) Platforms() string {
	s := make([]string, len(x.Manifests))
	for i, m := range x.Manifests {
		s[i] = m.Platform.String()
	}
	return strings.Join(s, ", ")
}

// Assemble writes to output one OCI archive holding the images of the
// OCI archives inputs, one per platform, under one image index. Each
// input must be an OCI image layout in a tar whose index.json lists one
// image manifest (what a container build writes), each for another
// platform. The error lists every problem found, naming the file at
// fault; output is then not written. output is written under a temporary
// name and renamed, so a failure never leaves a partial archive; an
// existing output is replaced.
func Assemble(output string, inputs []string, opts Options) (*Index, error) {
	if len(inputs) < 2 {
		return nil, fmt.Errorf("an image index needs the archives of two platforms or more, not %d", len(inputs))
	}
	if opts.RefName != "" && !refNamePattern.MatchString(opts.RefName) {
		return nil, fmt.Errorf("the reference name %q is not valid: use letters, digits and separators (. _ - : @ / +) between them", opts.RefName)
	}
	var problems []error
	var ins []*input
	defer func() {
		for _, in := range ins {
			in.Close()
		}
	}()
	for _, p := range inputs {
		in, err := openInput(p)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		ins = append(ins, in)
	}
	problems = append(problems, samePlatforms(ins)...)
	refName, err := commonRefName(ins, opts.RefName)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}

	slices.SortFunc(ins, func(a, b *input) int {
		return cmp.Or(cmp.Compare(a.platform.OS, b.platform.OS), cmp.Compare(a.platform.Architecture, b.platform.Architecture),
			cmp.Compare(a.platform.Variant, b.platform.Variant), cmp.Compare(a.platform.OSVersion, b.platform.OSVersion))
	})
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	result := &Index{RefName: refName}
	for _, in := range ins {
		p := in.platform
		d := in.manifest
		d.Platform = &p
		index.Manifests = append(index.Manifests, d)
		result.Manifests = append(result.Manifests, Manifest{Platform: p, Descriptor: d, Source: in.path})
	}
	if refName != "" {
		index.Annotations = map[string]string{refNameAnnotation: refName}
	}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	result.Digest, result.Size = sha256Of(rawIndex), int64(len(rawIndex))
	top := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: types.OCIImageIndex, Size: result.Size, Digest: result.Digest, Annotations: index.Annotations,
	}}}
	rawTop, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}

	blobs, err := collectBlobs(ins)
	if err != nil {
		return nil, err
	}
	blobs = append(blobs, blob{desc: v1.Descriptor{Digest: result.Digest, Size: result.Size}, data: rawIndex})
	slices.SortFunc(blobs, func(a, b blob) int { return cmp.Compare(a.desc.Digest.Hex, b.desc.Digest.Hex) })

	epoch := opts.Epoch
	if epoch.IsZero() {
		for _, in := range ins {
			if in.Newest.After(epoch) {
				epoch = in.Newest
			}
		}
	}
	if err := writeArchive(output, blobs, rawTop, epoch); err != nil {
		return nil, err
	}
	return result, nil
}

// samePlatforms are the problems of inputs of the same platform.
func samePlatforms(ins []*input) []error {
	var problems []error
	seen := map[string]*input{}
	for _, in := range ins {
		key := in.platform.String()
		if first, ok := seen[key]; ok {
			problems = append(problems, fmt.Errorf("%s and %s are both %s images: an image index holds one image per platform; give each architecture's archive once", first.name(), in.name(), key))
			continue
		}
		seen[key] = in
	}
	return problems
}

// commonRefName is the reference name to record: given, else the one
// every input carries.
func commonRefName(ins []*input, given string) (string, error) {
	if given != "" || len(ins) == 0 {
		return given, nil
	}
	names := map[string][]string{}
	for _, in := range ins {
		names[in.refName] = append(names[in.refName], in.name())
	}
	if len(names) == 1 {
		return ins[0].refName, nil
	}
	var parts []string
	for _, in := range ins {
		parts = append(parts, fmt.Sprintf("%s is %q", in.name(), in.refName))
	}
	return "", fmt.Errorf("the inputs carry different reference names (%s): build them from the same blueprint, or name the index", strings.Join(parts, ", "))
}

// blob is a blob of the archive: read from an input, or data.
type blob struct {
	desc v1.Descriptor
	from *input
	data []byte
}

// collectBlobs lists the inputs' blobs, each digest once.
func collectBlobs(ins []*input) ([]blob, error) {
	byDigest := map[v1.Hash]blob{}
	var out []blob
	for _, in := range ins {
		for _, d := range in.blobs {
			if b, ok := byDigest[d.Digest]; ok {
				if b.desc.Size != d.Size {
					return nil, fmt.Errorf("the blob %s is %d bytes in %s and %d in %s: one of them is damaged", d.Digest, b.desc.Size, b.from.name(), d.Size, in.name())
				}
				continue
			}
			b := blob{desc: v1.Descriptor{Digest: d.Digest, Size: d.Size}, from: in}
			byDigest[d.Digest] = b
			out = append(out, b)
		}
	}
	return out, nil
}

// ociLayout is the oci-layout file of an image layout.
const ociLayout = `{"imageLayoutVersion":"1.0.0"}`

// writeArchive writes the layout: blobs (sorted by digest), index.json
// and oci-layout, in that (lexical) order; directories 0755 and files
// 0644, owned by 0, every mtime the epoch. Each blob copied from an input
// is checked against its digest; a mismatch fails the archive, naming
// every damaged blob.
func writeArchive(output string, blobs []blob, index []byte, epoch time.Time) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	tw := tar.NewWriter(bw)
	mtime := epoch.UTC().Truncate(time.Second)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime})
	}
	file := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: mtime})
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	var damaged []error
	for _, b := range blobs {
		if err := file(BlobName(b.desc.Digest), b.desc.Size); err != nil {
			return err
		}
		if b.data != nil {
			if _, err := tw.Write(b.data); err != nil {
				return err
			}
			continue
		}
		r, err := b.from.Open(BlobName(b.desc.Digest))
		if err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(tw, h), r); err != nil {
			return fmt.Errorf("copying the blob %s from %s: %w", b.desc.Digest, b.from.name(), err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != b.desc.Digest.Hex {
			damaged = append(damaged, fmt.Errorf("%s: the blob %s has digest sha256:%s: the archive is damaged; build it again", b.from.name(), b.desc.Digest, got))
		}
	}
	if len(damaged) > 0 {
		return errors.Join(damaged...)
	}
	if err := file("index.json", int64(len(index))); err != nil {
		return err
	}
	if _, err := tw.Write(index); err != nil {
		return err
	}
	if err := file("oci-layout", int64(len(ociLayout))); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, ociLayout); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), output)
}
