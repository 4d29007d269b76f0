// Package target delivers built images: one file per upload type, all
// behind the Target interface, looked up by the type name a compose's
// upload_request gives. Adding an upload type (a cloud, a registry, an
// object store) is one new file here, a case in Build (config.go) and a
// test against a server that speaks the type's protocol.
//
// A target runs in two places. The API calls Check when a compose is
// submitted, so a request the target cannot take (wrong options, an
// image type it cannot import, a target this server has not configured)
// is refused at once, at its field. A worker calls Upload once the image
// is built, with the image in a file on its disk.
//
// Cloud credentials are the operator's: they come from the server's
// configuration file and environment (see Config), never from a request,
// and are never logged. Images are made in the operator's account and
// shared with the accounts a request names, as the hosted image-builder
// does.
package target

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Image says what was built, enough for a target to know whether it can
// take it and how to register it.
type Image struct {
	// Type is kiln's name of the image type ("ami", "vhd", "gce",
	// "container", "qcow2", ...).
	Type string `json:"type"`
	// Format is the file's format: "raw", "qcow2", "vhd", "vmdk", "ova",
	// "tar", "disk-tar" (a disk.raw in a tar, as GCE takes),
	// "oci" (an OCI image layout in a tar) or "iso".
	Format string `json:"format"`
	// Compression is "", "gzip", "xz" or "zstd".
	Compression string `json:"compression,omitempty"`
	// BootMode is how the image boots: "bios", "uefi", "hybrid" (both) or
	// "none" (not a bootable disk).
	BootMode string `json:"boot_mode"`
	// Arch is the image's architecture as the API names it ("x86_64",
	// "aarch64").
	Arch string `json:"arch"`
}

// Artifact is a built image as the upload step sees it.
type Artifact struct {
	// ComposeID is the compose it belongs to.
	ComposeID string
	// Name names what the target makes (an AMI, a cloud image, an
	// object): the compose's image_name, else "kiln-<compose id>". It is
	// a default; a target's options may name it otherwise.
	Name string
	// Filename is the image file's name.
	Filename string
	// Path is where the image is on this machine; empty for targets that
	// leave it in the service's artifact store (local).
	Path string
	// Size and SHA256 are the file's size and digest as the build
	// recorded them; a target checks what landed against them where the
	// remote end gives a checksum back.
	Size   int64
	SHA256 string
	// Image is what the file holds.
	Image Image
}

// Result says where the image went: image-builder's upload status
// options for the type (url, ami and region, image_name and project_id),
// and kiln's additions for the types image-builder lacks.
type Result struct {
	// URL is where the image can be fetched (local, aws.s3,
	// oci.objectstorage) or the pushed image's reference (container).
	URL string `json:"url,omitempty"`
	// ExpiresAt is when URL stops working, for signed links.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// AMI and Region name an image registered in EC2 (aws).
	AMI    string `json:"ami,omitempty"`
	Region string `json:"region,omitempty"`
	// ImageName names a cloud image (gcp, azure).
	ImageName string `json:"image_name,omitempty"`
	// ProjectID is the GCP project the image is in (gcp).
	ProjectID string `json:"project_id,omitempty"`
	// Digest is a pushed container image's manifest digest (container).
	Digest string `json:"digest,omitempty"`
}

// Steps an upload reports as it goes, which the API shows as the
// image's status ("uploading", "registering").
const (
	StepUploading   = "uploading"
	StepRegistering = "registering"
)

// Reporter receives an upload's progress: the step it is in and, while
// bytes move, how many of how many have gone.
type Reporter interface {
	Step(step string)
	Bytes(done, total int64)
}

// NoReporter discards progress.
type NoReporter struct{}

// Step implements Reporter.
func (NoReporter) Step(string) {}

// Bytes implements Reporter.
func (NoReporter) Bytes(int64, int64) {}

// Target is an upload type.
type Target interface {
	// Type is the name upload requests use ("local", "aws.s3", ...).
	Type() string
	// Check validates a request's options, and that the target can take
	// an image of img, before anything is built. Its error names the
	// option as "options.field: message" where one option is at fault.
	Check(img Image, options json.RawMessage) error
	// Upload delivers the artifact. Its error says which step failed
	// (see StepError); an upload canceled through ctx leaves nothing
	// half-made behind it (no open multipart upload, no staging object).
	Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error)
}

// NeedsFile is implemented by targets that read the image from the
// worker's disk (every target but local, whose image stays in the
// service's store).
type NeedsFile interface {
	NeedsFile() bool
}

// WantsFile reports whether t reads the image from Artifact.Path.
func WantsFile(t Target) bool {
	nf, ok := t.(NeedsFile)
	return !ok || nf.NeedsFile()
}

// StepError is a failed upload: the target, the step that failed ("upload
// the disk", "import the snapshot", "register the image") and why.
type StepError struct {
	Target string
	Step   string
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Target, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Registry maps upload types to targets.
type Registry map[string]Target

// New returns a registry of targets.
func New(targets ...Target) Registry {
	r := Registry{}
	for _, t := range targets {
		r[t.Type()] = t
	}
	return r
}

// Types lists the registry's upload types, sorted.
func (r Registry) Types() []string {
	var names []string
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup finds a target, naming the supported ones when there is none.
// An upload type kiln has but this server has not configured says how to
// configure it.
func (r Registry) Lookup(typ string) (Target, error) {
	if t, ok := r[typ]; ok {
		return t, nil
	}
	if section, ok := knownTypes[typ]; ok {
		return nil, fmt.Errorf("upload type %q is not configured on this server (its operator sets it up in the [targets.%s] section of the configuration file); configured here: %s", typ, section, strings.Join(r.Types(), ", "))
	}
	return nil, fmt.Errorf("upload type %q is not supported (supported here: %s)", typ, strings.Join(r.Types(), ", "))
}

// knownTypes are the upload types kiln has, with the configuration
// section each is set up in.
var knownTypes = map[string]string{
	"aws":               "aws",
	"aws.s3":            "s3",
	"gcp":               "gcp",
	"azure":             "azure",
	"oci.objectstorage": "oci",
	"container":         "registry",
}
