package stages

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/kiln-project/kiln/internal/manifest"
)

// OCIArchive packs the input tree as the single gzip-compressed layer of an
// OCI image and writes the image's layout (oci-layout, index.json,
// blobs/sha256/...) as a tar archive.
//
// The layer is the same archive the tar stage writes (numeric owners,
// extended attributes, sorted entries, mtimes clamped to the epoch),
// compressed in-process while it streams from tar straight into its blob
// file: it is hashed on the way (its digest and its uncompressed diff ID)
// and never held in memory. The config's creation time and history are the
// epoch, and the layout archive has sorted entries owned by 0 with the
// epoch as mtime, so the same tree and epoch give the same image digest and
// the same archive bytes.
type OCIArchive struct{ Opts manifest.OCIArchive }

// ociArchitectures are the OCI architecture values an image may name (the
// GOARCH values of the platforms Linux container images exist for).
var ociArchitectures = []string{"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}

// ociRefName is the grammar of org.opencontainers.image.ref.name in the
// image layout specification.
var ociRefName = regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@/+]|--)[A-Za-z0-9]+)*$`)

// ociEnvName is a variable name in the config's Env.
var ociEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate implements Stage.
func (s *OCIArchive) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	return nil
}

// Run implements Stage.
func (s *OCIArchive) Run(ctx context.Context, env *Env) (err error) {
	if err := s.validate(); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	if fi, err := os.Stat(env.Input); err != nil || !fi.IsDir() {
		return fmt.Errorf("oci archive: the input %q is not a directory tree", env.Input)
	}
	dir := filepath.Join(env.Work, "oci-layout")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	defer os.RemoveAll(dir)
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(env.Output)
		}
	}()

	env.Logf("packing the tree into the image's layer")
	layer, err := writeLayerBlob(ctx, env, blobs)
	if err != nil {
		return fmt.Errorf("oci archive: writing the layer: %w", err)
	}
	env.Logf("the layer is %s, %d bytes compressed, diff ID %s", layer.digest, layer.size, layer.diffID)

	img, err := s.image(layer, env.Epoch)
	if err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	env.Logf("writing the image layout (manifest %s, tag %q)", digest, s.Opts.Tag)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci archive: writing the image layout: %w", err)
	}
	var opts []layout.Option
	if s.Opts.Tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": s.Opts.Tag,
		}))
	}
	// The layer's blob is already in place with its size; the layout
	// writes the config, the manifest and index.json around it.
	if err := lp.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("oci archive: writing the image layout: %w", err)
	}

	env.Logf("packing the image layout into %s", env.Output)
	if err := packLayout(dir, env.Output, env.Epoch); err != nil {
		return fmt.Errorf("oci archive: packing the image layout: %w", err)
	}
	return nil
}

// validate checks the options, naming the field at fault.
func (s *OCIArchive) validate() error {
	o := s.Opts
	if !slices.Contains(ociArchitectures, o.Arch) {
		return fmt.Errorf("arch %q is not an OCI architecture: use one of %s", o.Arch, strings.Join(ociArchitectures, ", "))
	}
	if o.Tag != "" && !ociRefName.MatchString(o.Tag) {
		return fmt.Errorf("tag %q is not a valid reference name: use letters, digits and separators (. _ - : @ / +) between them", o.Tag)
	}
	c := o.Config
	for _, e := range c.Env {
		name, _, ok := strings.Cut(e, "=")
		if !ok || !ociEnvName.MatchString(name) {
			return fmt.Errorf("config.env entry %q is not NAME=value", e)
		}
	}
	if c.User != "" && strings.IndexFunc(c.User, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("config.user %q has white space or control characters", c.User)
	}
	if c.WorkingDir != "" {
		if !path.IsAbs(c.WorkingDir) || slices.Contains(strings.Split(c.WorkingDir, "/"), "..") {
			return fmt.Errorf("config.working_dir %q is not an absolute path without \"..\"", c.WorkingDir)
		}
	}
	for k := range c.Labels {
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return fmt.Errorf("config.labels key %q is empty or has white space", k)
		}
	}
	for _, f := range []struct {
		name string
		argv []string
	}{{"config.cmd", c.Cmd}, {"config.entrypoint", c.Entrypoint}} {
		if len(f.argv) > 0 && f.argv[0] == "" {
			return fmt.Errorf("%s starts with an empty program name", f.name)
		}
	}
	return nil
}

// image is the OCI image of the one layer, with the options' config.
func (s *OCIArchive) image(layer *blobLayer, epoch time.Time) (v1.Image, error) {
	created := v1.Time{Time: epoch.UTC()}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "kiln " + manifest.OCIArchive{}.StageType(),
			Comment:   "the image's root tree",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	c := s.Opts.Config
	cf.Created = created
	cf.OS = "linux"
	cf.Architecture = s.Opts.Arch
	cf.Config = v1.Config{
		Env:        slices.Clone(c.Env),
		User:       c.User,
		Cmd:        slices.Clone(c.Cmd),
		Entrypoint: slices.Clone(c.Entrypoint),
		WorkingDir: c.WorkingDir,
		Labels:     c.Labels,
	}
	return mutate.ConfigFile(img, cf)
}

// blobLayer is a layer whose compressed blob is already written, with
// its hashes computed while it was.
type blobLayer struct {
	file           string
	digest, diffID v1.Hash
	size           int64
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.file) }

func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.file)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// writeLayerBlob streams the tar of env.Input through gzip into a file in
// blobs named by its digest.
func writeLayerBlob(ctx context.Context, env *Env, blobs string) (*blobLayer, error) {
	tmp, err := os.CreateTemp(blobs, "layer-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // gone already once renamed
	}()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	type result struct {
		diffID, digest hash.Hash
		size           int64
		err            error
	}
	done := make(chan result, 1)
	go func() {
		r := result{diffID: sha256.New(), digest: sha256.New()}
		counter := &countWriter{}
		bw := bufio.NewWriterSize(io.MultiWriter(tmp, r.digest, counter), 1<<20)
		zw := gzip.NewWriter(bw)
		_, r.err = io.Copy(io.MultiWriter(r.diffID, zw), pr)
		if r.err == nil {
			r.err = zw.Close()
		}
		if r.err == nil {
			r.err = bw.Flush()
		}
		r.size = counter.n
		// Closing the read end stops tar (with SIGPIPE) if this failed
		// before the end of the archive.
		pr.Close()
		done <- r
	}()
	tarArgv := tarCommand(env.Input, env.Epoch.Unix(), !env.Epoch.IsZero())
	tarErr := runTarPipeline(ctx, env, tarArgv, nil, pw)
	pw.Close()
	r := <-done
	if r.err != nil {
		// tar's own error then is only the broken pipe.
		return nil, fmt.Errorf("compressing the layer: %w", r.err)
	}
	if tarErr != nil {
		return nil, tarErr
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	l := &blobLayer{
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(r.digest.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(r.diffID.Sum(nil))},
		size:   r.size,
	}
	l.file = filepath.Join(blobs, l.digest.Hex)
	if err := os.Rename(tmp.Name(), l.file); err != nil {
		return nil, err
	}
	return l, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// packLayout writes the layout directory dir as a tar archive to output:
// entries sorted by name, owned by 0, directories 0755 and files 0644,
// every mtime the epoch. Blobs are copied from their files, not read into
// memory.
func packLayout(dir, output string, epoch time.Time) (err error) {
	out, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)
	mtime := epoch.UTC().Truncate(time.Second)
	// WalkDir visits the entries of each directory in lexical order.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		hdr := &tar.Header{Name: name, ModTime: mtime, Uid: 0, Gid: 0}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			return tw.WriteHeader(hdr)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := io.Copy(tw, f)
			if err == nil && n != fi.Size() {
				err = fmt.Errorf("%s changed size while it was packed", name)
			}
			return err
		default:
			return fmt.Errorf("%s is not a regular file or directory", name)
		}
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
