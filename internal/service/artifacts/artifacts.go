// Package artifacts keeps each compose's files — the image, its manifest,
// SBOM and build log — in a local directory (an S3-compatible bucket is the
// other backend the scale-out adds behind the same interface).
package artifacts

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// Names of the files a compose has besides its image.
const (
	BuildLog = "build.log"
	Manifest = "manifest.json"
	SBOM     = "sbom.spdx.json"
)

var (
	idPattern   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)
)

// ErrNotFound: the compose has no such file.
var ErrNotFound = errors.New("no such file")

// Local stores files under Dir/<compose id>/<name>.
type Local struct{ Dir string }

func (l Local) path(composeID, name string) (string, error) {
	if !idPattern.MatchString(composeID) {
		return "", fmt.Errorf("%q is not a compose id", composeID)
	}
	if !namePattern.MatchString(name) || name == "." || name == ".." {
		return "", fmt.Errorf("%q is not a file name", name)
	}
	return filepath.Join(l.Dir, composeID, name), nil
}

// Put stores r as the compose's file name; it appears only complete.
func (l Local) Put(composeID, name string, r io.Reader) (int64, error) {
	p, err := l.path(composeID, name)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := p + ".partial-" + hex.EncodeToString(b[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// Append adds data to the end of the compose's file name (the build log).
func (l Local) Append(composeID, name string, data []byte) error {
	p, err := l.path(composeID, name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open opens the compose's file name.
func (l Local) Open(composeID, name string) (*os.File, error) {
	p, err := l.path(composeID, name)
	if err != nil {
		return nil, ErrNotFound
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Delete removes every file of the compose.
func (l Local) Delete(composeID string) error {
	if !idPattern.MatchString(composeID) {
		return fmt.Errorf("%q is not a compose id", composeID)
	}
	return os.RemoveAll(filepath.Join(l.Dir, composeID))
}

// Size is how many bytes the compose's files take.
func (l Local) Size(composeID string) int64 {
	if !idPattern.MatchString(composeID) {
		return 0
	}
	return du(filepath.Join(l.Dir, composeID))
}

// Usage is how many bytes the store takes.
func (l Local) Usage() int64 { return du(l.Dir) }

func du(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
