package target

import (
	"context"
	"encoding/json"
	"fmt"
)

// Local keeps the image in the service's artifact store: the upload only
// gives its download URL.
type Local struct {
	// BaseURL is the API's address that download paths start from
	// (empty: the URL is a path).
	BaseURL string
}

// Type implements Target.
func (Local) Type() string { return "local" }

// Check implements Target: local takes no options.
func (Local) Check(options json.RawMessage) error {
	var m map[string]any
	if len(options) == 0 || string(options) == "null" {
		return nil
	}
	if err := json.Unmarshal(options, &m); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	for k := range m {
		return fmt.Errorf("options.%s: the local upload type takes no options", k)
	}
	return nil
}

// Upload implements Target.
func (l Local) Upload(_ context.Context, a Artifact, _ json.RawMessage) (Result, error) {
	return Result{URL: l.BaseURL + "/api/image-builder/v1/composes/" + a.ComposeID + "/download"}, nil
}
