package target

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The upload of an image file to S3, shared by aws.s3 (the object is the
// deliverable) and aws (the object is the staging copy EC2 imports).
//
// The multipart upload is feature/s3/transfermanager's: feature/s3/manager
// is deprecated by the SDK's makers, and transfermanager aborts a failed
// multipart upload on a fresh context (FailTimeout), so a canceled upload
// leaves no parts behind. What landed is checked against the file: the
// object's size, and its ETag against the MD5 of each part computed while
// the file streams out (S3's multipart ETag is the MD5 of the parts' MD5s,
// a dash and the part count; a single PUT's is the file's MD5).

// AWSAccess is how a section reaches AWS: the region and the operator's
// credentials. With none of the fields naming credentials, the SDK's
// default chain finds them (AWS_ACCESS_KEY_ID and friends, the shared
// files, an instance or task role).
type AWSAccess struct {
	// Region is the AWS region.
	Region string `toml:"region"`
	// Profile names a profile of the shared configuration files.
	Profile string `toml:"profile"`
	// AccessKeyIDEnv and SecretAccessKeyEnv name environment variables
	// that hold a static key pair (SessionTokenEnv its session token),
	// for a server that runs several sections with different keys.
	AccessKeyIDEnv     string `toml:"access_key_id_env"`
	SecretAccessKeyEnv string `toml:"secret_access_key_env"`
	SessionTokenEnv    string `toml:"session_token_env"`
	// MaxAttempts bounds the tries of one call, the first included
	// (default 5); MaxBackoff the wait between two (default 20s). Waits
	// grow exponentially with jitter, as the SDK's standard retryer does.
	MaxAttempts int      `toml:"max_attempts"`
	MaxBackoff  Duration `toml:"max_backoff"`
}

// Duration is a time.Duration written as "90s", "1h" in the
// configuration file.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// awsConfig loads the SDK configuration a section describes. region
// overrides the section's when not empty.
func (a AWSAccess) awsConfig(ctx context.Context, section string, env Env, region string) (aws.Config, error) {
	if region == "" {
		region = a.Region
	}
	attempts := a.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := time.Duration(a.MaxBackoff)
	if backoff <= 0 {
		backoff = 20 * time.Second
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = backoff
			})
		}),
	}
	if a.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.Profile))
	}
	if a.AccessKeyIDEnv != "" || a.SecretAccessKeyEnv != "" {
		creds, err := a.staticCredentials(section, env)
		if err != nil {
			return aws.Config{}, err
		}
		opts = append(opts, config.WithCredentialsProvider(creds))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("[targets.%s]: %w", section, err)
	}
	return cfg, nil
}

// check reports what is wrong with the section's access fields.
func (a AWSAccess) check(section string, env Env) []string {
	var problems []string
	if a.Region == "" {
		problems = append(problems, fmt.Sprintf("[targets.%s] region: required (an AWS region such as \"us-east-1\")", section))
	}
	if a.AccessKeyIDEnv != "" || a.SecretAccessKeyEnv != "" {
		if _, err := a.staticCredentials(section, env); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

func (a AWSAccess) staticCredentials(section string, env Env) (aws.CredentialsProvider, error) {
	if a.AccessKeyIDEnv == "" || a.SecretAccessKeyEnv == "" {
		return nil, fmt.Errorf("[targets.%s] access_key_id_env, secret_access_key_env: set both or neither (neither: the SDK's default chain finds the credentials)", section)
	}
	id, secret := env(a.AccessKeyIDEnv), env(a.SecretAccessKeyEnv)
	if id == "" || secret == "" {
		return nil, fmt.Errorf("[targets.%s] access_key_id_env, secret_access_key_env: the environment variables %s and %s must both be set", section, a.AccessKeyIDEnv, a.SecretAccessKeyEnv)
	}
	token := ""
	if a.SessionTokenEnv != "" {
		token = env(a.SessionTokenEnv)
	}
	return credentials.NewStaticCredentialsProvider(id, secret, token), nil
}

// S3Endpoint says how a section reaches S3 or an S3-compatible server.
type S3Endpoint struct {
	// Endpoint is the server's URL; empty for AWS's own.
	Endpoint string `toml:"endpoint"`
	// PathStyle addresses buckets in the path rather than the host name,
	// as most S3-compatible servers need.
	PathStyle bool `toml:"path_style"`
	// PartSize is the size of one part of a multipart upload, in MiB
	// (default 16; at least 5, as S3 requires); Concurrency how many
	// parts are sent at once (default 8).
	PartSize    int64 `toml:"part_size_mib"`
	Concurrency int   `toml:"concurrency"`
}

// newS3Client makes the S3 client of cfg, for ep. Payloads are not
// hashed into the signature (TLS protects them in flight, and the ETag
// check proves what landed), nor sent with the flexible checksums that
// many S3-compatible servers do not speak: both would cost a pass over
// every part for nothing the ETag does not already prove.
func newS3Client(cfg aws.Config, ep S3Endpoint) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if ep.Endpoint != "" {
			o.BaseEndpoint = aws.String(ep.Endpoint)
		}
		o.UsePathStyle = ep.PathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
}

const (
	mib                 = 1 << 20
	defaultPartSize     = 16 * mib
	defaultConcurrency  = 8
	maxUploadParts      = 10000
	minPartSize         = 5 * mib
	cleanupTimeout      = 2 * time.Minute
	progressMinInterval = 250 * time.Millisecond
)

// partSize is the part size for a file of size bytes: ep's, grown so the
// file fits S3's 10,000 parts.
func (ep S3Endpoint) partSize(size int64) int64 {
	ps := ep.PartSize * mib
	if ps < minPartSize {
		ps = defaultPartSize
	}
	if size/ps >= maxUploadParts {
		ps = size/(maxUploadParts-1) + 1
	}
	return ps
}

func (ep S3Endpoint) concurrency() int {
	if ep.Concurrency > 0 {
		return ep.Concurrency
	}
	return defaultConcurrency
}

// s3Uploader puts image files into a bucket.
type s3Uploader struct {
	client   *s3.Client
	endpoint S3Endpoint
	bucket   string
}

// put uploads the file at path (size bytes) to key, in parallel parts,
// and checks what landed. An earlier attempt's open multipart uploads of
// the same key are aborted first (a requeued job starts its upload
// again), and a failed or canceled upload aborts its own.
func (u s3Uploader) put(ctx context.Context, key, path string, size int64, r Reporter) error {
	if err := u.abortOpenUploads(ctx, key); err != nil {
		return fmt.Errorf("abort an earlier attempt's upload: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	partSize := u.endpoint.partSize(size)
	sums := &partSums{}
	tm := transfermanager.New(hashingClient{Client: u.client, sums: sums}, func(o *transfermanager.Options) {
		o.PartSizeBytes = partSize
		o.MultipartUploadThreshold = partSize
		o.Concurrency = u.endpoint.concurrency()
		o.FailTimeout = cleanupTimeout
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ObjectProgressListeners.Register(&progressListener{r: r})
	})
	out, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:        aws.String(u.bucket),
		Key:           aws.String(key),
		Body:          f,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		// transfermanager aborts its multipart upload; an abort that
		// itself failed (the server went away) is tried once more.
		cctx, cancel := cleanupContext()
		defer cancel()
		_ = u.abortOpenUploads(cctx, key)
		return err
	}
	want, sent := sums.etag()
	if sent != size {
		u.remove(key)
		return fmt.Errorf("the image file changed while it was sent: %d bytes sent, %d expected", sent, size)
	}
	return u.verify(ctx, key, size, want, aws.ToString(out.ETag))
}

// verify checks the object at key against the file's size and ETag,
// removing an object that does not match.
func (u s3Uploader) verify(ctx context.Context, key string, size int64, want, got string) error {
	head, err := u.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("check what landed: %w", err)
	}
	if n := aws.ToInt64(head.ContentLength); n != size {
		u.remove(key)
		return fmt.Errorf("check what landed: the object has %d bytes, the image %d", n, size)
	}
	got = strings.Trim(got, `"`)
	if got == "" {
		got = strings.Trim(aws.ToString(head.ETag), `"`)
	}
	if got != want {
		u.remove(key)
		return fmt.Errorf("check what landed: the object's ETag is %q, the image's parts give %q", got, want)
	}
	return nil
}

// remove deletes key, on a context of its own: it cleans up after a
// failure, which may be the caller's context ending.
func (u s3Uploader) remove(key string) error {
	ctx, cancel := cleanupContext()
	defer cancel()
	_, err := u.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(key)})
	return err
}

// abortOpenUploads aborts the multipart uploads of key left open.
func (u s3Uploader) abortOpenUploads(ctx context.Context, key string) error {
	out, err := u.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(u.bucket), Prefix: aws.String(key)})
	if err != nil {
		return err
	}
	var errs []error
	for _, up := range out.Uploads {
		if aws.ToString(up.Key) != key {
			continue
		}
		_, err := u.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(u.bucket), Key: up.Key, UploadId: up.UploadId})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cleanupContext is the context cleanup after a failure runs on: not the
// failed upload's, which may have ended.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cleanupTimeout)
}

// hashingClient is the S3 client transfermanager uploads through: it
// hashes each part (or the single PUT) in the goroutine that sends it,
// so the parts' MD5s, which the ETag check needs, are computed in
// parallel as the parts go.
type hashingClient struct {
	*s3.Client
	sums *partSums
}

// UploadPart implements transfermanager.S3APIClient.
func (c hashingClient) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if err := c.sums.add(aws.ToInt32(in.PartNumber), in.Body); err != nil {
		return nil, err
	}
	return c.Client.UploadPart(ctx, in, opts...)
}

// PutObject implements transfermanager.S3APIClient.
func (c hashingClient) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if err := c.sums.add(0, in.Body); err != nil {
		return nil, err
	}
	return c.Client.PutObject(ctx, in, opts...)
}

// partSums are the MD5s of the parts sent, by part number (0: a single
// PUT), and their sizes.
type partSums struct {
	mu    sync.Mutex
	sums  map[int32][]byte
	sizes map[int32]int64
}

// add hashes a part's body, which transfermanager gives as a seekable
// buffer, and rewinds it for sending.
func (p *partSums) add(part int32, body io.Reader) error {
	rs, ok := body.(io.ReadSeeker)
	if !ok {
		return fmt.Errorf("part %d is not seekable, so it cannot be hashed before it is sent", part)
	}
	h := md5.New()
	n, err := io.Copy(h, rs)
	if err != nil {
		return err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sums == nil {
		p.sums, p.sizes = map[int32][]byte{}, map[int32]int64{}
	}
	p.sums[part], p.sizes[part] = h.Sum(nil), n
	return nil
}

// etag is the ETag S3 gives the object: the MD5 of a single PUT, or the
// MD5 of the parts' MD5s, a dash and the part count; and the bytes sent.
func (p *partSums) etag() (string, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sum, ok := p.sums[0]; ok && len(p.sums) == 1 {
		return hex.EncodeToString(sum), p.sizes[0]
	}
	parts := make([]int32, 0, len(p.sums))
	for n := range p.sums {
		parts = append(parts, n)
	}
	slices.Sort(parts)
	h := md5.New()
	var sent int64
	for _, n := range parts {
		h.Write(p.sums[n])
		sent += p.sizes[n]
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts)), sent
}

// progressListener passes the upload's progress on to a Reporter, a few
// times a second at most.
type progressListener struct {
	r    Reporter
	mu   sync.Mutex
	last time.Time
	done int64
}

// OnObjectBytesTransferred implements transfermanager's listener.
func (p *progressListener) OnObjectBytesTransferred(_ context.Context, e *transfermanager.ObjectBytesTransferredEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = e.BytesTransferred
	if e.BytesTransferred < e.TotalBytes && time.Since(p.last) < progressMinInterval {
		return
	}
	p.last = time.Now()
	p.r.Bytes(e.BytesTransferred, e.TotalBytes)
}
