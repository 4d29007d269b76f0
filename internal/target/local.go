package target

import (
	"context"
	"encoding/json"
)

// Local keeps the image in the service's artifact store: the upload only
// gives its download URL. The API completes the URL with the time it
// expires when it answers.
type Local struct {
	// BaseURL is the API's address that download paths start from
	// (empty: the URL is a path).
	BaseURL string
}

// Type implements Target.
func (Local) Type() string { return "local" }

// Check implements Target: local takes any image and no options.
func (Local) Check(_ Image, options json.RawMessage) error {
	return DecodeOptions(options, nil)
}

// NeedsFile implements NeedsFile: the image stays where the build put it.
func (Local) NeedsFile() bool { return false }

// Upload implements Target.
func (l Local) Upload(_ context.Context, a Artifact, _ json.RawMessage, _ Reporter) (Result, error) {
	return Result{URL: l.BaseURL + "/api/image-builder/v1/composes/" + a.ComposeID + "/download"}, nil
}
