// Package ocitest writes small OCI archives of one platform, as kiln's
// container image type writes them (an OCI image layout in a tar, whose
// index.json lists one image manifest), for the tests of what reads them.
package ocitest

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the time of the archives' configs and entries.
var Epoch = time.Unix(1700000000, 0).UTC()

// Spec says what image to write.
type Spec struct {
	// Arch is the OCI architecture ("amd64", "arm64"); Variant its
	// variant, if any. The OS is linux.
	Arch, Variant string
	// Layers are the image's layers (see Layer).
	Layers []v1.Layer
	// RefName is index.json's org.opencontainers.image.ref.name; empty
	// for none.
	RefName string
}

// Layer is a random gzip-compressed tar layer of about size bytes.
func Layer(tb testing.TB, size int64) v1.Layer {
	tb.Helper()
	l, err := random.Layer(size, types.OCILayer)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Image is the image spec describes.
func Image(tb testing.TB, spec Spec) v1.Image {
	tb.Helper()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, spec.Layers...)
	if err != nil {
		tb.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", spec.Arch, spec.Variant
	cf.Created = v1.Time{Time: Epoch}
	cf.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		tb.Fatal(err)
	}
	return img
}

// WriteLayout writes the image spec describes as an OCI image layout in
// dir (a directory tests may then damage before Pack), and returns its
// manifest digest.
func WriteLayout(tb testing.TB, dir string, spec Spec) string {
	tb.Helper()
	img := Image(tb, spec)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		tb.Fatal(err)
	}
	var opts []layout.Option
	if spec.RefName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": spec.RefName}))
	}
	if err := lp.AppendImage(img, opts...); err != nil {
		tb.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d.String()
}

// WriteArchive writes the image spec describes as an OCI archive at p
// and returns its manifest digest.
func WriteArchive(tb testing.TB, p string, spec Spec) string {
	tb.Helper()
	dir := tb.TempDir()
	d := WriteLayout(tb, dir, spec)
	Pack(tb, dir, p)
	return d
}

// Pack writes the files under dir as a tar at p: entries in lexical
// order, owned by 0, every mtime Epoch.
func Pack(tb testing.TB, dir, p string) {
	tb.Helper()
	out, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(f string, d fs.DirEntry, err error) error {
		if err != nil || f == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, f)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: Epoch, Mode: 0o644, Typeflag: tar.TypeReg}
		if d.IsDir() {
			hdr.Name, hdr.Mode, hdr.Typeflag = hdr.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(hdr)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr.Size = fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		in, err := os.Open(f)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(tw, in)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// Unpack extracts the tar at p (an OCI archive) into a new directory and
// returns it.
func Unpack(tb testing.TB, p string) string {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	dir := tb.TempDir()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			tb.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			var out *os.File
			if out, err = os.Create(target); err == nil {
				_, err = io.Copy(out, tr)
				out.Close()
			}
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}
