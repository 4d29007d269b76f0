package artifacts

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says which bucket an S3 store uses and how it reaches it.
type S3Config struct {
	Bucket string
	// Prefix, when set, is put before every key: prefix/<compose id>/<name>.
	Prefix string
	// Endpoint is the server's URL, such as http://127.0.0.1:9000 (empty:
	// AWS, over HTTPS).
	Endpoint string
	// Region is the bucket's region. Default us-east-1.
	Region string
	// PathStyle addresses the bucket in the URL's path
	// (endpoint/bucket/key) rather than in its host name
	// (bucket.endpoint/key).
	PathStyle bool
	// The credentials requests are signed with.
	AccessKeyID, SecretAccessKey, SessionToken string
	// PartSize is the size of the parts of a multipart upload. Default
	// 64 MiB; S3 needs at least 5 MiB.
	PartSize int64
	// Transport, when set, carries the requests (default: Go's).
	Transport http.RoundTripper
}

// ParseS3 reads an S3 store's spec, s3://bucket[/prefix][?query], with
// the query parameters
//
//   - endpoint=URL: an S3-compatible server rather than AWS;
//   - region=R: the bucket's region (default us-east-1);
//   - addressing=path|virtual: how the bucket is named in requests.
//     Default: path-style when an endpoint is given (what most
//     S3-compatible servers expect), else virtual-host style (what AWS
//     expects).
//
// The credentials come from the environment: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and, for temporary ones, AWS_SESSION_TOKEN.
func ParseS3(u *url.URL) (S3Config, error) {
	cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if cfg.Bucket == "" {
		return cfg, errors.New("the bucket is missing: s3://bucket[/prefix]")
	}
	if u.User != nil {
		return cfg, errors.New("credentials do not belong in the spec: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	q := u.Query()
	for k := range q {
		if k != "endpoint" && k != "region" && k != "addressing" {
			return cfg, fmt.Errorf("unknown parameter %q: expected endpoint, region or addressing", k)
		}
	}
	cfg.Endpoint, cfg.Region = q.Get("endpoint"), q.Get("region")
	switch q.Get("addressing") {
	case "":
		cfg.PathStyle = cfg.Endpoint != ""
	case "path":
		cfg.PathStyle = true
	case "virtual":
	default:
		return cfg, fmt.Errorf("addressing=%q: expected path or virtual", q.Get("addressing"))
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	cfg.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return cfg, errors.New("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the bucket's credentials")
	}
	return cfg, nil
}

// S3 stores files in an S3-compatible bucket, as objects
// prefix/<compose id>/<name>. S3 cannot append to an object, so each
// Append is an object of its own, prefix/<compose id>/.log/<name>/<seq>-<random>,
// and Open presents those chunks concatenated in key order.
type S3 struct {
	cfg    S3Config
	client *minio.Client
	core   minio.Core

	mu sync.Mutex
	// lastChunk is the last chunk key seen per log, so that an Append
	// lists only the chunks written after it.
	lastChunk map[string]string
}

var (
	_ Store     = (*S3)(nil)
	_ Presigner = (*S3)(nil)
)

// MaxPresignExpiry is the longest a presigned URL (SigV4) may last.
const MaxPresignExpiry = 7 * 24 * time.Hour

// NewS3 returns the store for cfg. It makes no request: a bucket that
// does not exist or refuses the credentials shows at the first use.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = 64 << 20
	}
	if cfg.PartSize < 5<<20 {
		return nil, errors.New("the part size must be at least 5 MiB")
	}
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("endpoint=%q: expected http(s)://host[:port]", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, err
	}
	return &S3{cfg: cfg, client: c, core: minio.Core{Client: c}, lastChunk: map[string]string{}}, nil
}

func (s *S3) composeDir(composeID string) string {
	if s.cfg.Prefix == "" {
		return composeID + "/"
	}
	return s.cfg.Prefix + "/" + composeID + "/"
}

func (s *S3) key(composeID, name string) string { return s.composeDir(composeID) + name }

// chunkDir is where a log's chunks are. ".log" is no file name (names
// start with a letter or digit), so it never meets a file.
func (s *S3) chunkDir(composeID, name string) string {
	return s.composeDir(composeID) + ".log/" + name + "/"
}

func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == minio.NoSuchKey || code == "NotFound"
}

// Put implements Store: a multipart upload once r is longer than a part.
func (s *S3) Put(ctx context.Context, composeID, name string, r io.Reader) (int64, error) {
	if err := check(composeID, name); err != nil {
		return 0, err
	}
	// A file that fits in the first MiB goes in one request of known
	// length (some servers refuse an empty streamed one).
	head := make([]byte, 1<<20)
	n, err := io.ReadFull(r, head)
	size := int64(-1)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		size, r = int64(n), bytes.NewReader(head[:n])
	case err != nil:
		return 0, err
	default:
		r = io.MultiReader(bytes.NewReader(head), r)
	}
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(composeID, name), r, size,
		minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: uint64(s.cfg.PartSize), DisableContentSha256: true})
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

// Append implements Store: data becomes the log's next chunk. Its number
// is one more than the last chunk's, so appends that follow one another
// are read in order even when different servers store them; a random
// suffix keeps two concurrent appends from overwriting each other.
func (s *S3) Append(ctx context.Context, composeID, name string, data []byte) error {
	if err := check(composeID, name); err != nil {
		return err
	}
	dir := s.chunkDir(composeID, name)
	s.mu.Lock()
	last := s.lastChunk[dir]
	s.mu.Unlock()
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir, StartAfter: last, Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if obj.Key > last {
			last = obj.Key
		}
	}
	var seq uint64
	if last != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(last, dir)[:12], 10, 64)
		if err != nil {
			return fmt.Errorf("a chunk of %s is not numbered: %s", name, last)
		}
		seq = n
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	key := fmt.Sprintf("%s%012d-%s", dir, seq+1, hex.EncodeToString(b[:]))
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "text/plain; charset=utf-8", DisableContentSha256: true}); err != nil {
		return err
	}
	s.mu.Lock()
	if len(s.lastChunk) > 10000 {
		clear(s.lastChunk)
	}
	if key > s.lastChunk[dir] {
		s.lastChunk[dir] = key
	}
	s.mu.Unlock()
	return nil
}

// Open implements Store: the object, else the file's chunks in order.
func (s *S3) Open(ctx context.Context, composeID, name string) (File, error) {
	if err := check(composeID, name); err != nil {
		return nil, ErrNotFound
	}
	f := &s3File{ctx: ctx, s: s, name: name}
	key := s.key(composeID, name)
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	switch {
	case err == nil:
		f.parts = []s3Part{{key: key, size: info.Size}}
		f.size, f.mod = info.Size, info.LastModified
		return f, nil
	case !notFound(err):
		return nil, err
	}
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.chunkDir(composeID, name), Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		f.parts = append(f.parts, s3Part{key: obj.Key, start: f.size, size: obj.Size})
		f.size += obj.Size
		if obj.LastModified.After(f.mod) {
			f.mod = obj.LastModified
		}
	}
	if len(f.parts) == 0 {
		return nil, ErrNotFound
	}
	// Listings come sorted by key; say so rather than rely on it.
	slices.SortFunc(f.parts, func(a, b s3Part) int { return strings.Compare(a.key, b.key) })
	var off int64
	for i := range f.parts {
		f.parts[i].start = off
		off += f.parts[i].size
	}
	return f, nil
}

// list calls fn for every object under prefix.
func (s *S3) list(ctx context.Context, prefix string, fn func(minio.ObjectInfo)) error {
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		fn(obj)
	}
	return nil
}

// Delete implements Store, and drops the compose's unfinished uploads.
func (s *S3) Delete(ctx context.Context, composeID string) error {
	if err := checkID(composeID); err != nil {
		return err
	}
	dir := s.composeDir(composeID)
	objs := make(chan minio.ObjectInfo)
	listErr := make(chan error, 1)
	go func() {
		defer close(objs)
		listErr <- s.list(ctx, dir, func(o minio.ObjectInfo) {
			select {
			case objs <- o:
			case <-ctx.Done():
			}
		})
	}()
	var err error
	for e := range s.client.RemoveObjects(ctx, s.cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if err == nil && e.Err != nil && !notFound(e.Err) {
			err = fmt.Errorf("removing %s: %w", e.ObjectName, e.Err)
		}
	}
	if lerr := <-listErr; err == nil {
		err = lerr
	}
	for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, dir, true) {
		if u.Err != nil {
			break // servers that do not list uploads leave them to the bucket's lifecycle rules
		}
		if aerr := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, u.Key, u.UploadID); aerr != nil && err == nil {
			err = aerr
		}
	}
	s.mu.Lock()
	for k := range s.lastChunk {
		if strings.HasPrefix(k, dir) {
			delete(s.lastChunk, k)
		}
	}
	s.mu.Unlock()
	return err
}

// Size implements Store.
func (s *S3) Size(ctx context.Context, composeID string) (int64, error) {
	if err := checkID(composeID); err != nil {
		return 0, err
	}
	var n int64
	err := s.list(ctx, s.composeDir(composeID), func(o minio.ObjectInfo) { n += o.Size })
	return n, err
}

// Usage implements Store: the objects under the prefix.
func (s *S3) Usage(ctx context.Context) (int64, error) {
	prefix := ""
	if s.cfg.Prefix != "" {
		prefix = s.cfg.Prefix + "/"
	}
	var n int64
	err := s.list(ctx, prefix, func(o minio.ObjectInfo) { n += o.Size })
	return n, err
}

func clampExpiry(d time.Duration) time.Duration {
	return min(max(d, time.Second), MaxPresignExpiry)
}

// PresignGet implements Presigner. A SigV4 URL lasts at most 7 days, so a
// longer expiry is cut to that. Only a file stored with Put or an upload
// can be presigned, not an appended log.
func (s *S3) PresignGet(ctx context.Context, composeID, name, filename string, expiry time.Duration) (*url.URL, error) {
	if err := check(composeID, name); err != nil {
		return nil, err
	}
	q := url.Values{"response-content-disposition": {fmt.Sprintf("attachment; filename=%q", filename)}}
	return s.client.PresignedGetObject(ctx, s.cfg.Bucket, s.key(composeID, name), clampExpiry(expiry), q)
}

// maxParts is the most parts S3 takes in one upload.
const maxParts = 10000

// CreateUpload implements Presigner. Parts are PartSize long, larger when
// the file would need more than 10 000 of them.
func (s *S3) CreateUpload(ctx context.Context, composeID, name string, size int64, expiry time.Duration) (Upload, error) {
	if err := check(composeID, name); err != nil {
		return Upload{}, err
	}
	if size < 0 {
		return Upload{}, errors.New("the size is negative")
	}
	partSize := s.cfg.PartSize
	if size > partSize*maxParts {
		partSize = ((size+maxParts-1)/maxParts + 1<<20 - 1) &^ (1<<20 - 1)
	}
	n := max(1, int((size+partSize-1)/partSize))
	expiry = clampExpiry(expiry)
	key := s.key(composeID, name)
	id, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return Upload{}, err
	}
	up := Upload{ID: id, PartSize: partSize, ExpiresAt: time.Now().Add(expiry).UTC().Truncate(time.Second)}
	for i := 1; i <= n; i++ {
		u, err := s.client.Presign(ctx, http.MethodPut, s.cfg.Bucket, key, expiry, url.Values{"partNumber": {strconv.Itoa(i)}, "uploadId": {id}})
		if err != nil {
			_ = s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, key, id)
			return Upload{}, err
		}
		up.Parts = append(up.Parts, UploadPart{Number: i, URL: u.String()})
	}
	return up, nil
}

// CompleteUpload implements Presigner.
func (s *S3) CompleteUpload(ctx context.Context, composeID, name, uploadID string, parts []CompletedPart, size int64) error {
	if err := check(composeID, name); err != nil {
		return err
	}
	if len(parts) == 0 || len(parts) > maxParts {
		return fmt.Errorf("an upload has 1 to %d parts, not %d", maxParts, len(parts))
	}
	done := make([]minio.CompletePart, 0, len(parts))
	for i, p := range parts {
		if p.Number != i+1 || p.ETag == "" {
			return fmt.Errorf("parts[%d]: expected part %d with its ETag", i, i+1)
		}
		done = append(done, minio.CompletePart{PartNumber: p.Number, ETag: p.ETag})
	}
	key := s.key(composeID, name)
	var info minio.ObjectInfo
	_, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, done, minio.PutObjectOptions{})
	if err == nil {
		if info, err = s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{}); err != nil {
			return err
		}
	} else {
		if minio.ToErrorResponse(err).Code != minio.NoSuchUpload {
			return err
		}
		// A completion is tried again when the answer to the first try
		// was lost (the server that made it stopped, or the connection
		// broke), but S3 forgets an upload once it is complete. The
		// retry succeeds if the object there is the one these parts
		// made; else the upload was aborted, or never was.
		var serr error
		if info, serr = s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{}); serr != nil || !madeOf(info.ETag, parts) {
			return err
		}
	}
	if info.Size != size {
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("%s is %d bytes, not %d, and could not be removed: %w", name, info.Size, size, err)
		}
		return fmt.Errorf("%s is %d bytes, not %d: it was removed", name, info.Size, size)
	}
	return nil
}

// madeOf tells whether an object's ETag says it was assembled from parts:
// S3 gives the object of a multipart upload the MD5 of its parts' MD5s
// (their ETags) followed by "-" and their count. Some S3-compatible
// servers give it its content's MD5 instead, which for one part is that
// part's ETag. Parts whose ETags are not MD5s (encrypted objects) cannot
// be matched.
func madeOf(etag string, parts []CompletedPart) bool {
	etag = strings.Trim(etag, `"`)
	if len(parts) == 1 && etag == strings.Trim(parts[0].ETag, `"`) {
		return true
	}
	sums := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return false
		}
		sums.Write(sum)
	}
	return etag == fmt.Sprintf("%x-%d", sums.Sum(nil), len(parts))
}

// AbortUpload implements Presigner.
func (s *S3) AbortUpload(ctx context.Context, composeID, name, uploadID string) error {
	if err := check(composeID, name); err != nil {
		return err
	}
	return s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, s.key(composeID, name), uploadID)
}

// s3Part is one object of an opened file, at start in the file.
type s3Part struct {
	key         string
	start, size int64
}

// s3File reads a file's objects as one, each read a ranged GET that goes
// on while reads follow one another.
type s3File struct {
	ctx   context.Context
	s     *S3
	name  string
	parts []s3Part
	size  int64
	mod   time.Time

	off  int64
	body io.ReadCloser // reading at off, if open
}

func (f *s3File) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for f.off < f.size {
		if f.body == nil {
			i, _ := slices.BinarySearchFunc(f.parts, f.off, func(pt s3Part, off int64) int {
				switch {
				case pt.start+pt.size <= off:
					return -1
				case pt.start > off:
					return 1
				}
				return 0
			})
			pt := f.parts[i]
			opts := minio.GetObjectOptions{}
			if err := opts.SetRange(f.off-pt.start, pt.size-1); err != nil {
				return 0, err
			}
			obj, err := f.s.client.GetObject(f.ctx, f.s.cfg.Bucket, pt.key, opts)
			if err != nil {
				return 0, err
			}
			f.body = obj
		}
		n, err := f.body.Read(p)
		f.off += int64(n)
		if err == io.EOF {
			f.body.Close()
			f.body = nil
			if n == 0 {
				return 0, io.ErrUnexpectedEOF // the object is shorter than listed
			}
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.EOF
}

func (f *s3File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	if offset != f.off && f.body != nil {
		f.body.Close()
		f.body = nil
	}
	f.off = offset
	return offset, nil
}

func (f *s3File) Close() error {
	if f.body != nil {
		f.body.Close()
		f.body = nil
	}
	return nil
}

func (f *s3File) Stat() (fs.FileInfo, error) { return s3Info{f}, nil }

type s3Info struct{ f *s3File }

func (i s3Info) Name() string       { return i.f.name }
func (i s3Info) Size() int64        { return i.f.size }
func (i s3Info) Mode() fs.FileMode  { return 0o444 }
func (i s3Info) ModTime() time.Time { return i.f.mod }
func (i s3Info) IsDir() bool        { return false }
func (i s3Info) Sys() any           { return nil }

// Probe implements Store: an object under the prefix, outside every
// compose's, put, read back and removed.
func (s *S3) Probe(ctx context.Context) error {
	name, data := probeData()
	key := name
	if s.cfg.Prefix != "" {
		key = s.cfg.Prefix + "/" + name
	}
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("writing a probe object: %w", err)
	}
	defer s.client.RemoveObject(context.WithoutCancel(ctx), s.cfg.Bucket, key, minio.RemoveObjectOptions{})
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("reading the probe object back: %w", err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		return fmt.Errorf("reading the probe object back: %w", err)
	}
	if !bytes.Equal(got, data) {
		return errors.New("the probe object read back differs from what was written")
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("removing the probe object: %w", err)
	}
	return nil
}
