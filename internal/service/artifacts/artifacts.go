// Package artifacts keeps each compose's files — the image, its manifest,
// SBOM and build log — behind one interface, Store: in a local directory
// (Local) or in an S3-compatible bucket (S3), which several servers and
// remote workers can share.
package artifacts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"time"

	"github.com/kiln-project/kiln/internal/workerproto"
)

// Names of the files a compose has besides its image, as the workers
// upload them.
const (
	BuildLog = workerproto.BuildLog
	Manifest = workerproto.Manifest
	SBOM     = workerproto.SBOM
)

var (
	idPattern   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)
)

// ErrNotFound: the compose has no such file.
var ErrNotFound = errors.New("no such file")

// Store keeps the files of each compose. A compose is named by its ID (a
// UUID) and a file by a name of at most 200 letters, digits, '.', '_' and
// '-' that starts with a letter or digit; anything else is refused.
type Store interface {
	// Put stores r as the compose's file name and returns its size; the
	// file appears only complete.
	Put(ctx context.Context, composeID, name string, r io.Reader) (int64, error)
	// Append adds data to the end of the compose's file name (the build
	// log). Appends that follow one another are read back in that order.
	Append(ctx context.Context, composeID, name string, data []byte) error
	// Open opens the compose's file name; ErrNotFound when it has none.
	Open(ctx context.Context, composeID, name string) (File, error)
	// Delete removes every file of the compose.
	Delete(ctx context.Context, composeID string) error
	// Size is how many bytes the compose's files take.
	Size(ctx context.Context, composeID string) (int64, error)
	// Usage is how many bytes the store takes.
	Usage(ctx context.Context) (int64, error)
	// Probe writes a small object outside every compose, reads it back
	// and deletes it: nil when the store takes, keeps and gives back
	// files. The status page's prober calls it.
	Probe(ctx context.Context) error
}

// probeData is what Probe writes: random, so that a read that returns an
// earlier probe's bytes is caught.
func probeData() (name string, data []byte) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return ".kiln-probe-" + h, []byte("kiln artifact store probe " + h + "\n")
}

// File is an opened file: seekable, so that it can be served with Range
// requests and a follower can go on from where it was, and with a size
// and modification time from Stat. An *os.File is one.
type File interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// Presigner is what a store that clients can reach without the server
// offers (S3): URLs that grant, for a while, one download or the upload of
// one file's parts straight to the store.
type Presigner interface {
	// PresignGet returns a URL that downloads the compose's file name
	// until expiry has passed, with a Content-Disposition that names it
	// filename.
	PresignGet(ctx context.Context, composeID, name, filename string, expiry time.Duration) (*url.URL, error)
	// CreateUpload starts a multipart upload of size bytes as the
	// compose's file name, with a presigned PUT URL per part.
	CreateUpload(ctx context.Context, composeID, name string, size int64, expiry time.Duration) (Upload, error)
	// CompleteUpload assembles the uploaded parts, given with their ETags
	// in order, into the file, which appears only now, complete. A file
	// that is not size bytes long is removed again, and an error says so.
	// Completing again an upload that was completed into the file
	// succeeds, so that a completion whose answer was lost can be retried.
	CompleteUpload(ctx context.Context, composeID, name, uploadID string, parts []CompletedPart, size int64) error
	// AbortUpload drops an unfinished upload and its parts.
	AbortUpload(ctx context.Context, composeID, name, uploadID string) error
}

// The multipart upload a Presigner offers is what workers receive, so its
// types are the worker contract's.
type (
	// Upload is a started multipart upload (see workerproto.Upload).
	Upload = workerproto.Upload
	// UploadPart is where one part of an upload goes.
	UploadPart = workerproto.UploadPart
	// CompletedPart is an uploaded part.
	CompletedPart = workerproto.CompletedPart
)

// checkID refuses what is not a compose ID.
func checkID(composeID string) error {
	if !idPattern.MatchString(composeID) {
		return fmt.Errorf("%q is not a compose id", composeID)
	}
	return nil
}

// check refuses what is not a compose ID and a file name.
func check(composeID, name string) error {
	if err := checkID(composeID); err != nil {
		return err
	}
	if !namePattern.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%q is not a file name", name)
	}
	return nil
}

// Open returns the store spec names, for `kiln serve --artifacts`:
//
//   - "": a local directory, dataDir/artifacts;
//   - an absolute path: a local directory there;
//   - s3://bucket/prefix?endpoint=URL&region=R: an S3-compatible bucket
//     (see S3Config for the parameters and credentials).
func Open(spec, dataDir string) (Store, error) {
	switch {
	case spec == "":
		return Local{Dir: filepath.Join(dataDir, "artifacts")}, nil
	case filepath.IsAbs(spec):
		return Local{Dir: filepath.Clean(spec)}, nil
	}
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "s3" {
		return nil, fmt.Errorf("--artifacts %q: expected an absolute directory (/var/lib/kiln/artifacts) or s3://bucket[/prefix][?endpoint=URL&region=R]", spec)
	}
	cfg, err := ParseS3(u)
	if err != nil {
		return nil, fmt.Errorf("--artifacts %q: %w", spec, err)
	}
	s, err := NewS3(cfg)
	if err != nil {
		return nil, fmt.Errorf("--artifacts %q: %w", spec, err)
	}
	return s, nil
}
