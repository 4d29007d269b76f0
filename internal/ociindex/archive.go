package ociindex

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// MaxMetadataSize bounds the JSON files read whole (oci-layout,
// index.json, a manifest, a config).
const MaxMetadataSize = 4 << 20

// Archive is an OCI image layout packed in a tar, as kiln's container
// builds write it, read in place: tar keeps a regular file's bytes
// contiguous, so each blob is a section of the tar file and nothing is
// unpacked. It is what both the index assembly and the container upload
// target read.
type Archive struct {
	f     *os.File
	files map[string]section
	// Newest is the newest modification time of the archive's entries.
	Newest time.Time
}

// section is where a file's bytes are in the tar.
type section struct {
	offset, size int64
}

// OpenArchive indexes the tar at p. The error (to be prefixed with the
// file's name) says that it is not a tar, or not an OCI image layout.
func OpenArchive(p string) (*Archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	a := &Archive{f: f, files: map[string]section{}}
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("is not a tar archive (%v)", err)
		}
		if hdr.ModTime.After(a.Newest) {
			a.Newest = hdr.ModTime
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		// The reader stops at the end of the header: the file's bytes
		// start here.
		a.files[path.Clean(strings.TrimPrefix(hdr.Name, "./"))] = section{offset: cr.n, size: hdr.Size}
	}
	if _, ok := a.files["oci-layout"]; !ok {
		f.Close()
		return nil, errors.New("is not an OCI image layout: it has no oci-layout file")
	}
	return a, nil
}

// Close closes the archive's file.
func (a *Archive) Close() error { return a.f.Close() }

// Size returns the size of the archive's file name, and whether it has it.
func (a *Archive) Size(name string) (int64, bool) {
	s, ok := a.files[name]
	return s.size, ok
}

// Open reads a file of the archive in place.
func (a *Archive) Open(name string) (*io.SectionReader, error) {
	s, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("the archive has no %s", name)
	}
	return io.NewSectionReader(a.f, s.offset, s.size), nil
}

// ReadSmall reads a small file of the archive whole (at most
// MaxMetadataSize bytes).
func (a *Archive) ReadSmall(name string) ([]byte, error) {
	s, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("the archive has no %s", name)
	}
	if s.size > MaxMetadataSize {
		return nil, fmt.Errorf("%s is %d bytes, more than a layout's JSON file can be", name, s.size)
	}
	r, _ := a.Open(name)
	return io.ReadAll(r)
}

// BlobName is the layout's file of the blob of digest h.
func BlobName(h v1.Hash) string {
	return "blobs/" + h.Algorithm + "/" + h.Hex
}

// countingReader counts the bytes read through it: after a tar header,
// the offset of the file's bytes. It seeks too, so that the tar reader
// skips over a file's bytes instead of reading them.
type countingReader struct {
	r io.ReadSeeker
	n int64
}

// Seek implements io.Seeker.
func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := c.r.Seek(offset, whence)
	if err == nil {
		c.n = pos
	}
	return pos, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
