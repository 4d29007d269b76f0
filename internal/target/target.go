// Package target delivers built images: one file per upload type, all
// behind the Target interface, looked up by the type name a compose's
// upload_request gives. Adding an upload type (S3, an OCI registry, a
// cloud) is one new file here and a test.
package target

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Artifact is a built image as the upload step sees it.
type Artifact struct {
	// ComposeID is the compose it belongs to.
	ComposeID string
	// Filename is the image's name.
	Filename string
	// Path is where the image is on this machine; empty when it is only in
	// the service's artifact store.
	Path string
}

// Result says where the image went.
type Result struct {
	// URL is where the image can be fetched.
	URL string `json:"url,omitempty"`
}

// Target is an upload type.
type Target interface {
	// Type is the name upload requests use ("local", "aws.s3", ...).
	Type() string
	// Check validates a request's options before anything is built.
	Check(options json.RawMessage) error
	// Upload delivers the artifact.
	Upload(ctx context.Context, a Artifact, options json.RawMessage) (Result, error)
}

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

// Lookup finds a target, naming the supported ones when there is none.
func (r Registry) Lookup(typ string) (Target, error) {
	if t, ok := r[typ]; ok {
		return t, nil
	}
	var names []string
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("upload type %q is not supported (supported: %s)", typ, strings.Join(names, ", "))
}
