package artifacts

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/testhost"
)

const (
	composeA = "0b7f4e0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
	composeB = "1c8f5f1f-2d3e-4f60-9bac-1d2e3f4a5b6c"
)

// newS3 is a store in a bucket of a fresh in-memory S3 server.
func newS3(t *testing.T) *S3 {
	t.Helper()
	spec, _ := testhost.StartS3(t)
	st, err := Open(spec, t.TempDir())
	require.NoError(t, err)
	s := st.(*S3)
	s.cfg.PartSize = 5 << 20
	return s
}

func readAll(t *testing.T, s Store, id, name string) string {
	t.Helper()
	f, err := s.Open(context.Background(), id, name)
	require.NoError(t, err)
	defer f.Close()
	data, err := io.ReadAll(f)
	require.NoError(t, err)
	return string(data)
}

// testStore is what every Store must do.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()

	t.Run("put and open", func(t *testing.T) {
		n, err := s.Put(ctx, composeA, "image.raw", strings.NewReader("0123456789"))
		require.NoError(t, err)
		assert.Equal(t, int64(10), n)
		f, err := s.Open(ctx, composeA, "image.raw")
		require.NoError(t, err)
		defer f.Close()
		fi, err := f.Stat()
		require.NoError(t, err)
		assert.Equal(t, int64(10), fi.Size())
		assert.WithinDuration(t, time.Now(), fi.ModTime(), time.Minute)
		_, err = f.Seek(4, io.SeekStart)
		require.NoError(t, err)
		rest, err := io.ReadAll(f)
		require.NoError(t, err)
		assert.Equal(t, "456789", string(rest))
		end, err := f.Seek(-3, io.SeekEnd)
		require.NoError(t, err)
		assert.Equal(t, int64(7), end)
		b := make([]byte, 2)
		_, err = io.ReadFull(f, b)
		require.NoError(t, err)
		assert.Equal(t, "78", string(b))

		_, err = s.Put(ctx, composeA, "image.raw", strings.NewReader("new"))
		require.NoError(t, err)
		assert.Equal(t, "new", readAll(t, s, composeA, "image.raw"), "a put replaces the file")
	})

	t.Run("missing", func(t *testing.T) {
		_, err := s.Open(ctx, composeB, "nothing.raw")
		assert.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("append and follow", func(t *testing.T) {
		require.NoError(t, s.Append(ctx, composeA, BuildLog, []byte("one\n")))
		// A follower reads what there is, then re-opens and seeks on.
		var off int64
		var got strings.Builder
		follow := func() {
			f, err := s.Open(ctx, composeA, BuildLog)
			require.NoError(t, err)
			defer f.Close()
			_, err = f.Seek(off, io.SeekStart)
			require.NoError(t, err)
			n, err := io.Copy(&got, f)
			require.NoError(t, err)
			off += n
		}
		follow()
		assert.Equal(t, "one\n", got.String())
		for _, line := range []string{"two\n", "three\n", "", "four\n"} {
			require.NoError(t, s.Append(ctx, composeA, BuildLog, []byte(line)))
		}
		follow()
		follow() // nothing new
		assert.Equal(t, "one\ntwo\nthree\nfour\n", got.String())
		for i := range 12 {
			require.NoError(t, s.Append(ctx, composeA, BuildLog, []byte{byte('a' + i)}))
		}
		follow()
		assert.Equal(t, "one\ntwo\nthree\nfour\nabcdefghijkl", got.String(), "chunks past 10 still come in order")
		assert.Equal(t, got.String(), readAll(t, s, composeA, BuildLog))

		// A read across chunks from the middle of one.
		f, err := s.Open(ctx, composeA, BuildLog)
		require.NoError(t, err)
		defer f.Close()
		_, err = f.Seek(2, io.SeekStart)
		require.NoError(t, err)
		b := make([]byte, 5)
		_, err = io.ReadFull(f, b)
		require.NoError(t, err)
		assert.Equal(t, "e\ntwo", string(b))
	})

	t.Run("size usage delete", func(t *testing.T) {
		_, err := s.Put(ctx, composeB, "image.raw", strings.NewReader(strings.Repeat("x", 100)))
		require.NoError(t, err)
		require.NoError(t, s.Append(ctx, composeB, BuildLog, []byte("0123456789")))
		a, err := s.Size(ctx, composeA)
		require.NoError(t, err)
		b, err := s.Size(ctx, composeB)
		require.NoError(t, err)
		assert.Equal(t, int64(110), b)
		total, err := s.Usage(ctx)
		require.NoError(t, err)
		assert.Equal(t, a+b, total)

		require.NoError(t, s.Delete(ctx, composeB))
		for _, name := range []string{"image.raw", BuildLog} {
			_, err := s.Open(ctx, composeB, name)
			assert.ErrorIs(t, err, ErrNotFound, name)
		}
		b, err = s.Size(ctx, composeB)
		require.NoError(t, err)
		assert.Zero(t, b)
		total, err = s.Usage(ctx)
		require.NoError(t, err)
		assert.Equal(t, a, total)
		assert.Equal(t, "new", readAll(t, s, composeA, "image.raw"), "other composes keep their files")

		// A log appended after a delete starts anew.
		require.NoError(t, s.Append(ctx, composeB, BuildLog, []byte("again")))
		assert.Equal(t, "again", readAll(t, s, composeB, BuildLog))
	})

	t.Run("names", func(t *testing.T) {
		for _, name := range []string{"", ".", "..", "../x", "a/b", "/abs", ".hidden", "a\\b", "a\x00b", strings.Repeat("n", 201), ".log"} {
			_, err := s.Put(ctx, composeA, name, strings.NewReader("x"))
			assert.Error(t, err, "put %q", name)
			assert.Error(t, s.Append(ctx, composeA, name, []byte("x")), "append %q", name)
			_, err = s.Open(ctx, composeA, name)
			assert.ErrorIs(t, err, ErrNotFound, "open %q", name)
		}
		for _, id := range []string{"", "..", "../" + composeA, composeA + "/x", strings.ToUpper(composeA)} {
			_, err := s.Put(ctx, id, "image.raw", strings.NewReader("x"))
			assert.Error(t, err, "put in %q", id)
			assert.Error(t, s.Delete(ctx, id), "delete %q", id)
			_, err = s.Size(ctx, id)
			assert.Error(t, err, "size of %q", id)
		}
	})

	t.Run("probe", func(t *testing.T) {
		before, err := s.Usage(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Probe(ctx))
		require.NoError(t, s.Probe(ctx))
		after, err := s.Usage(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after, "the probe leaves nothing behind")
	})
}

// TestLocalProbeFails checks that a directory that cannot be written to
// fails the probe: a file stands where the directory should be.
func TestLocalProbeFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "artifacts")
	require.NoError(t, os.WriteFile(dir, []byte("not a directory"), 0o600))
	assert.Error(t, Local{Dir: dir}.Probe(context.Background()))
}

func TestLocal(t *testing.T) { testStore(t, Local{Dir: t.TempDir()}) }

func TestS3(t *testing.T) { testStore(t, newS3(t)) }

func TestOpenSpecs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	st, err := Open("", "/srv/kiln")
	require.NoError(t, err)
	assert.Equal(t, Local{Dir: "/srv/kiln/artifacts"}, st)
	st, err = Open("/mnt/artifacts/", "/srv/kiln")
	require.NoError(t, err)
	assert.Equal(t, Local{Dir: "/mnt/artifacts"}, st)

	st, err = Open("s3://bucket/some/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-1", "")
	require.NoError(t, err)
	cfg := st.(*S3).cfg
	assert.Equal(t, "bucket", cfg.Bucket)
	assert.Equal(t, "some/prefix", cfg.Prefix)
	assert.Equal(t, "eu-west-1", cfg.Region)
	assert.True(t, cfg.PathStyle, "path-style when an endpoint is given")
	assert.Equal(t, "id", cfg.AccessKeyID)

	st, err = Open("s3://bucket", "")
	require.NoError(t, err)
	assert.False(t, st.(*S3).cfg.PathStyle, "virtual-host style on AWS")
	assert.Equal(t, "us-east-1", st.(*S3).cfg.Region)
	st, err = Open("s3://bucket?endpoint=https://s3.example.com&addressing=virtual", "")
	require.NoError(t, err)
	assert.False(t, st.(*S3).cfg.PathStyle)

	for _, bad := range []string{"artifacts", "./artifacts", "gs://bucket", "s3://", "s3://bucket?endpoint=ftp://x", "s3://bucket?color=red", "s3://bucket?addressing=sideways", "s3://u:p@bucket"} {
		_, err := Open(bad, "/srv/kiln")
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--artifacts", bad)
	}
	_, err = Open("relative/dir", "")
	assert.ErrorContains(t, err, "s3://bucket")

	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err = Open("s3://bucket", "")
	assert.ErrorContains(t, err, "AWS_SECRET_ACCESS_KEY")
}

// A file longer than a part goes up in several parts and reads back whole.
func TestS3Multipart(t *testing.T) {
	spec, _ := testhost.StartS3(t)
	u, err := url.Parse(spec)
	require.NoError(t, err)
	cfg, err := ParseS3(u)
	require.NoError(t, err)
	var parts atomic.Int32
	cfg.PartSize = 5 << 20
	cfg.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
			parts.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	s, err := NewS3(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	data := make([]byte, 11<<20+123)
	_, _ = rand.Read(data)
	n, err := s.Put(ctx, composeA, "image.raw", bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), n)
	assert.Equal(t, int32(3), parts.Load(), "11 MiB in parts of 5 MiB")
	got := readAll(t, s, composeA, "image.raw")
	assert.True(t, bytes.Equal(data, []byte(got)))
}

func TestS3PresignGet(t *testing.T) {
	s := newS3(t)
	ctx := context.Background()
	_, err := s.Put(ctx, composeA, "disk.qcow2", strings.NewReader("the image"))
	require.NoError(t, err)
	u, err := s.PresignGet(ctx, composeA, "disk.qcow2", "web server.qcow2", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "3600", u.Query().Get("X-Amz-Expires"))
	resp, err := http.Get(u.String())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "the image", string(body))
	assert.Equal(t, `attachment; filename="web server.qcow2"`, resp.Header.Get("Content-Disposition"))

	u, err = s.PresignGet(ctx, composeA, "disk.qcow2", "x", 30*24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "604800", u.Query().Get("X-Amz-Expires"), "SigV4 URLs last 7 days at most")
}

// putPart sends one part to its presigned URL and returns its ETag.
func putPart(t *testing.T, rawURL string, data []byte) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, rawURL, bytes.NewReader(data))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return resp.Header.Get("ETag")
}

func TestS3PresignedUpload(t *testing.T) {
	s := newS3(t)
	ctx := context.Background()
	data := make([]byte, 12<<20)
	_, _ = rand.Read(data)
	up, err := s.CreateUpload(ctx, composeA, "image.raw", int64(len(data)), time.Hour)
	require.NoError(t, err)
	require.Len(t, up.Parts, 3)
	assert.Equal(t, int64(5<<20), up.PartSize)
	var done []CompletedPart
	for i, p := range up.Parts {
		u, err := url.Parse(p.URL)
		require.NoError(t, err)
		assert.NotEmpty(t, u.Query().Get("X-Amz-Signature"))
		chunk := data[int64(i)*up.PartSize : min(int64(i+1)*up.PartSize, int64(len(data)))]
		done = append(done, CompletedPart{Number: p.Number, ETag: putPart(t, p.URL, chunk)})
	}
	_, err = s.Open(ctx, composeA, "image.raw")
	assert.ErrorIs(t, err, ErrNotFound, "an upload appears only complete")
	assert.Error(t, s.CompleteUpload(ctx, composeA, "image.raw", up.ID, done[1:], int64(len(data))), "parts must come from 1")
	require.NoError(t, s.CompleteUpload(ctx, composeA, "image.raw", up.ID, done, int64(len(data))))
	assert.True(t, bytes.Equal(data, []byte(readAll(t, s, composeA, "image.raw"))))

	// An aborted upload leaves nothing.
	up, err = s.CreateUpload(ctx, composeA, "other.raw", 10, time.Hour)
	require.NoError(t, err)
	require.Len(t, up.Parts, 1)
	etag := putPart(t, up.Parts[0].URL, []byte("0123456789"))
	require.NoError(t, s.AbortUpload(ctx, composeA, "other.raw", up.ID))
	assert.Error(t, s.CompleteUpload(ctx, composeA, "other.raw", up.ID, []CompletedPart{{Number: 1, ETag: etag}}, 10))
	_, err = s.Open(ctx, composeA, "other.raw")
	assert.True(t, errors.Is(err, ErrNotFound))

	// One of the wrong size is removed.
	up, err = s.CreateUpload(ctx, composeA, "short.raw", 10, time.Hour)
	require.NoError(t, err)
	etag = putPart(t, up.Parts[0].URL, []byte("01234"))
	assert.ErrorContains(t, s.CompleteUpload(ctx, composeA, "short.raw", up.ID, []CompletedPart{{Number: 1, ETag: etag}}, 10), "5 bytes, not 10")
	_, err = s.Open(ctx, composeA, "short.raw")
	assert.ErrorIs(t, err, ErrNotFound)

	// Huge files get larger parts, never more than 10 000.
	up, err = s.CreateUpload(ctx, composeB, "huge.raw", 100<<30, time.Minute)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(up.Parts), maxParts)
	assert.GreaterOrEqual(t, up.PartSize*int64(len(up.Parts)), int64(100<<30))
	require.NoError(t, s.Delete(ctx, composeB), "a delete drops unfinished uploads")
}

// A completion tried again after the first try completed the upload (its
// answer was lost with the server that made it) succeeds: the object
// there is the one its parts made. One whose upload was aborted still
// fails, even when an object of that size is there.
func TestS3CompleteUploadRetried(t *testing.T) {
	s := newS3(t)
	ctx := context.Background()
	data := []byte("0123456789")
	up, err := s.CreateUpload(ctx, composeA, "image.raw", int64(len(data)), time.Hour)
	require.NoError(t, err)
	done := []CompletedPart{{Number: 1, ETag: putPart(t, up.Parts[0].URL, data)}}
	require.NoError(t, s.CompleteUpload(ctx, composeA, "image.raw", up.ID, done, int64(len(data))))
	require.NoError(t, s.CompleteUpload(ctx, composeA, "image.raw", up.ID, done, int64(len(data))), "the retry of a completion that succeeded")
	assert.Equal(t, string(data), readAll(t, s, composeA, "image.raw"))

	// Another upload of the same size to the same name, aborted: its
	// completion is not the object's.
	other, err := s.CreateUpload(ctx, composeA, "image.raw", int64(len(data)), time.Hour)
	require.NoError(t, err)
	otherDone := []CompletedPart{{Number: 1, ETag: putPart(t, other.Parts[0].URL, []byte("abcdefghij"))}}
	require.NoError(t, s.AbortUpload(ctx, composeA, "image.raw", other.ID))
	err = s.CompleteUpload(ctx, composeA, "image.raw", other.ID, otherDone, int64(len(data)))
	assert.Equal(t, minio.NoSuchUpload, minio.ToErrorResponse(err).Code, "%v", err)
	assert.Equal(t, string(data), readAll(t, s, composeA, "image.raw"), "the file is untouched")

	// Nor is an upload that never was.
	assert.Error(t, s.CompleteUpload(ctx, composeA, "missing.raw", up.ID, done, int64(len(data))))
}

// madeOf knows an object assembled from parts by the ETag S3 gives it, and
// by its content's MD5 for one part.
func TestMadeOf(t *testing.T) {
	pieces := [][]byte{bytes.Repeat([]byte("a"), 5<<20), []byte("tail")}
	var parts []CompletedPart
	var digests []byte
	for i, p := range pieces {
		sum := md5.Sum(p)
		digests = append(digests, sum[:]...)
		parts = append(parts, CompletedPart{Number: i + 1, ETag: `"` + hex.EncodeToString(sum[:]) + `"`})
	}
	whole := md5.Sum(digests)
	s3ETag := hex.EncodeToString(whole[:]) + "-2"
	assert.True(t, madeOf(s3ETag, parts))
	assert.True(t, madeOf(`"`+s3ETag+`"`, parts))
	assert.False(t, madeOf(s3ETag, parts[:1]), "one part less")
	assert.False(t, madeOf(hex.EncodeToString(whole[:])+"-3", parts), "another count")
	assert.False(t, madeOf(s3ETag, []CompletedPart{parts[1], parts[0]}), "another order")
	assert.True(t, madeOf(strings.Trim(parts[0].ETag, `"`), parts[:1]), "one part: its content's MD5")
	assert.False(t, madeOf(strings.Trim(parts[0].ETag, `"`), parts), "several parts: not the first one's")
	assert.False(t, madeOf(s3ETag, []CompletedPart{{Number: 1, ETag: "kms-opaque"}, parts[1]}), "ETags that are no MD5")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The download key is made once and then read back: links signed before
// a restart still work after it.
func TestLocalDownloadKey(t *testing.T) {
	l := Local{Dir: filepath.Join(t.TempDir(), "artifacts")}
	k1, err := l.DownloadKey()
	require.NoError(t, err)
	assert.Len(t, k1, 32)
	k2, err := l.DownloadKey()
	require.NoError(t, err)
	assert.Equal(t, k1, k2)
	st, err := os.Stat(filepath.Join(l.Dir, ".download-key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "only the service reads it")
	other, err := Local{Dir: t.TempDir()}.DownloadKey()
	require.NoError(t, err)
	assert.NotEqual(t, k1, other, "each directory its own random key")
}
