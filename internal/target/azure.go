package target

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"golang.org/x/sync/errgroup"
)

// AzureConfig is the [targets.azure] section: the operator's service
// principal, the storage account VHDs are staged in and where images are
// made. The client secret and the storage key are read from the
// environment (or the secret from a file), never from this section.
//
//	[targets.azure]
//	tenant_id = "5c7ef5b6-1c3f-4da0-a622-0b060239d7d7"
//	subscription_id = "4e5d8b2c-ab24-4413-90c5-612306e809e2"
//	client_id = "0f8b9d0e-6b8e-4a55-9c1e-3c2d9a4f7e21"
//	storage_account = "kilnimages"
//	container = "vhds"
//	location = "westeurope"
type AzureConfig struct {
	// TenantID, SubscriptionID and ClientID name the service principal
	// and the subscription images are made in.
	TenantID       string `toml:"tenant_id"`
	SubscriptionID string `toml:"subscription_id"`
	ClientID       string `toml:"client_id"`
	// ClientSecretEnv names the environment variable holding the client
	// secret (default AZURE_CLIENT_SECRET); ClientSecretFile, when set,
	// names a file holding it instead.
	ClientSecretEnv  string `toml:"client_secret_env"`
	ClientSecretFile string `toml:"client_secret_file"`
	// StorageAccount and Container are where the VHD is staged as a page
	// blob before the image is made from it.
	StorageAccount string `toml:"storage_account"`
	Container      string `toml:"container"`
	// StorageKeyEnv names an environment variable holding the storage
	// account's shared key. When it is empty or the variable is unset,
	// the service principal's token reaches the storage account.
	StorageKeyEnv string `toml:"storage_key_env"`
	// Location is the Azure region images are made in; it must be the
	// storage account's.
	Location string `toml:"location"`
	// BlobEndpoint, ARMEndpoint and AuthorityHost override the public
	// cloud's addresses (a sovereign cloud, or an emulator in tests).
	// BlobEndpoint is the account's address, e.g.
	// "http://127.0.0.1:10000/devstoreaccount1".
	BlobEndpoint  string `toml:"blob_endpoint"`
	ARMEndpoint   string `toml:"arm_endpoint"`
	AuthorityHost string `toml:"authority_host"`
	// CAFile names a PEM file of certificate authorities to trust besides
	// the system's, for endpoints with a private CA (Azure Stack Hub, an
	// emulator).
	CAFile string `toml:"ca_file"`
	// MaxRetries and RetryDelay tune the retries of each request
	// (default 5 retries, from 2s with exponential backoff).
	MaxRetries int           `toml:"max_retries"`
	RetryDelay time.Duration `toml:"retry_delay"`
	// PollInterval is how often the image's creation is polled (default
	// 10s; Azure's Retry-After takes precedence).
	PollInterval time.Duration `toml:"poll_interval"`
	// Parallel is how many 4 MiB ranges are in flight at once (default 8).
	Parallel int `toml:"parallel"`
	// CleanupWait bounds how long a failed upload keeps trying to delete
	// its staging blob while the storage account is unreachable (default
	// 2m); a requeued attempt replaces what it could not delete.
	CleanupWait time.Duration `toml:"cleanup_wait"`
}

// DefaultAzureClientSecretEnv is the variable the client secret is read
// from when the section names none, as Azure's own tools read it.
const DefaultAzureClientSecretEnv = "AZURE_CLIENT_SECRET"

// azurePageRange is the largest range one Put Page request takes.
const azurePageRange = 4 << 20

// azureComposeTag is the tag a managed image carries naming the compose
// it was made from, so a requeued upload knows its own image.
const azureComposeTag = "kiln-compose"

// Azure is the azure upload type: the fixed VHD is staged as a page blob
// in the operator's storage account and a managed image is made from it
// in the request's resource group, as image-builder does.
type Azure struct {
	cfg         AzureConfig
	cred        azcore.TokenCredential
	storageKey  *blob.SharedKeyCredential
	blobBaseURL string
	clientOpts  azcore.ClientOptions
	armOpts     arm.ClientOptions
	// cleanupWait bounds how long a failed upload keeps trying to delete
	// its staging blob (the storage account may be briefly unreachable).
	cleanupWait time.Duration
}

// NewAzure checks the section and reads its secrets from env. Every
// missing field is named.
func NewAzure(cfg AzureConfig, env Env) (*Azure, error) {
	var problems []error
	need := func(v, field string) {
		if strings.TrimSpace(v) == "" {
			problems = append(problems, fmt.Errorf("[targets.azure].%s: must be set", field))
		}
	}
	need(cfg.TenantID, "tenant_id")
	need(cfg.SubscriptionID, "subscription_id")
	need(cfg.ClientID, "client_id")
	need(cfg.StorageAccount, "storage_account")
	need(cfg.Container, "container")
	need(cfg.Location, "location")

	secret, err := azureReadSecret(cfg, env)
	if err != nil {
		problems = append(problems, err)
	}
	z := &Azure{cfg: cfg, cleanupWait: 2 * time.Minute}
	if cfg.CleanupWait > 0 {
		z.cleanupWait = cfg.CleanupWait
	}
	if cfg.StorageKeyEnv != "" {
		if key := env(cfg.StorageKeyEnv); key != "" {
			z.storageKey, err = blob.NewSharedKeyCredential(cfg.StorageAccount, key)
			if err != nil {
				problems = append(problems, fmt.Errorf("[targets.azure].storage_key_env: the key in $%s is not a storage account key: %v", cfg.StorageKeyEnv, err))
			}
		}
	}

	z.blobBaseURL = strings.TrimRight(cfg.BlobEndpoint, "/")
	if z.blobBaseURL == "" {
		z.blobBaseURL = "https://" + cfg.StorageAccount + ".blob.core.windows.net"
	}
	armEndpoint := strings.TrimRight(cfg.ARMEndpoint, "/")
	if armEndpoint == "" {
		armEndpoint = cloud.AzurePublic.Services[cloud.ResourceManager].Endpoint
	}
	authority := cfg.AuthorityHost
	if authority == "" {
		authority = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	for field, u := range map[string]string{"blob_endpoint": z.blobBaseURL, "arm_endpoint": armEndpoint, "authority_host": authority} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			problems = append(problems, fmt.Errorf("[targets.azure].%s: %q is not an http(s) URL", field, u))
		}
	}
	httpClient := &http.Client{}
	if cfg.CAFile != "" {
		tr, err := azureTransport(cfg.CAFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("[targets.azure].ca_file: %v", err))
		}
		httpClient.Transport = tr
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}

	retries, delay := int32(5), 2*time.Second
	if cfg.MaxRetries > 0 {
		retries = int32(cfg.MaxRetries)
	}
	if cfg.RetryDelay > 0 {
		delay = cfg.RetryDelay
	}
	z.clientOpts = azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: retries, RetryDelay: delay, MaxRetryDelay: 32 * delay},
		// Plain http only where the operator pointed an endpoint at an
		// emulator; the public cloud is https.
		InsecureAllowCredentialWithHTTP: strings.HasPrefix(z.blobBaseURL, "http:") || strings.HasPrefix(armEndpoint, "http:"),
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: authority,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: armEndpoint, Audience: cloud.AzurePublic.Services[cloud.ResourceManager].Audience},
			},
		},
	}
	if cfg.CAFile != "" {
		z.clientOpts.Transport = httpClient
	}
	z.armOpts = arm.ClientOptions{ClientOptions: z.clientOpts, DisableRPRegistration: true}
	z.cred = &azureSecretCredential{
		authority:  strings.TrimRight(authority, "/"),
		tenant:     cfg.TenantID,
		clientID:   cfg.ClientID,
		secret:     secret,
		client:     &http.Client{Transport: httpClient.Transport, Timeout: time.Minute},
		retries:    int(retries),
		retryDelay: delay,
		tokens:     map[string]azcore.AccessToken{},
	}
	return z, nil
}

// azureTransport is an HTTP transport that trusts the system's
// certificate authorities and those in the PEM file at path.
func azureTransport(path string) (*http.Transport, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

func azureReadSecret(cfg AzureConfig, env Env) (string, error) {
	if cfg.ClientSecretFile != "" {
		b, err := os.ReadFile(cfg.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("[targets.azure].client_secret_file: %v", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	name := cfg.ClientSecretEnv
	if name == "" {
		name = DefaultAzureClientSecretEnv
	}
	s := env(name)
	if s == "" {
		return "", fmt.Errorf("[targets.azure].client_secret_env: $%s is empty; set it to the service principal's client secret, or name a file in client_secret_file", name)
	}
	return s, nil
}

// Type implements Target.
func (*Azure) Type() string { return "azure" }

// azureOptions are image-builder's AzureUploadRequestOptions.
type azureOptions struct {
	SourceID         string `json:"source_id,omitempty"`
	TenantID         string `json:"tenant_id,omitempty"`
	SubscriptionID   string `json:"subscription_id,omitempty"`
	ResourceGroup    string `json:"resource_group"`
	ImageName        string `json:"image_name,omitempty"`
	HyperVGeneration string `json:"hyper_v_generation,omitempty"`
}

// azureImageName is image-builder's pattern for image_name: it starts
// with a letter or digit and ends with one or an underscore.
var azureImageName = regexp.MustCompile(`^[a-zA-Z0-9]$|^[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]$`)

// azureResourceGroup is Azure's rule for resource group names.
var azureResourceGroup = regexp.MustCompile(`^[-\w._()]{0,89}[-\w_()]$`)

// Check implements Target: options as image-builder takes them, and a
// fixed VHD (kiln's vhd type, image-builder's azure), UEFI-bootable for
// hyper_v_generation V2.
func (z *Azure) Check(img Image, options json.RawMessage) error {
	var o azureOptions
	if err := DecodeOptions(options, &o); err != nil {
		return err
	}
	var problems []error
	if o.SourceID != "" {
		problems = append(problems, errors.New("options.source_id: this server has no sources service; leave source_id out (images are made with the server's Azure account)"))
	}
	if (o.TenantID == "") != (o.SubscriptionID == "") {
		field := "subscription_id"
		if o.TenantID == "" {
			field = "tenant_id"
		}
		problems = append(problems, fmt.Errorf("options.%s: give tenant_id and subscription_id together, or neither", field))
	}
	if o.TenantID != "" && !strings.EqualFold(o.TenantID, z.cfg.TenantID) {
		problems = append(problems, errors.New("options.tenant_id: this server makes images only in the tenant its operator configured; leave tenant_id out or give that one"))
	}
	if o.SubscriptionID != "" && !strings.EqualFold(o.SubscriptionID, z.cfg.SubscriptionID) {
		problems = append(problems, errors.New("options.subscription_id: this server makes images only in the subscription its operator configured; leave subscription_id out or give that one"))
	}
	switch {
	case o.ResourceGroup == "":
		problems = append(problems, errors.New("options.resource_group: is required: the Azure resource group the image is made in"))
	case !azureResourceGroup.MatchString(o.ResourceGroup):
		problems = append(problems, fmt.Errorf("options.resource_group: %q is not a resource group name (1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.')", o.ResourceGroup))
	}
	if o.ImageName != "" && (len(o.ImageName) > 60 || !azureImageName.MatchString(o.ImageName)) {
		problems = append(problems, fmt.Errorf("options.image_name: %q is not an Azure image name: at most 60 letters, digits, '_', '.' or '-', starting with a letter or digit and ending with a letter, digit or '_'", o.ImageName))
	}
	gen := o.HyperVGeneration
	switch gen {
	case "", "V1", "V2":
	default:
		problems = append(problems, fmt.Errorf("options.hyper_v_generation: %q is not V1 or V2", gen))
	}
	if img.Format != "vhd" || img.Compression != "" {
		problems = append(problems, fmt.Errorf("options: azure makes images from a fixed VHD, not a %s image (%s); build the image type vhd (image-builder's azure)", img.Type, azureFormatName(img)))
	} else if gen == "V2" && img.BootMode != "uefi" && img.BootMode != "hybrid" {
		problems = append(problems, fmt.Errorf("options.hyper_v_generation: V2 boots with UEFI, and this vhd image boots with %s only; use V1, or an image that boots with UEFI", img.BootMode))
	}
	if img.Arch != "" && img.Arch != "x86_64" && img.Arch != "aarch64" {
		problems = append(problems, fmt.Errorf("options: azure takes x86_64 and aarch64 images, not %s", img.Arch))
	}
	return errors.Join(problems...)
}

func azureFormatName(img Image) string {
	if img.Compression != "" {
		return img.Format + ", " + img.Compression + "-compressed"
	}
	return img.Format
}

// azureName makes a default name valid for Azure: invalid characters
// become '-', at most 60, ending with a letter, digit or '_'.
func azureName(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			b[i] = '-'
		}
	}
	s := string(b)
	if len(s) > 60 {
		s = s[:60]
	}
	s = strings.TrimLeft(s, "_.-")
	s = strings.TrimRight(s, ".-")
	if s == "" {
		s = "kiln-image"
	}
	return s
}

// Upload implements Target: it reuses an image this compose already
// made (a requeued job), else stages the VHD as a page blob, checks what
// landed, makes the managed image and deletes the staging blob.
func (z *Azure) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	var o azureOptions
	if err := DecodeOptions(options, &o); err != nil {
		return Result{}, &StepError{Target: "azure", Step: "read the options", Err: err}
	}
	name := o.ImageName
	if name == "" {
		name = azureName(a.Name)
	}
	gen := armcompute.HyperVGenerationTypesV1
	if o.HyperVGeneration == "V2" {
		gen = armcompute.HyperVGenerationTypesV2
	}
	images, err := armcompute.NewImagesClient(z.cfg.SubscriptionID, z.cred, &z.armOpts)
	if err != nil {
		return Result{}, &StepError{Target: "azure", Step: "connect to Azure", Err: err}
	}
	pb, err := z.pageBlob(a.ComposeID + "/" + a.Filename)
	if err != nil {
		return Result{}, &StepError{Target: "azure", Step: "connect to the storage account", Err: err}
	}

	// A requeued job: the image may already be there.
	existing, err := images.Get(ctx, o.ResourceGroup, name, nil)
	switch {
	case err == nil:
		if existing.Tags[azureComposeTag] == nil || *existing.Tags[azureComposeTag] != a.ComposeID {
			return Result{}, &StepError{Target: "azure", Step: "look up the image", Err: fmt.Errorf("an image named %q already exists in resource group %q and was not made from this compose; choose another image_name", name, o.ResourceGroup)}
		}
		if existing.Properties != nil && existing.Properties.ProvisioningState != nil && *existing.Properties.ProvisioningState == "Succeeded" {
			if err := z.deleteBlob(ctx, pb); err != nil {
				return Result{}, &StepError{Target: "azure", Step: "delete the staging blob", Err: err}
			}
			return Result{ImageName: name}, nil
		}
		// Ours but failed, or left mid-way by a crash: make it anew.
		if err := z.deleteImageAndWait(ctx, images, o.ResourceGroup, name); err != nil {
			return Result{}, &StepError{Target: "azure", Step: "delete the unfinished image", Err: err}
		}
	case !azureNotFound(err):
		return Result{}, &StepError{Target: "azure", Step: "look up the image", Err: err}
	}

	r.Step(StepUploading)
	if err := z.uploadVHD(ctx, pb, a, r); err != nil {
		z.cleanup(pb)
		return Result{}, &StepError{Target: "azure", Step: "upload the disk", Err: err}
	}

	r.Step(StepRegistering)
	params := armcompute.Image{
		Location: &z.cfg.Location,
		Tags:     map[string]*string{azureComposeTag: &a.ComposeID},
		Properties: &armcompute.ImageProperties{
			HyperVGeneration: &gen,
			StorageProfile: &armcompute.ImageStorageProfile{
				OSDisk: &armcompute.ImageOSDisk{
					OSType:  azurePtr(armcompute.OperatingSystemTypesLinux),
					OSState: azurePtr(armcompute.OperatingSystemStateTypesGeneralized),
					BlobURI: azurePtr(pb.URL()),
					Caching: azurePtr(armcompute.CachingTypesReadWrite),
				},
			},
		},
	}
	poller, err := images.BeginCreateOrUpdate(ctx, o.ResourceGroup, name, params, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: z.pollInterval()})
	}
	if err != nil {
		if ctx.Err() != nil {
			// Canceled while Azure made it: do not leave a half-made image.
			z.deleteImage(images, o.ResourceGroup, name)
		}
		z.cleanup(pb)
		return Result{}, &StepError{Target: "azure", Step: "create the image", Err: err}
	}
	// The managed image holds its own copy of the disk: the staging blob
	// is no longer needed.
	if err := z.deleteBlob(ctx, pb); err != nil {
		return Result{}, &StepError{Target: "azure", Step: "delete the staging blob", Err: err}
	}
	return Result{ImageName: name}, nil
}

func azurePtr[T any](v T) *T { return &v }

func azureNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (z *Azure) pageBlob(blobName string) (*pageblob.Client, error) {
	u := z.blobBaseURL + "/" + url.PathEscape(z.cfg.Container) + "/" + (&url.URL{Path: blobName}).EscapedPath()
	opts := &pageblob.ClientOptions{ClientOptions: z.clientOpts}
	if z.storageKey != nil {
		return pageblob.NewClientWithSharedKeyCredential(u, z.storageKey, opts)
	}
	return pageblob.NewClient(u, z.cred, opts)
}

// uploadVHD stages the file as a page blob: it reads the file once to
// check it (size, digest, footer) and find the ranges that hold data,
// creates the page blob (replacing one a failed attempt left), puts the
// non-zero 4 MiB ranges in parallel, each with its MD5 for the service
// to check, and then checks what landed.
func (z *Azure) uploadVHD(ctx context.Context, pb *pageblob.Client, a Artifact, r Reporter) error {
	f, err := os.Open(a.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	size, ranges, footer, err := azureScanVHD(f, a)
	if err != nil {
		return err
	}
	meta := map[string]*string{"kilncompose": &a.ComposeID}
	if a.SHA256 != "" {
		meta["sha256"] = &a.SHA256
	}
	if _, err := pb.Create(ctx, size, &pageblob.CreateOptions{Metadata: meta}); err != nil {
		return fmt.Errorf("create the page blob: %w", err)
	}

	var done atomic.Int64
	var mu sync.Mutex
	var last time.Time
	report := func(n int64) {
		d := done.Add(n)
		mu.Lock()
		defer mu.Unlock()
		if d == size || time.Since(last) > 250*time.Millisecond {
			last = time.Now()
			r.Bytes(d, size)
		}
	}
	// Ranges of zeros are not sent: a new page blob reads as zeros.
	report(size - azureRangesLen(ranges))

	parallel := z.cfg.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, rg := range ranges {
		g.Go(func() error {
			buf := make([]byte, rg.count)
			if _, err := f.ReadAt(buf, rg.offset); err != nil {
				return err
			}
			sum := md5.Sum(buf)
			_, err := pb.UploadPages(gctx, streaming.NopCloser(bytes.NewReader(buf)), blob.HTTPRange{Offset: rg.offset, Count: rg.count},
				&pageblob.UploadPagesOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:])})
			if err != nil {
				return fmt.Errorf("put the range at %d: %w", rg.offset, err)
			}
			report(rg.count)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return azureCheckPageBlob(ctx, pb, size, ranges, footer)
}

// azureRange is a range of a file: offset and length.
type azureRange struct{ offset, count int64 }

func azureRangesLen(rs []azureRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.count
	}
	return n
}

// azureScanVHD reads the file once: it must be the artifact (size, SHA-256)
// and a fixed VHD whose disk is a whole number of MiB. It returns the
// file's size, the 4 MiB ranges that are not all zeros, and the footer.
func azureScanVHD(f *os.File, a Artifact) (int64, []azureRange, []byte, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, nil, nil, err
	}
	size := st.Size()
	if a.Size > 0 && size != a.Size {
		return 0, nil, nil, fmt.Errorf("the image file is %d bytes, the build recorded %d", size, a.Size)
	}
	if size < 512 || (size-512)%(1<<20) != 0 {
		return 0, nil, nil, fmt.Errorf("the image is %d bytes: a VHD for Azure is a whole number of MiB plus its 512-byte footer", size)
	}
	h := sha256.New()
	buf := make([]byte, azurePageRange)
	var ranges []azureRange
	for off := int64(0); off < size; off += azurePageRange {
		n := min(int64(azurePageRange), size-off)
		chunk := buf[:n]
		if _, err := io.ReadFull(f, chunk); err != nil {
			return 0, nil, nil, err
		}
		h.Write(chunk)
		if !azureAllZero(chunk) {
			ranges = append(ranges, azureRange{off, n})
		}
	}
	if a.SHA256 != "" && hex.EncodeToString(h.Sum(nil)) != strings.ToLower(a.SHA256) {
		return 0, nil, nil, errors.New("the image file's SHA-256 is not the one the build recorded")
	}
	footer := make([]byte, 512)
	if _, err := f.ReadAt(footer, size-512); err != nil {
		return 0, nil, nil, err
	}
	if !bytes.HasPrefix(footer, []byte("conectix")) {
		return 0, nil, nil, errors.New("the image has no VHD footer: it is not a fixed VHD")
	}
	return size, ranges, footer, nil
}

func azureAllZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// azureCheckPageBlob checks what landed: a page blob of the file's size whose
// written pages are exactly the ranges sent (each already checked by its
// MD5 as it was put), and whose footer reads back as the file's.
func azureCheckPageBlob(ctx context.Context, pb *pageblob.Client, size int64, sent []azureRange, footer []byte) error {
	props, err := pb.GetProperties(ctx, nil)
	if err != nil {
		return fmt.Errorf("read the blob's properties: %w", err)
	}
	if props.BlobType == nil || *props.BlobType != blob.BlobTypePageBlob {
		return errors.New("the blob is not a page blob")
	}
	if props.ContentLength == nil || *props.ContentLength != size {
		return fmt.Errorf("the blob is %v bytes, the image %d", azureSize(props.ContentLength), size)
	}
	var landed []azureRange
	pager := pb.NewGetPageRangesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list the blob's pages: %w", err)
		}
		for _, pr := range page.PageRange {
			if pr.Start != nil && pr.End != nil {
				landed = append(landed, azureRange{*pr.Start, *pr.End - *pr.Start + 1})
			}
		}
	}
	if !slices.Equal(azureMergeRanges(landed), azureMergeRanges(sent)) {
		return fmt.Errorf("the blob's written pages %v are not the ranges sent %v", azureMergeRanges(landed), azureMergeRanges(sent))
	}
	got := make([]byte, 512)
	if _, err := pb.DownloadBuffer(ctx, got, &blob.DownloadBufferOptions{Range: blob.HTTPRange{Offset: size - 512, Count: 512}}); err != nil {
		return fmt.Errorf("read back the VHD footer: %w", err)
	}
	if !bytes.Equal(got, footer) {
		return errors.New("the blob's VHD footer is not the image's")
	}
	return nil
}

// azureSize is a length the service may not have given, for a message.
func azureSize(p *int64) any {
	if p == nil {
		return "an unknown number of"
	}
	return *p
}

// azureMergeRanges joins adjacent ranges, as the service reports them.
func azureMergeRanges(rs []azureRange) []azureRange {
	var out []azureRange
	for _, r := range rs {
		if k := len(out); k > 0 && out[k-1].offset+out[k-1].count == r.offset {
			out[k-1].count += r.count
			continue
		}
		out = append(out, r)
	}
	return out
}

// deleteBlob deletes the staging blob; one already gone is fine.
func (z *Azure) deleteBlob(ctx context.Context, pb *pageblob.Client) error {
	_, err := pb.Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: azurePtr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil && !azureNotFound(err) {
		return err
	}
	return nil
}

// cleanup deletes a failed attempt's staging blob, on a context of its
// own (the upload's may be canceled), retrying for up to cleanupWait
// while the storage account is unreachable. What it cannot delete, a
// requeued attempt replaces.
func (z *Azure) cleanup(pb *pageblob.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), z.cleanupWait)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		err := z.deleteBlob(ctx, pb)
		if err == nil || azureRefused(err) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// refused reports an answer that asking again will not change (a 4xx
// other than a timeout or throttling: credentials or permissions refused).
func azureRefused(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
		re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests
}

// deleteImageAndWait deletes an image and waits until it is gone.
func (z *Azure) deleteImageAndWait(ctx context.Context, images *armcompute.ImagesClient, group, name string) error {
	poller, err := images.BeginDelete(ctx, group, name, nil)
	if err != nil {
		if azureNotFound(err) {
			return nil
		}
		return err
	}
	_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: z.pollInterval()})
	return err
}

func (z *Azure) pollInterval() time.Duration {
	if z.cfg.PollInterval > 0 {
		return z.cfg.PollInterval
	}
	return 10 * time.Second
}

// deleteImage starts deleting an image whose creation was canceled; it
// does not wait for Azure to finish.
func (z *Azure) deleteImage(images *armcompute.ImagesClient, group, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = images.BeginDelete(ctx, group, name, nil)
}

// azureSecretCredential is a service principal's OAuth 2.0 client
// credentials grant against Microsoft Entra ID's token endpoint
// (<authority>/<tenant>/oauth2/v2.0/token). Tokens are kept until five
// minutes before they expire. The secret is sent only in the token
// request's body and never appears in an error.
type azureSecretCredential struct {
	authority, tenant, clientID, secret string
	client                              *http.Client
	// retries and retryDelay are the section's, for transient failures.
	retries    int
	retryDelay time.Duration

	mu     sync.Mutex
	tokens map[string]azcore.AccessToken
}

// GetToken implements azcore.TokenCredential. A token endpoint that is
// unreachable or answers 5xx/429 is asked again with backoff; one that
// refuses the credentials is not.
func (c *azureSecretCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	scope := strings.Join(opts.Scopes, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok, ok := c.tokens[scope]; ok && time.Until(tok.ExpiresOn) > 5*time.Minute {
		return tok, nil
	}
	tenant := c.tenant
	if opts.TenantID != "" {
		tenant = opts.TenantID
	}
	delay := c.retryDelay
	for attempt := 0; ; attempt++ {
		tok, transient, err := c.fetchToken(ctx, tenant, scope)
		if err == nil {
			c.tokens[scope] = tok
			return tok, nil
		}
		if !transient || attempt >= c.retries {
			return azcore.AccessToken{}, err
		}
		select {
		case <-ctx.Done():
			return azcore.AccessToken{}, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// fetchToken asks the token endpoint once; transient says whether asking
// again may help.
func (c *azureSecretCredential) fetchToken(ctx context.Context, tenant, scope string) (tok azcore.AccessToken, transient bool, err error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.clientID},
		"client_secret": {c.secret},
		"scope":         {scope},
	}
	endpoint := c.authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return tok, false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return tok, ctx.Err() == nil, fmt.Errorf("get a token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil && resp.StatusCode == http.StatusOK {
		return tok, true, fmt.Errorf("get a token: %w", err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		why := body.Error
		if body.Description != "" {
			why += ": " + strings.SplitN(body.Description, "\n", 2)[0]
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return tok, true, fmt.Errorf("get a token: HTTP %d %s", resp.StatusCode, why)
		}
		return tok, false, fmt.Errorf("the credentials were refused (HTTP %d %s)", resp.StatusCode, why)
	}
	var secs int64
	if err := json.Unmarshal(body.ExpiresIn, &secs); err != nil {
		var str string
		if json.Unmarshal(body.ExpiresIn, &str) == nil {
			_, _ = fmt.Sscan(str, &secs)
		}
	}
	if secs <= 0 {
		secs = 3600
	}
	return azcore.AccessToken{Token: body.AccessToken, ExpiresOn: time.Now().Add(time.Duration(secs) * time.Second)}, false, nil
}
