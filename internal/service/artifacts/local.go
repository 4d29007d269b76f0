package artifacts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/sparse"
)

// Local stores files under Dir/<compose id>/<name>.
type Local struct{ Dir string }

var _ Store = Local{}

func (l Local) path(composeID, name string) (string, error) {
	if err := check(composeID, name); err != nil {
		return "", err
	}
	return filepath.Join(l.Dir, composeID, name), nil
}

// Put implements Store: the file is written aside and renamed into place.
func (l Local) Put(_ context.Context, composeID, name string, r io.Reader) (int64, error) {
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
	// Disk images are mostly zeros: leave holes for them.
	n, err := sparse.Copy(f, r)
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

// Append implements Store.
func (l Local) Append(_ context.Context, composeID, name string, data []byte) error {
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

// Open implements Store; the file is an *os.File.
func (l Local) Open(_ context.Context, composeID, name string) (File, error) {
	p, err := l.path(composeID, name)
	if err != nil {
		return nil, ErrNotFound
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Delete implements Store.
func (l Local) Delete(_ context.Context, composeID string) error {
	if err := checkID(composeID); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(l.Dir, composeID))
}

// Size implements Store.
func (l Local) Size(_ context.Context, composeID string) (int64, error) {
	if err := checkID(composeID); err != nil {
		return 0, err
	}
	return du(filepath.Join(l.Dir, composeID)), nil
}

// Usage implements Store.
func (l Local) Usage(context.Context) (int64, error) { return du(l.Dir), nil }

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

// DownloadKey is the key that signs download links to this directory's
// images, made on first use: it lives beside the images, so every replica
// that serves them signs alike, and it outlives restarts.
func (l Local) DownloadKey() ([]byte, error) {
	p := filepath.Join(l.Dir, ".download-key")
	if b, err := os.ReadFile(p); err == nil && len(b) >= 32 {
		return b, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("artifacts: reading the download key: %w", err)
	}
	if err := os.MkdirAll(l.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(l.Dir, ".download-key-*")
	if err != nil {
		return nil, fmt.Errorf("artifacts: writing the download key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("artifacts: writing the download key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("artifacts: writing the download key: %w", err)
	}
	// A link rather than a rename: when two replicas start at once, the
	// first key written wins and the other reads it.
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return l.DownloadKey()
		}
		return nil, fmt.Errorf("artifacts: writing the download key: %w", err)
	}
	return key, nil
}

// Probe implements Store: a file in Dir, outside every compose's
// directory, written, read back and removed.
func (l Local) Probe(context.Context) error {
	if err := os.MkdirAll(l.Dir, 0o750); err != nil {
		return err
	}
	name, data := probeData()
	p := filepath.Join(l.Dir, name)
	if err := os.WriteFile(p, data, 0o640); err != nil {
		os.Remove(p)
		return fmt.Errorf("writing a probe file: %w", err)
	}
	got, err := os.ReadFile(p)
	rmErr := os.Remove(p)
	if err != nil {
		return fmt.Errorf("reading the probe file back: %w", err)
	}
	if string(got) != string(data) {
		return errors.New("the probe file read back differs from what was written")
	}
	if rmErr != nil {
		return fmt.Errorf("removing the probe file: %w", rmErr)
	}
	return nil
}
