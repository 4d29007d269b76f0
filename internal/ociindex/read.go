package ociindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// input is one platform's OCI archive, read and checked: its one image
// manifest, its config's platform and the blobs they name.
type input struct {
	*Archive
	path string
	// refName is the org.opencontainers.image.ref.name index.json gives
	// the image ("" for none).
	refName  string
	platform v1.Platform
	// manifest describes the image manifest, as the index lists it.
	manifest v1.Descriptor
	// blobs are the manifest, the config and the layers, in that order.
	blobs []v1.Descriptor
}

// name is how problems name the input: its file name.
func (in *input) name() string { return filepath.Base(in.path) }

// openInput reads and checks the archive at p. The error lists every
// problem found in it; the input is nil when there is one.
func openInput(p string) (*input, error) {
	a, err := OpenArchive(p)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w; give the OCI archive a container build wrote (<name>-<distro>-<arch>.oci.tar)", filepath.Base(p), err)
	}
	in := &input{Archive: a, path: p}
	problems := in.load()
	if len(problems) > 0 {
		a.Close()
		for i, pr := range problems {
			problems[i] = fmt.Errorf("%s: %w", in.name(), pr)
		}
		return nil, errors.Join(problems...)
	}
	return in, nil
}

// load indexes the tar and reads its layout, returning every problem.
func (in *input) load() []error {
	var problems []error
	if raw, err := in.ReadSmall("oci-layout"); err != nil {
		problems = append(problems, err)
	} else {
		var l struct {
			Version string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(raw, &l); err != nil || l.Version != "1.0.0" {
			problems = append(problems, fmt.Errorf("oci-layout: not an image layout of version 1.0.0"))
		}
	}
	raw, err := in.ReadSmall("index.json")
	if err != nil {
		return append(problems, err)
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(raw, &index); err != nil {
		return append(problems, fmt.Errorf("index.json: %w", err))
	}
	if len(index.Manifests) != 1 {
		return append(problems, fmt.Errorf("index.json lists %d manifests, not 1: each input is one platform's image, as a container build writes it", len(index.Manifests)))
	}
	d := index.Manifests[0]
	if d.MediaType != types.OCIManifestSchema1 {
		return append(problems, fmt.Errorf("index.json lists a %s, not an OCI image manifest (%s): each input is one platform's image, as a container build writes it", d.MediaType, types.OCIManifestSchema1))
	}
	in.refName = d.Annotations[refNameAnnotation]
	in.manifest = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	rawManifest, err := in.readBlob(d, "the manifest")
	if err != nil {
		return append(problems, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return append(problems, fmt.Errorf("the manifest %s: %w", d.Digest, err))
	}
	if m.MediaType != "" && m.MediaType != types.OCIManifestSchema1 {
		problems = append(problems, fmt.Errorf("the manifest %s says it is a %s, not an OCI image manifest", d.Digest, m.MediaType))
	}
	in.blobs = append(in.blobs, in.manifest, m.Config)
	rawConfig, err := in.readBlob(m.Config, "the config")
	if err != nil {
		problems = append(problems, err)
	} else {
		cf, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("the config %s: %w", m.Config.Digest, err))
		case cf.OS == "" || cf.Architecture == "":
			problems = append(problems, fmt.Errorf("the config %s names no platform (os %q, architecture %q)", m.Config.Digest, cf.OS, cf.Architecture))
		default:
			in.platform = v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion}
			if d.Platform != nil && (d.Platform.OS != cf.OS || d.Platform.Architecture != cf.Architecture) {
				problems = append(problems, fmt.Errorf("index.json says the image is %s, its config %s", d.Platform, in.platform))
			}
		}
	}
	for i, l := range m.Layers {
		in.blobs = append(in.blobs, l)
		what := fmt.Sprintf("layer %d", i+1)
		if err := in.checkBlob(l, what); err != nil {
			problems = append(problems, err)
		}
	}
	return problems
}

// checkBlob checks that the blob desc names is in the archive with the
// size desc gives; what says what it is, in the error.
func (in *input) checkBlob(desc v1.Descriptor, what string) error {
	if desc.Digest.Algorithm != "sha256" || len(desc.Digest.Hex) != 64 {
		return fmt.Errorf("%s has digest %q: only sha256 digests are read", what, desc.Digest)
	}
	size, ok := in.Size(BlobName(desc.Digest))
	switch {
	case !ok:
		return fmt.Errorf("%s %s is missing: the archive has no %s", what, desc.Digest, BlobName(desc.Digest))
	case size != desc.Size:
		return fmt.Errorf("%s %s is %d bytes, not the %d its descriptor says", what, desc.Digest, size, desc.Size)
	}
	return nil
}

// readBlob reads a small blob whole and checks its size and digest.
func (in *input) readBlob(desc v1.Descriptor, what string) ([]byte, error) {
	if err := in.checkBlob(desc, what); err != nil {
		return nil, err
	}
	raw, err := in.ReadSmall(BlobName(desc.Digest))
	if err != nil {
		return nil, err
	}
	if got := sha256Of(raw); got != desc.Digest {
		return nil, fmt.Errorf("%s's blob %s has digest %s: the archive is damaged", what, desc.Digest, got)
	}
	return raw, nil
}

// sha256Of is the digest of b.
func sha256Of(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// Platforms lists the platforms of the multi-platform OCI archive at p
// (what Assemble writes), in its index's order. An archive of one image
// has none: the list is empty. The error says why the archive cannot be
// read.
func Platforms(p string) ([]v1.Platform, error) {
	a, err := OpenArchive(p)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
	}
	defer a.Close()
	in := &input{Archive: a, path: p}
	raw, err := in.ReadSmall("index.json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.name(), err)
	}
	var top v1.IndexManifest
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", in.name(), err)
	}
	if len(top.Manifests) != 1 || !top.Manifests[0].MediaType.IsIndex() {
		return nil, nil
	}
	raw, err = in.readBlob(top.Manifests[0], "the image index")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.name(), err)
	}
	index, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: the image index: %w", in.name(), err)
	}
	var out []v1.Platform
	for _, m := range index.Manifests {
		if m.Platform != nil {
			out = append(out, *m.Platform)
		}
	}
	return out, nil
}
