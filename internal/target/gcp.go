package target

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"github.com/google/uuid"
	gax "github.com/googleapis/gax-go/v2"
	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// GCP is the gcp upload type: the gce image (a disk.raw in a gzipped
// tar) is uploaded to a bucket of the operator's project, Compute Engine
// imports it as an image (images.insert), the image is shared with the
// request's share_with_accounts (images.setIamPolicy, the role
// roles/compute.imageUser) and the uploaded object is deleted.
//
// Compute is reached through google.golang.org/api/compute/v1, the REST
// client generated from the API's discovery document: it comes with the
// module the storage client already needs and speaks the same REST
// transport, where cloud.google.com/go/compute/apiv1 would add a module
// and a second client stack for the same five calls.
type GCP struct {
	cfg     GCPConfig
	storage *storage.Client
	compute *compute.Service
}

// gcpOptions are image-builder's GCPUploadRequestOptions.
type gcpOptions struct {
	// ShareWithAccounts are IAM members ("user:", "serviceAccount:",
	// "group:", "domain:") given roles/compute.imageUser on the image.
	ShareWithAccounts []string `json:"share_with_accounts,omitempty"`
}

// GCE's image architectures, by the API's name of the architecture.
var gceArch = map[string]string{"x86_64": "X86_64", "aarch64": "ARM64"}

// gcpImageUser is the role that lets an account create disks and
// instances from an image.
const gcpImageUser = "roles/compute.imageUser"

// gcpComposeLabel labels each image with the compose that made it, so a
// requeued upload knows its own image from another of the same name.
const gcpComposeLabel = "kiln-compose"

// Defaults of GCPConfig's tuning fields.
const (
	gcpDefaultPartSize     = 64 << 20
	gcpMinPartSize         = 1 << 20
	gcpMaxComposeSources   = 32
	gcpDefaultParallel     = 4
	gcpDefaultMaxAttempts  = 6
	gcpDefaultRetryDelay   = time.Second
	gcpMaxRetryDelay       = 30 * time.Second
	gcpDefaultPollInterval = 10 * time.Second
	gcpMaxChunkSize        = 16 << 20
	gcpChunkAlign          = 256 << 10
	gcpCleanupTimeout      = 2 * time.Minute
)

// NewGCP checks the [targets.gcp] section and makes its clients, which
// find the credentials now and fetch tokens when a request needs one.
func NewGCP(cfg GCPConfig, env Env) (*GCP, error) {
	var problems []string
	if cfg.Project == "" {
		problems = append(problems, "[targets.gcp] project: missing; name the project the images are made in")
	}
	if cfg.Bucket == "" {
		problems = append(problems, "[targets.gcp] bucket: missing; name a bucket of the project to stage the disk tarballs in")
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = gcpDefaultPartSize
	} else if cfg.PartSize < gcpMinPartSize {
		problems = append(problems, fmt.Sprintf("[targets.gcp] part_size: %d is below the minimum of %d bytes", cfg.PartSize, gcpMinPartSize))
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = gcpDefaultParallel
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = gcpDefaultMaxAttempts
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = gcpDefaultRetryDelay
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = gcpDefaultPollInterval
	}
	storageEndpoint, err := apiEndpoint(cfg.StorageEndpoint, "/storage/v1/")
	if err != nil {
		problems = append(problems, "[targets.gcp] storage_endpoint: "+err.Error())
	}
	computeEndpoint, err := apiEndpoint(cfg.ComputeEndpoint, "/compute/v1/")
	if err != nil {
		problems = append(problems, "[targets.gcp] compute_endpoint: "+err.Error())
	}
	var auth []option.ClientOption
	credsFile, credsField := cfg.CredentialsFile, "credentials_file"
	if credsFile == "" && env != nil {
		credsFile, credsField = env("GOOGLE_APPLICATION_CREDENTIALS"), "GOOGLE_APPLICATION_CREDENTIALS"
	}
	if credsFile != "" {
		credType, err := gcpCredentialsType(credsFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("[targets.gcp] %s: %v", credsField, err))
		} else {
			auth = append(auth, option.WithAuthCredentialsFile(credType, credsFile))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}

	ctx := context.Background()
	storageOpts := append([]option.ClientOption{}, auth...)
	if storageEndpoint != "" {
		storageOpts = append(storageOpts, option.WithEndpoint(storageEndpoint))
	}
	sc, err := storage.NewClient(ctx, storageOpts...)
	if err != nil {
		return nil, fmt.Errorf("[targets.gcp]: the storage client: %w", err)
	}
	// Uploads are retried whatever the request: an object's name is the
	// compose's, so writing it twice makes the same object.
	sc.SetRetry(
		storage.WithBackoff(gax.Backoff{Initial: cfg.RetryDelay, Max: gcpMaxRetryDelay, Multiplier: 2}),
		storage.WithPolicy(storage.RetryAlways),
		storage.WithMaxAttempts(cfg.MaxAttempts),
	)
	computeOpts := append([]option.ClientOption{}, auth...)
	if computeEndpoint != "" {
		computeOpts = append(computeOpts, option.WithEndpoint(computeEndpoint))
	}
	cc, err := compute.NewService(ctx, computeOpts...)
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("[targets.gcp]: the compute client: %w", err)
	}
	return &GCP{cfg: cfg, storage: sc, compute: cc}, nil
}

// apiEndpoint completes an endpoint override: a bare scheme://host gets
// the API's path.
func apiEndpoint(endpoint, apiPath string) (string, error) {
	if endpoint == "" {
		return "", nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not a URL (write e.g. https://host:port)", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = apiPath
	} else if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

// gcpCredentialsType reads the type of a credentials file, without
// keeping (or ever showing) its secrets.
func gcpCredentialsType(path string) (option.CredentialsType, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the credentials file: %w", err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("the credentials file %s is not JSON (give a service account's key file)", path)
	}
	switch t := option.CredentialsType(head.Type); t {
	case option.ServiceAccount, option.ExternalAccount, option.ImpersonatedServiceAccount, option.AuthorizedUser:
		return t, nil
	default:
		return "", fmt.Errorf("the credentials file %s has type %q; give a service account's key file (type %q) or an external account's configuration", path, head.Type, option.ServiceAccount)
	}
}

// Type implements Target.
func (*GCP) Type() string { return "gcp" }

// Check implements Target: image-builder's share_with_accounts, and a
// gce image.
func (*GCP) Check(img Image, options json.RawMessage) error {
	var errs []error
	var opts gcpOptions
	if err := DecodeOptions(options, &opts); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, checkGCPMembers(opts.ShareWithAccounts)...)
	}
	if err := checkGCEImage(img); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkGCEImage(img Image) error {
	if img.Type != "gce" || img.Format != "disk-tar" || img.Compression != "gzip" {
		return fmt.Errorf("gcp imports a disk.raw in a gzipped tar, which image type gce makes (image-builder calls it gcp); %s images (%s) cannot be imported: ask for image type gce or gcp", img.Type, img.Format)
	}
	if _, ok := gceArch[img.Arch]; !ok {
		return fmt.Errorf("Compute Engine takes x86_64 and aarch64 images, not %s", img.Arch)
	}
	switch img.BootMode {
	case "bios":
		if img.Arch == "aarch64" {
			return fmt.Errorf("Compute Engine boots aarch64 images with UEFI; this image boots with BIOS only")
		}
	case "uefi", "hybrid":
	default:
		return fmt.Errorf("Compute Engine imports bootable disks; this image's boot mode is %q", img.BootMode)
	}
	return nil
}

var (
	gcpEmail  = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	gcpDomain = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$`)
)

// checkGCPMembers checks share_with_accounts: IAM members, each with its
// kind's prefix. Every bad entry is named at its index.
func checkGCPMembers(members []string) []error {
	var errs []error
	for i, m := range members {
		if msg := gcpMemberProblem(m); msg != "" {
			errs = append(errs, fmt.Errorf("options.share_with_accounts[%d]: %s", i, msg))
		}
	}
	return errs
}

func gcpMemberProblem(m string) string {
	kind, who, ok := strings.Cut(m, ":")
	const how = `write "user:", "serviceAccount:", "group:" or "domain:" and the account, e.g. user:alice@example.com or domain:example.com`
	if !ok {
		return fmt.Sprintf("%q has no kind of account; %s", m, how)
	}
	switch kind {
	case "user", "serviceAccount", "group":
		if !gcpEmail.MatchString(who) {
			return fmt.Sprintf("%q: a %s is named by its email address, e.g. %s:alice@example.com", m, kind, kind)
		}
	case "domain":
		if !gcpDomain.MatchString(who) {
			return fmt.Sprintf("%q: a domain is named by its lowercase DNS name, e.g. domain:example.com", m)
		}
	default:
		return fmt.Sprintf("%q: unknown kind of account %q; %s", m, kind, how)
	}
	return ""
}

// GCPImageName is the name of the image the compose makes: name made to
// fit Compute Engine's rules (lowercase letters, digits and hyphens, a
// letter first, at most 63 characters) with the compose id's first
// characters at the end, unless name has them already. The same compose
// always gets the same name, so a requeued upload finds its image.
func GCPImageName(name, composeID string) string {
	base := gceName(name)
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = strings.Trim("kiln-"+base, "-")
	}
	short := gceName(composeID)
	short = strings.ReplaceAll(short, "-", "")
	if len(short) > 8 {
		short = short[:8]
	}
	if short == "" || strings.Contains(base, short) {
		if len(base) > 63 {
			base = strings.TrimRight(base[:63], "-")
		}
		return base
	}
	if max := 63 - len(short) - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-")
	}
	return base + "-" + short
}

// gceName lowercases s and turns every run of other characters than
// letters and digits into one hyphen.
func gceName(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(c)
		} else {
			dash = true
		}
	}
	return b.String()
}

// gcpStagingPrefix is where a compose's objects are staged.
func (g *GCP) gcpStagingPrefix(composeID string) string {
	return g.cfg.Prefix + composeID + "/"
}

// Upload implements Target.
func (g *GCP) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	var opts gcpOptions
	if err := DecodeOptions(options, &opts); err != nil {
		return Result{}, g.fail("read the options", err)
	}
	if a.ComposeID == "" {
		return Result{}, g.fail("read the options", errors.New("the artifact has no compose id, which names the staged objects and the image"))
	}
	if r == nil {
		r = NoReporter{}
	}
	name := GCPImageName(a.Name, a.ComposeID)
	res := Result{ImageName: name, ProjectID: g.cfg.Project}

	existing, err := g.findImage(ctx, name, a.ComposeID)
	if err != nil {
		return Result{}, g.fail("look for the image", err)
	}
	if existing == nil || existing.Status != "READY" {
		if err := g.makeImage(ctx, a, name, existing, r); err != nil {
			return Result{}, err
		}
	}
	if len(opts.ShareWithAccounts) > 0 {
		if err := g.share(ctx, name, opts.ShareWithAccounts); err != nil {
			return Result{}, g.fail("share the image", err)
		}
	}
	if err := g.deleteStaging(ctx, a.ComposeID); err != nil {
		return Result{}, g.fail("delete the uploaded disk", err)
	}
	return res, nil
}

// makeImage uploads the disk and imports it, or, when a first attempt of
// the same upload left an image being imported, waits for that one.
// Whatever fails, nothing it made is left behind.
func (g *GCP) makeImage(ctx context.Context, a Artifact, name string, existing *compute.Image, r Reporter) (err error) {
	step := "upload the disk"
	defer func() {
		if err == nil {
			return
		}
		// Detached from ctx: a canceled upload must still clean up.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gcpCleanupTimeout)
		defer cancel()
		var cleanup []error
		if step != "upload the disk" {
			if cerr := g.deleteImage(cctx, name, a.ComposeID); cerr != nil {
				cleanup = append(cleanup, fmt.Errorf("delete the image: %w", cerr))
			}
		}
		if cerr := g.deleteStaging(cctx, a.ComposeID); cerr != nil {
			cleanup = append(cleanup, fmt.Errorf("delete the uploaded disk: %w", cerr))
		}
		if len(cleanup) > 0 {
			err = errors.Join(append([]error{err}, cleanup...)...)
		}
		err = g.fail(step, err)
	}()

	if existing != nil {
		switch existing.Status {
		case "PENDING":
			step = "import the image"
			r.Step(StepRegistering)
			return g.waitImage(ctx, name)
		default:
			// FAILED (or DELETING): start again.
			if err := g.deleteImage(ctx, name, a.ComposeID); err != nil {
				return fmt.Errorf("delete the failed image a first attempt left: %w", err)
			}
		}
	}

	r.Step(StepUploading)
	object, err := g.uploadDisk(ctx, a, r)
	if err != nil {
		return err
	}
	step = "import the image"
	r.Step(StepRegistering)
	return g.insertImage(ctx, a, name, object)
}

func (g *GCP) fail(step string, err error) error {
	var se *StepError
	if errors.As(err, &se) {
		return err
	}
	return &StepError{Target: "gcp", Step: step, Err: err}
}

// findImage returns the image of this name, nil when there is none. An
// image of the name that another compose made is an error.
func (g *GCP) findImage(ctx context.Context, name, composeID string) (*compute.Image, error) {
	var img *compute.Image
	err := g.retry(ctx, func() error {
		var err error
		img, err = g.compute.Images.Get(g.cfg.Project, name).Context(ctx).Do()
		return err
	})
	if isGoogleStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if img.Labels[gcpComposeLabel] != gceLabelValue(composeID) {
		return nil, fmt.Errorf("project %s has an image named %s that this compose did not make; name the image otherwise (image_name)", g.cfg.Project, name)
	}
	return img, nil
}

// gceLabelValue fits s to a label value (lowercase letters, digits,
// hyphens and underscores, at most 63).
func gceLabelValue(s string) string {
	v := gceName(s)
	if len(v) > 63 {
		v = v[:63]
	}
	return v
}

// uploadDisk puts the image file into the bucket and checks what landed
// against the file: its size, CRC32C (and MD5 where the object has one)
// and the build's SHA-256 of the file read. It returns the object's name.
func (g *GCP) uploadDisk(ctx context.Context, a Artifact, r Reporter) (string, error) {
	f, err := os.Open(a.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := st.Size()
	if a.Size > 0 && size != a.Size {
		return "", fmt.Errorf("the image file is %d bytes, the build made %d", size, a.Size)
	}
	filename := a.Filename
	if filename == "" {
		filename = "disk.tar.gz"
	}
	object := g.gcpStagingPrefix(a.ComposeID) + filename
	meter := newByteMeter(r, size)

	partSize := g.cfg.PartSize
	if min := (size + gcpMaxComposeSources - 1) / gcpMaxComposeSources; partSize < min {
		partSize = min
	}
	var sum fileSums
	var attrs *storage.ObjectAttrs
	if size <= partSize {
		attrs, sum, err = g.putObject(ctx, object, f, 0, size, meter, 0)
		if err != nil {
			return "", err
		}
		if attrs.MD5 != nil && hex.EncodeToString(attrs.MD5) != sum.md5 {
			return "", fmt.Errorf("the object's MD5 is %x, the file's %s", attrs.MD5, sum.md5)
		}
	} else {
		attrs, sum, err = g.putParts(ctx, f, object, size, partSize, meter)
		if err != nil {
			return "", err
		}
	}
	if a.SHA256 != "" && !strings.EqualFold(a.SHA256, sum.sha256) {
		return "", fmt.Errorf("the image file's SHA-256 is %s, the build recorded %s: the file changed", sum.sha256, a.SHA256)
	}
	if attrs.Size != size {
		return "", fmt.Errorf("the object is %d bytes, the file %d", attrs.Size, size)
	}
	if attrs.CRC32C != sum.crc32c {
		return "", fmt.Errorf("the object's CRC32C is %08x, the file's %08x", attrs.CRC32C, sum.crc32c)
	}
	return object, nil
}

// putObject writes length bytes of f from off as one object, in
// resumable chunks, and returns the sums of what it read. The whole
// object is written again when a try fails: the client's own retries
// are off, as they bound neither the tries nor the time of an upload
// that fits one request.
func (g *GCP) putObject(ctx context.Context, object string, f *os.File, off, length int64, meter *byteMeter, part int) (*storage.ObjectAttrs, fileSums, error) {
	var attrs *storage.ObjectAttrs
	var sum fileSums
	handle := g.storage.Bucket(g.cfg.Bucket).Object(object).Retryer(storage.WithPolicy(storage.RetryNever))
	err := g.retry(ctx, func() error {
		meter.set(part, 0)
		sums := newFileSums()
		w := handle.NewWriter(ctx)
		w.ChunkSize = g.chunkSize()
		w.ChunkRetryDeadline = g.retryBudget()
		w.ContentType = "application/gzip"
		w.ProgressFunc = func(n int64) { meter.set(part, n) }
		if _, err := io.Copy(w, io.TeeReader(io.NewSectionReader(f, off, length), sums)); err != nil {
			w.CloseWithError(err)
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		attrs, sum = w.Attrs(), sums.sum()
		return nil
	})
	if err != nil {
		return nil, fileSums{}, err
	}
	meter.flush()
	return attrs, sum, nil
}

// chunkSize is a resumable upload's chunk: a quarter of a part, a
// multiple of 256 KiB, at most 16 MiB.
func (g *GCP) chunkSize() int {
	c := g.cfg.PartSize / 4
	c -= c % gcpChunkAlign
	return int(max(gcpChunkAlign, min(c, gcpMaxChunkSize)))
}

// putParts uploads a big file as parts in parallel, each checked against
// its own CRC32C and MD5, then composes them into object and deletes
// them. The whole file's sums are read alongside.
func (g *GCP) putParts(ctx context.Context, f *os.File, object string, size, partSize int64, meter *byteMeter) (*storage.ObjectAttrs, fileSums, error) {
	n := int((size + partSize - 1) / partSize)
	bucket := g.storage.Bucket(g.cfg.Bucket)
	parts := make([]*storage.ObjectHandle, n)
	for i := range parts {
		parts[i] = bucket.Object(fmt.Sprintf("%s.part-%02d", object, i))
	}
	var whole fileSums
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		sums := newFileSums()
		if _, err := io.Copy(sums, io.NewSectionReader(f, 0, size)); err != nil {
			return err
		}
		whole = sums.sum()
		return nil
	})
	sem := make(chan struct{}, g.cfg.Parallel)
	for i := range parts {
		eg.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-ectx.Done():
				return ectx.Err()
			}
			defer func() { <-sem }()
			off := int64(i) * partSize
			length := min(partSize, size-off)
			attrs, s, err := g.putObject(ectx, parts[i].ObjectName(), f, off, length, meter, i)
			if err != nil {
				return fmt.Errorf("part %d: %w", i, err)
			}
			if attrs.CRC32C != s.crc32c || attrs.Size != length || (attrs.MD5 != nil && hex.EncodeToString(attrs.MD5) != s.md5) {
				return fmt.Errorf("part %d landed as %d bytes with CRC32C %08x, sent %d bytes with CRC32C %08x", i, attrs.Size, attrs.CRC32C, length, s.crc32c)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, fileSums{}, err
	}
	// The client retries the compose (RetryAlways): the same sources
	// make the same object.
	c := bucket.Object(object).ComposerFrom(parts...)
	c.ContentType = "application/gzip"
	attrs, err := c.Run(ctx)
	if err != nil {
		return nil, fileSums{}, fmt.Errorf("compose the parts: %w", err)
	}
	for _, p := range parts {
		if err := p.Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			return nil, fileSums{}, fmt.Errorf("delete a composed part: %w", err)
		}
	}
	return attrs, whole, nil
}

// insertImage has Compute Engine import the object as the image and waits
// for it. Its request id is the compose's, so a retried insert makes one
// image.
func (g *GCP) insertImage(ctx context.Context, a Artifact, name, object string) error {
	features := []*compute.GuestOsFeature{{Type: "VIRTIO_SCSI_MULTIQUEUE"}, {Type: "GVNIC"}}
	if a.Image.BootMode == "uefi" || a.Image.BootMode == "hybrid" {
		features = append(features, &compute.GuestOsFeature{Type: "UEFI_COMPATIBLE"})
	}
	img := &compute.Image{
		Name:            name,
		Description:     "Built by kiln, compose " + a.ComposeID,
		Architecture:    gceArch[a.Image.Arch],
		GuestOsFeatures: features,
		Labels:          map[string]string{gcpComposeLabel: gceLabelValue(a.ComposeID)},
		RawDisk:         &compute.ImageRawDisk{Source: GCSObjectURL(g.cfg.Bucket, object)},
	}
	if g.cfg.Location != "" {
		img.StorageLocations = []string{g.cfg.Location}
	}
	requestID := uuid.NewSHA1(uuid.NameSpaceURL, []byte("kiln:gcp:"+a.ComposeID+":"+name)).String()
	var op *compute.Operation
	err := g.retry(ctx, func() error {
		var err error
		op, err = g.compute.Images.Insert(g.cfg.Project, img).RequestId(requestID).Context(ctx).Do()
		return err
	})
	if err != nil {
		return err
	}
	return g.waitOperation(ctx, op)
}

// GCSObjectURL is the address Compute Engine reads an image's raw disk
// from.
func GCSObjectURL(bucket, object string) string {
	return "https://storage.googleapis.com/" + bucket + "/" + object
}

// waitOperation polls a global operation until it is done.
func (g *GCP) waitOperation(ctx context.Context, op *compute.Operation) error {
	for op.Status != "DONE" {
		if err := sleepCtx(ctx, g.cfg.PollInterval); err != nil {
			return err
		}
		name := op.Name
		err := g.retry(ctx, func() error {
			var err error
			op, err = g.compute.GlobalOperations.Get(g.cfg.Project, name).Context(ctx).Do()
			return err
		})
		if err != nil {
			return err
		}
	}
	if op.Error != nil && len(op.Error.Errors) > 0 {
		var msgs []string
		for _, e := range op.Error.Errors {
			msgs = append(msgs, e.Code+": "+e.Message)
		}
		return fmt.Errorf("operation %s failed: %s", op.Name, strings.Join(msgs, "; "))
	}
	return nil
}

// waitImage waits for an image a first attempt started to import.
func (g *GCP) waitImage(ctx context.Context, name string) error {
	for {
		var img *compute.Image
		err := g.retry(ctx, func() error {
			var err error
			img, err = g.compute.Images.Get(g.cfg.Project, name).Context(ctx).Do()
			return err
		})
		if err != nil {
			return err
		}
		switch img.Status {
		case "READY":
			return nil
		case "PENDING":
		default:
			return fmt.Errorf("the image a first attempt started is %s", img.Status)
		}
		if err := sleepCtx(ctx, g.cfg.PollInterval); err != nil {
			return err
		}
	}
}

// deleteImage deletes the compose's image if it is there.
func (g *GCP) deleteImage(ctx context.Context, name, composeID string) error {
	img, err := g.findImage(ctx, name, composeID)
	if err != nil || img == nil {
		return err
	}
	var op *compute.Operation
	err = g.retry(ctx, func() error {
		var err error
		op, err = g.compute.Images.Delete(g.cfg.Project, name).Context(ctx).Do()
		return err
	})
	if isGoogleStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return g.waitOperation(ctx, op)
}

// share gives each member roles/compute.imageUser on the image, keeping
// the policy's other bindings; members already there are not added twice.
func (g *GCP) share(ctx context.Context, name string, members []string) error {
	var policy *compute.Policy
	err := g.retry(ctx, func() error {
		var err error
		policy, err = g.compute.Images.GetIamPolicy(g.cfg.Project, name).Context(ctx).Do()
		return err
	})
	if err != nil {
		return fmt.Errorf("read the image's policy: %w", err)
	}
	var binding *compute.Binding
	for _, b := range policy.Bindings {
		if b.Role == gcpImageUser && b.Condition == nil {
			binding = b
		}
	}
	if binding == nil {
		binding = &compute.Binding{Role: gcpImageUser}
		policy.Bindings = append(policy.Bindings, binding)
	}
	changed := false
	for _, m := range members {
		has := false
		for _, old := range binding.Members {
			has = has || old == m
		}
		if !has {
			binding.Members = append(binding.Members, m)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return g.retry(ctx, func() error {
		_, err := g.compute.Images.SetIamPolicy(g.cfg.Project, name, &compute.GlobalSetPolicyRequest{Policy: policy}).Context(ctx).Do()
		return err
	})
}

// deleteStaging deletes every object staged for the compose: the disk
// tarball and any part a failed or earlier attempt left.
//
// An upload canceled while its last chunk was on the wire may still be
// committed by the server after the client gave up on it, so the staging
// prefix is listed again, a little later, until a listing finds nothing
// (at most gcpSettleTries times).
func (g *GCP) deleteStaging(ctx context.Context, composeID string) error {
	for try := 0; ; try++ {
		deleted, err := g.deleteStagingOnce(ctx, composeID)
		if err != nil || (deleted == 0 && try > 0) || try >= gcpSettleTries {
			return err
		}
		if err := sleepCtx(ctx, gcpSettleDelay); err != nil {
			return err
		}
	}
}

// gcpSettleTries and gcpSettleDelay bound how long deleteStaging waits
// for uploads the server was still committing.
const (
	gcpSettleTries = 10
	gcpSettleDelay = 200 * time.Millisecond
)

// deleteStagingOnce deletes what a listing of the staging prefix finds,
// and says how many objects that was.
func (g *GCP) deleteStagingOnce(ctx context.Context, composeID string) (int, error) {
	bucket := g.storage.Bucket(g.cfg.Bucket)
	it := bucket.Objects(ctx, &storage.Query{Prefix: g.gcpStagingPrefix(composeID)})
	var errs []error
	n := 0
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return n, err
		}
		n++
		if err := bucket.Object(attrs.Name).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// retry runs call until it succeeds, fails for good, or has had
// MaxAttempts tries, waiting RetryDelay, doubled each time, in between.
func (g *GCP) retry(ctx context.Context, call func() error) error {
	delay := g.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt >= g.cfg.MaxAttempts || !gcpRetryable(ctx, err) {
			return err
		}
		if serr := sleepCtx(ctx, delay); serr != nil {
			return errors.Join(err, serr)
		}
		delay = min(2*delay, gcpMaxRetryDelay)
	}
}

// retryBudget is how long retry waits in all before giving up: the
// longest a chunk of a resumable upload is tried again for.
func (g *GCP) retryBudget() time.Duration {
	var total time.Duration
	delay := g.cfg.RetryDelay
	for range g.cfg.MaxAttempts - 1 {
		total += delay
		delay = min(2*delay, gcpMaxRetryDelay)
	}
	return max(total, g.cfg.RetryDelay)
}

// gcpRetryable says whether a failed call may succeed if made again: the
// API was busy or broke, or the connection did.
func gcpRetryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == http.StatusTooManyRequests || ge.Code >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isGoogleStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fileSums are a file's digests as the checks need them.
type fileSums struct {
	sha256 string
	md5    string
	crc32c uint32
}

// fileSummer computes fileSums of what is written to it.
type fileSummer struct {
	io.Writer
	sha, md hash.Hash
	crc     hash.Hash32
}

func newFileSums() *fileSummer {
	s := &fileSummer{sha: sha256.New(), md: md5.New(), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	s.Writer = io.MultiWriter(s.sha, s.md, s.crc)
	return s
}

func (s *fileSummer) sum() fileSums {
	return fileSums{sha256: hex.EncodeToString(s.sha.Sum(nil)), md5: hex.EncodeToString(s.md.Sum(nil)), crc32c: s.crc.Sum32()}
}

// byteMeter adds up the bytes sent by parallel writers and reports them a
// few times a second at most.
type byteMeter struct {
	r     Reporter
	total int64
	mu    sync.Mutex
	parts map[int]int64
	last  time.Time
}

func newByteMeter(r Reporter, total int64) *byteMeter {
	return &byteMeter{r: r, total: total, parts: map[int]int64{}}
}

// set records that part has sent n bytes in all.
func (m *byteMeter) set(part int, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts[part] = n
	if time.Since(m.last) >= 250*time.Millisecond {
		m.report()
	}
}

func (m *byteMeter) flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.report()
}

func (m *byteMeter) report() {
	var done int64
	for _, n := range m.parts {
		done += n
	}
	m.last = time.Now()
	m.r.Bytes(min(done, m.total), m.total)
}
