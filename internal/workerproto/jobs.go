package workerproto

import (
	"encoding/json"

	"github.com/kiln-project/kiln/internal/target"
)

// Job kinds a compose becomes, in the order it runs them: the API
// enqueues them, the workers run them, with the arguments and results
// below.
const (
	KindDepsolve = "depsolve"
	KindBuild    = "build"
	KindUpload   = "upload"
)

// DepsolveArgs asks for the manifest of one image.
type DepsolveArgs struct {
	Distro    string          `json:"distro"`
	Arch      string          `json:"arch"`
	ImageType string          `json:"image_type"`
	Blueprint json.RawMessage `json:"blueprint"`
	// Size is the requested disk size in bytes (0: the image type's).
	Size int64 `json:"size,omitempty"`
}

// DepsolveResult is the manifest that pins the build.
type DepsolveResult struct {
	Manifest json.RawMessage `json:"manifest"`
}

// BuildArgs has nothing beyond the depsolve result; the build is routed
// by the job's architecture.
type BuildArgs struct{}

// BuildResult says where the built artifact is.
type BuildResult struct {
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// UploadArgs says where the artifact goes.
type UploadArgs struct {
	Type    string          `json:"type"`
	Options json.RawMessage `json:"options,omitempty"`
	// Name is the default name of what the target makes (an AMI, a
	// cloud image, an object): the compose's image_name or
	// kiln-<compose id>.
	Name string `json:"name,omitempty"`
	// Image is what was built, as the target checks and registers it.
	Image target.Image `json:"image"`
}

// UploadResult is where the artifact went.
type UploadResult struct {
	Type string `json:"type"`
	target.Result
}
