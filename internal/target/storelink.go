package target

import (
	"context"
	"encoding/json"
)

// StoreLink is aws.s3 on a server with no bucket of its own configured:
// the image stays in the service's artifact store (a directory, or the
// store's own bucket) and the status gives its signed download link with
// the time it expires, the way image-builder's aws.s3 gives a presigned
// URL. The frontend asks for aws.s3 for every image it downloads.
type StoreLink struct {
	// BaseURL is the API's address that download paths start from
	// (empty: the URL is a path).
	BaseURL string
}

// Type implements Target.
func (StoreLink) Type() string { return "aws.s3" }

// Check implements Target: any image, no options (image-builder's
// AWSS3UploadRequestOptions has none).
func (StoreLink) Check(_ Image, options json.RawMessage) error {
	return DecodeOptions(options, nil)
}

// NeedsFile implements NeedsFile: the image stays where the build put it.
func (StoreLink) NeedsFile() bool { return false }

// Upload implements Target.
func (s StoreLink) Upload(ctx context.Context, a Artifact, options json.RawMessage, r Reporter) (Result, error) {
	return Local(s).Upload(ctx, a, options, r)
}
