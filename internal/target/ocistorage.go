package target

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/objectstorage"
)

// OCIConfig is the [targets.oci] section: the Oracle Cloud Object
// Storage bucket oci.objectstorage uploads to, and the operator's API
// key that signs the requests.
//
//	[targets.oci]
//	tenancy = "ocid1.tenancy.oc1..aaaa"
//	user = "ocid1.user.oc1..aaaa"
//	fingerprint = "12:34:...:ef"
//	private_key_file = "/etc/kiln/oci-api-key.pem"
//	region = "eu-frankfurt-1"
//	namespace = "mytenancyns"
//	bucket = "kiln-images"
//	par_expiry = "168h"
type OCIConfig struct {
	// Tenancy, User and Fingerprint name the API key: the tenancy's and
	// the user's OCIDs and the key's fingerprint.
	Tenancy     string `toml:"tenancy"`
	User        string `toml:"user"`
	Fingerprint string `toml:"fingerprint"`
	// PrivateKeyFile is the API key's PEM file; PrivateKeyPassphraseEnv
	// names the environment variable holding its passphrase, if it has
	// one.
	PrivateKeyFile          string `toml:"private_key_file"`
	PrivateKeyPassphraseEnv string `toml:"private_key_passphrase_env"`
	// Region is the bucket's region ("eu-frankfurt-1").
	Region string `toml:"region"`
	// Namespace is the tenancy's Object Storage namespace; Bucket the
	// bucket images go to.
	Namespace string `toml:"namespace"`
	Bucket    string `toml:"bucket"`
	// Endpoint replaces the region's Object Storage endpoint (an
	// "http(s)://host:port" URL), for a test server.
	Endpoint string `toml:"endpoint"`
	// PARExpiry is how long the download link (a pre-authenticated
	// request) works. Default 7 days.
	PARExpiry time.Duration `toml:"par_expiry"`
	// PartSize is the size of a multipart upload's parts, in bytes; a
	// smaller file is one PutObject. Default 128 MiB; at least 1 MiB.
	PartSize int64 `toml:"part_size"`
	// Parallel is how many parts are uploaded at once. Default 4.
	Parallel int `toml:"parallel"`
}

// OCI defaults.
const (
	DefaultOCIPARExpiry = 7 * 24 * time.Hour
	DefaultOCIPartSize  = 128 << 20
	minOCIPartSize      = 1 << 20
	maxOCIParts         = 10000
)

// OCIObjectStorage is the oci.objectstorage upload type: the image is
// uploaded to the operator's bucket (in parallel parts when it is big),
// checked against its MD5 there, and the status gives a pre-authenticated
// request's URL that reads it until it expires.
type OCIObjectStorage struct {
	client    objectstorage.ObjectStorageClient
	endpoint  string
	namespace string
	bucket    string
	parExpiry time.Duration
	partSize  int64
	parallel  int
	// retryBase is the first wait before a failed request is tried again
	// (then doubled, five attempts in all).
	retryBase time.Duration
}

// NewOCIObjectStorage makes the oci.objectstorage target of a
// [targets.oci] section.
func NewOCIObjectStorage(cfg OCIConfig, env Env) (*OCIObjectStorage, error) {
	var problems []string
	need := func(field, value, what string) {
		if strings.TrimSpace(value) == "" {
			problems = append(problems, fmt.Sprintf("[targets.oci].%s: missing: give %s", field, what))
		}
	}
	need("tenancy", cfg.Tenancy, "the tenancy's OCID")
	need("user", cfg.User, "the OCID of the user whose API key signs the requests")
	need("fingerprint", cfg.Fingerprint, "the API key's fingerprint")
	need("region", cfg.Region, "the bucket's region, e.g. \"eu-frankfurt-1\"")
	need("namespace", cfg.Namespace, "the tenancy's Object Storage namespace")
	need("bucket", cfg.Bucket, "the bucket images are uploaded to")
	need("private_key_file", cfg.PrivateKeyFile, "the API key's PEM file")
	var key []byte
	if cfg.PrivateKeyFile != "" {
		var err error
		if key, err = os.ReadFile(cfg.PrivateKeyFile); err != nil {
			problems = append(problems, fmt.Sprintf("[targets.oci].private_key_file: %v", err))
		}
	}
	var passphrase *string
	if cfg.PrivateKeyPassphraseEnv != "" {
		v := env(cfg.PrivateKeyPassphraseEnv)
		if v == "" {
			problems = append(problems, fmt.Sprintf("[targets.oci].private_key_passphrase_env: the environment variable %s is empty or not set: set it to the key's passphrase", cfg.PrivateKeyPassphraseEnv))
		}
		passphrase = &v
	}
	if cfg.Endpoint != "" && !strings.HasPrefix(cfg.Endpoint, "https://") && !strings.HasPrefix(cfg.Endpoint, "http://") {
		problems = append(problems, fmt.Sprintf("[targets.oci].endpoint: %q is not an http(s):// URL", cfg.Endpoint))
	}
	if cfg.PARExpiry < 0 {
		problems = append(problems, "[targets.oci].par_expiry: must be positive, e.g. \"168h\"")
	}
	if cfg.PartSize != 0 && cfg.PartSize < minOCIPartSize {
		problems = append(problems, fmt.Sprintf("[targets.oci].part_size: %d is less than 1 MiB (%d)", cfg.PartSize, minOCIPartSize))
	}
	if cfg.Parallel < 0 {
		problems = append(problems, "[targets.oci].parallel: must be 1 or more (or 0 for the default, 4)")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	provider := common.NewRawConfigurationProvider(cfg.Tenancy, cfg.User, cfg.Region, cfg.Fingerprint, string(key), passphrase)
	if _, err := provider.PrivateRSAKey(); err != nil {
		return nil, fmt.Errorf("[targets.oci].private_key_file: %s is not a usable RSA private key (or its passphrase is wrong): %v", cfg.PrivateKeyFile, err)
	}
	client, err := objectstorage.NewObjectStorageClientWithConfigurationProvider(provider)
	if err != nil {
		return nil, fmt.Errorf("[targets.oci]: %v", err)
	}
	o := &OCIObjectStorage{
		client:    client,
		namespace: cfg.Namespace,
		bucket:    cfg.Bucket,
		parExpiry: cfg.PARExpiry,
		partSize:  cfg.PartSize,
		parallel:  cfg.Parallel,
		retryBase: time.Second,
	}
	o.setRetry()
	if cfg.Endpoint != "" {
		o.endpoint = strings.TrimRight(cfg.Endpoint, "/")
	} else {
		// The region's endpoint, as the SDK fills its template in.
		base := o.client.BaseClient
		common.UpdateEndpointTemplateForOptions(&base)
		common.SetMissingTemplateParams(&base)
		o.endpoint = base.Host
	}
	o.client.Host = o.endpoint
	if o.parExpiry == 0 {
		o.parExpiry = DefaultOCIPARExpiry
	}
	if o.partSize == 0 {
		o.partSize = DefaultOCIPartSize
	}
	if o.parallel == 0 {
		o.parallel = 4
	}
	return o, nil
}

// setRetry makes the client try a failed request (a dropped connection,
// 429, a 5xx) up to five times, waiting retryBase, then twice as long
// each time. The SDK's circuit breaker is left out: an upload's requests
// fail or succeed by this policy alone, and a failure is the upload's.
// Setting the client's configuration resets its endpoint to the region's,
// which the caller sets again.
func (o *OCIObjectStorage) setRetry() {
	base := o.retryBase
	policy := common.NewRetryPolicy(5,
		func(r common.OCIOperationResponse) bool {
			return common.IsErrorRetryableByDefault(r.Error)
		},
		func(r common.OCIOperationResponse) time.Duration {
			return base * time.Duration(math.Pow(2, float64(r.AttemptNumber-1)))
		})
	o.client.SetCustomClientConfiguration(common.CustomClientConfiguration{RetryPolicy: &policy})
}

// Type implements Target.
func (*OCIObjectStorage) Type() string { return "oci.objectstorage" }

// Check implements Target: any image, no options (image-builder's
// OCIUploadRequestOptions has none).
func (*OCIObjectStorage) Check(_ Image, options json.RawMessage) error {
	return DecodeOptions(options, nil)
}

// ociObjectName is where a compose's image goes in the bucket: the same
// name each time the compose is uploaded, so a second attempt replaces or
// reuses what the first left.
func ociObjectName(a Artifact) string {
	return path.Join(a.ComposeID, a.Filename)
}

// ociSHA256Meta is the object's metadata (opc-meta-…) holding the image's
// SHA-256, by which a second attempt knows the object is the image.
const ociSHA256Meta = "kiln-sha256"

// Upload implements Target.
//
// A second Upload of the same compose (a requeued job) first aborts the
// multipart uploads the first left open for the object, reuses the
// object if it is already the whole image (its size and SHA-256 metadata
// match), and replaces the download link the first made, so the bucket
// ends with one object and one link for the compose.
func (o *OCIObjectStorage) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	fail := func(step string, err error) (Result, error) {
		return Result{}, &StepError{Target: o.Type(), Step: step, Err: err}
	}
	if err := DecodeOptions(options, nil); err != nil {
		return fail("read the options", err)
	}
	object := ociObjectName(a)
	r.Step(StepUploading)
	if err := o.abortLeftovers(ctx, object); err != nil {
		return fail("abort the uploads a previous attempt left", err)
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return fail("upload the image", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail("upload the image", err)
	}
	size := fi.Size()
	if a.Size > 0 && size != a.Size {
		return fail("upload the image", fmt.Errorf("%s is %d bytes, not the %d the build recorded", a.Filename, size, a.Size))
	}

	var wantMD5 string
	reused, err := o.alreadyThere(ctx, object, a, size)
	if err != nil {
		return fail("upload the image", err)
	}
	if !reused {
		if size <= o.partSize {
			wantMD5, err = o.putObject(ctx, f, size, object, a, r)
		} else {
			wantMD5, err = o.multipartUpload(ctx, f, size, object, a, r)
		}
		if err != nil {
			return fail("upload the image", err)
		}
	}
	if err := o.checkObject(ctx, object, size, wantMD5); err != nil {
		return fail("check the uploaded object", err)
	}
	res, err := o.link(ctx, object, a.Name)
	if err != nil {
		return fail("create the download link", err)
	}
	return res, nil
}

// abortLeftovers aborts the open multipart uploads of object.
func (o *OCIObjectStorage) abortLeftovers(ctx context.Context, object string) error {
	var page *string
	for {
		resp, err := o.client.ListMultipartUploads(ctx, objectstorage.ListMultipartUploadsRequest{
			NamespaceName: &o.namespace, BucketName: &o.bucket, Page: page,
		})
		if err != nil {
			return err
		}
		for _, u := range resp.Items {
			if u.Object == nil || *u.Object != object || u.UploadId == nil {
				continue
			}
			if err := o.abort(ctx, object, *u.UploadId); err != nil {
				return err
			}
		}
		if resp.OpcNextPage == nil || *resp.OpcNextPage == "" {
			return nil
		}
		page = resp.OpcNextPage
	}
}

// abort aborts a multipart upload, with a context of its own when ctx is
// done: an upload canceled through ctx must still be aborted.
func (o *OCIObjectStorage) abort(ctx context.Context, object, uploadID string) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
	}
	_, err := o.client.AbortMultipartUpload(ctx, objectstorage.AbortMultipartUploadRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectName: &object, UploadId: &uploadID,
	})
	return err
}

// alreadyThere reports whether object is already the whole image, as a
// first attempt that stopped after uploading it leaves it.
func (o *OCIObjectStorage) alreadyThere(ctx context.Context, object string, a Artifact, size int64) (bool, error) {
	if a.SHA256 == "" {
		return false, nil
	}
	resp, err := o.client.HeadObject(ctx, objectstorage.HeadObjectRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectName: &object,
	})
	if err != nil {
		if se, ok := common.IsServiceError(err); ok && se.GetHTTPStatusCode() == http.StatusNotFound {
			return false, nil
		}
		return false, err
	}
	return resp.ContentLength != nil && *resp.ContentLength == size && resp.OpcMeta[ociSHA256Meta] == a.SHA256, nil
}

// sectionBody is a part of the image as a request body the SDK can seek
// back to the start of when it tries the request again.
type sectionBody struct{ *io.SectionReader }

func (sectionBody) Close() error { return nil }

// partMD5 is the MD5 of n bytes of f at off.
func partMD5(f io.ReaderAt, off, n int64) ([]byte, error) {
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// countingBody reports the bytes read through it.
type countingBody struct {
	*io.SectionReader
	read func(int64)
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.SectionReader.Read(p)
	c.read(int64(n))
	return n, err
}

func (countingBody) Close() error { return nil }

// progress forwards bytes sent to a Reporter, a few times a second at
// most.
type progress struct {
	r     Reporter
	total int64
	done  atomic.Int64
	mu    sync.Mutex
	last  time.Time
}

func (p *progress) add(n int64) {
	done := p.done.Add(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 250*time.Millisecond || done >= p.total {
		p.last = now
		p.r.Bytes(min(done, p.total), p.total)
	}
}

// putObject uploads a small image in one request, which the service
// checks against its Content-MD5.
func (o *OCIObjectStorage) putObject(ctx context.Context, f *os.File, size int64, object string, a Artifact, r Reporter) (string, error) {
	sum, err := partMD5(f, 0, size)
	if err != nil {
		return "", err
	}
	md5b64 := base64.StdEncoding.EncodeToString(sum)
	p := &progress{r: r, total: size}
	req := objectstorage.PutObjectRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectName: &object,
		ContentLength: &size,
		ContentMD5:    &md5b64,
		PutObjectBody: countingBody{io.NewSectionReader(f, 0, size), p.add},
		OpcMeta:       o.meta(a),
	}
	if _, err := o.client.PutObject(ctx, req); err != nil {
		return "", err
	}
	return md5b64, nil
}

func (o *OCIObjectStorage) meta(a Artifact) map[string]string {
	if a.SHA256 == "" {
		return nil
	}
	return map[string]string{ociSHA256Meta: a.SHA256}
}

// multipartUpload uploads a big image in parts, o.parallel at a time,
// each checked by the service against its Content-MD5, and aborts the
// upload if any part fails or ctx ends. It returns the multipart MD5 the
// service should give the object.
func (o *OCIObjectStorage) multipartUpload(ctx context.Context, f *os.File, size int64, object string, a Artifact, r Reporter) (_ string, err error) {
	partSize := o.partSize
	if n := (size + partSize - 1) / partSize; n > maxOCIParts {
		partSize = (size + maxOCIParts - 1) / maxOCIParts
	}
	nparts := int((size + partSize - 1) / partSize)
	created, err := o.client.CreateMultipartUpload(ctx, objectstorage.CreateMultipartUploadRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket,
		CreateMultipartUploadDetails: objectstorage.CreateMultipartUploadDetails{Object: &object, Metadata: o.meta(a)},
	})
	if err != nil {
		return "", err
	}
	uploadID := *created.UploadId
	committed := false
	defer func() {
		if !committed {
			if aerr := o.abort(ctx, object, uploadID); aerr != nil {
				err = fmt.Errorf("%w (and aborting the multipart upload %s: %v)", err, uploadID, aerr)
			}
		}
	}()

	p := &progress{r: r, total: size}
	sums := make([][]byte, nparts)
	etags := make([]string, nparts)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, o.parallel)
	var wg sync.WaitGroup
	for range o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := o.uploadPart(pctx, f, size, partSize, i, object, uploadID, sums, etags, p); err != nil {
					errs <- fmt.Errorf("part %d of %d: %w", i+1, nparts, err)
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range nparts {
		select {
		case next <- i:
		case <-pctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	details := objectstorage.CommitMultipartUploadDetails{}
	all := md5.New()
	for i := range nparts {
		num := i + 1
		details.PartsToCommit = append(details.PartsToCommit, objectstorage.CommitMultipartUploadPartDetails{PartNum: &num, Etag: &etags[i]})
		all.Write(sums[i])
	}
	want := fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(all.Sum(nil)), nparts)
	resp, err := o.client.CommitMultipartUpload(ctx, objectstorage.CommitMultipartUploadRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectName: &object, UploadId: &uploadID,
		CommitMultipartUploadDetails: details,
	})
	if err != nil {
		return "", err
	}
	committed = true
	if resp.OpcMultipartMd5 != nil && *resp.OpcMultipartMd5 != want {
		return "", fmt.Errorf("the service computed the multipart MD5 %s, not the %s of the parts sent", *resp.OpcMultipartMd5, want)
	}
	return want, nil
}

// uploadPart uploads part i (from 0), checked by the service against its
// MD5.
func (o *OCIObjectStorage) uploadPart(ctx context.Context, f *os.File, size, partSize int64, i int, object, uploadID string, sums [][]byte, etags []string, p *progress) error {
	off := int64(i) * partSize
	n := min(partSize, size-off)
	sum, err := partMD5(f, off, n)
	if err != nil {
		return err
	}
	sums[i] = sum
	md5b64 := base64.StdEncoding.EncodeToString(sum)
	num := i + 1
	resp, err := o.client.UploadPart(ctx, objectstorage.UploadPartRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectName: &object,
		UploadId: &uploadID, UploadPartNum: &num, ContentLength: &n, ContentMD5: &md5b64,
		UploadPartBody: sectionBody{io.NewSectionReader(f, off, n)},
	})
	if err != nil {
		return err
	}
	if resp.ETag == nil {
		return fmt.Errorf("the service gave no ETag for the part")
	}
	if resp.OpcContentMd5 != nil && *resp.OpcContentMd5 != md5b64 {
		return fmt.Errorf("the service received MD5 %s, not the %s sent", *resp.OpcContentMd5, md5b64)
	}
	etags[i] = *resp.ETag
	p.add(n)
	return nil
}

// checkObject checks the object's size, and its MD5 when this attempt
// uploaded it.
func (o *OCIObjectStorage) checkObject(ctx context.Context, object string, size int64, wantMD5 string) error {
	resp, err := o.client.HeadObject(ctx, objectstorage.HeadObjectRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectName: &object,
	})
	if err != nil {
		return err
	}
	if resp.ContentLength == nil || *resp.ContentLength != size {
		got := "no"
		if resp.ContentLength != nil {
			got = fmt.Sprint(*resp.ContentLength)
		}
		return fmt.Errorf("the object has %s bytes, not the image's %d", got, size)
	}
	if wantMD5 == "" {
		return nil
	}
	got := resp.ContentMd5
	if strings.Contains(wantMD5, "-") {
		got = resp.OpcMultipartMd5
	}
	if got == nil || *got != wantMD5 {
		shown := "none"
		if got != nil {
			shown = *got
		}
		return fmt.Errorf("the object's MD5 is %s, not the %s uploaded", shown, wantMD5)
	}
	return nil
}

// link replaces the object's download links (pre-authenticated requests
// named name that a previous attempt made) with a new one.
func (o *OCIObjectStorage) link(ctx context.Context, object, name string) (Result, error) {
	var old []string
	var page *string
	for {
		resp, err := o.client.ListPreauthenticatedRequests(ctx, objectstorage.ListPreauthenticatedRequestsRequest{
			NamespaceName: &o.namespace, BucketName: &o.bucket, ObjectNamePrefix: &object, Page: page,
		})
		if err != nil {
			return Result{}, err
		}
		for _, p := range resp.Items {
			if p.ObjectName != nil && *p.ObjectName == object && p.Name != nil && *p.Name == name && p.Id != nil {
				old = append(old, *p.Id)
			}
		}
		if resp.OpcNextPage == nil || *resp.OpcNextPage == "" {
			break
		}
		page = resp.OpcNextPage
	}
	sort.Strings(old)
	for _, id := range old {
		if _, err := o.client.DeletePreauthenticatedRequest(ctx, objectstorage.DeletePreauthenticatedRequestRequest{
			NamespaceName: &o.namespace, BucketName: &o.bucket, ParId: &id,
		}); err != nil {
			return Result{}, err
		}
	}
	expires := time.Now().Add(o.parExpiry).UTC().Truncate(time.Second)
	resp, err := o.client.CreatePreauthenticatedRequest(ctx, objectstorage.CreatePreauthenticatedRequestRequest{
		NamespaceName: &o.namespace, BucketName: &o.bucket,
		CreatePreauthenticatedRequestDetails: objectstorage.CreatePreauthenticatedRequestDetails{
			Name:        &name,
			ObjectName:  &object,
			AccessType:  objectstorage.CreatePreauthenticatedRequestDetailsAccessTypeObjectread,
			TimeExpires: &common.SDKTime{Time: expires},
		},
	})
	if err != nil {
		return Result{}, err
	}
	var url string
	switch {
	case resp.FullPath != nil && *resp.FullPath != "":
		url = *resp.FullPath
	case resp.AccessUri != nil:
		url = o.endpoint + *resp.AccessUri
	default:
		return Result{}, fmt.Errorf("the service gave the link no URL")
	}
	if resp.TimeExpires != nil {
		expires = resp.TimeExpires.Time.UTC()
	}
	return Result{URL: url, ExpiresAt: &expires}, nil
}
