package apimodel

import (
	"encoding/json"
	"time"
)

// Prefix is where the image-builder API lives on a kiln service.
const Prefix = "/api/image-builder/v1"

// ComposeRequest is the body of POST /compose.
type ComposeRequest struct {
	Distribution     string         `json:"distribution"`
	ImageName        string         `json:"image_name,omitempty"`
	ImageDescription string         `json:"image_description,omitempty"`
	ClientID         string         `json:"client_id,omitempty"`
	ImageRequests    []ImageRequest `json:"image_requests"`
	// Customizations are in the API's names; see Customizations (the
	// table) and CustomizationsFromBlueprint.
	Customizations map[string]any `json:"customizations,omitempty"`
}

// ImageRequest is one image to build: its architecture, type and where
// the image goes.
type ImageRequest struct {
	Architecture  string        `json:"architecture"`
	ImageType     string        `json:"image_type"`
	UploadRequest UploadRequest `json:"upload_request"`
	Size          int64         `json:"size,omitempty"`
}

// UploadRequest names an upload target and its options.
type UploadRequest struct {
	Type    string          `json:"type"`
	Options json.RawMessage `json:"options,omitempty"`
}

// BlueprintRequest is a stored blueprint as the API takes it (POST and
// PUT /blueprints) and stores it.
type BlueprintRequest struct {
	Name           string         `json:"name"`
	Description    string         `json:"description,omitempty"`
	Distribution   string         `json:"distribution"`
	ImageRequests  []ImageRequest `json:"image_requests"`
	Customizations map[string]any `json:"customizations,omitempty"`
}

// IDResponse is the reply to a request that creates or updates something:
// a compose, a blueprint.
type IDResponse struct {
	ID string `json:"id"`
}

// ComposeStatus is the reply of GET /composes/{id}.
type ComposeStatus struct {
	ImageStatus ImageStatus     `json:"image_status"`
	Request     json.RawMessage `json:"request,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
}

// ImageStatus is a compose's state, derived from its jobs.
type ImageStatus struct {
	// Status is pending, building, uploading, success or failure.
	Status       string        `json:"status"`
	Progress     *Progress     `json:"progress,omitempty"`
	UploadStatus *UploadStatus `json:"upload_status,omitempty"`
	Error        *StatusError  `json:"error,omitempty"`
	Timeline     []Step        `json:"timeline,omitempty"`
	// Waiting, while the compose waits for an architecture no connected
	// worker builds, says which and what to do (a kiln extension).
	Waiting *Waiting `json:"waiting,omitempty"`
}

// Waiting is why a pending compose is not being built.
type Waiting struct {
	Architecture string `json:"architecture"`
	Reason       string `json:"reason"`
}

// Progress is a build's progress in pipeline stages.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// UploadStatus is the state of a compose's upload.
type UploadStatus struct {
	Status  string        `json:"status"`
	Type    string        `json:"type"`
	Options UploadOptions `json:"options"`
}

// UploadOptions are an upload's result: for the local target, where to
// download the image.
type UploadOptions struct {
	URL       string     `json:"url,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Size      int64      `json:"size,omitempty"`
}

// StatusError says why a compose failed.
type StatusError struct {
	ID      int           `json:"id"`
	Reason  string        `json:"reason"`
	Details StatusDetails `json:"details,omitempty"`
}

// Step is one step of a compose's timeline.
type Step struct {
	Step string    `json:"step"`
	At   time.Time `json:"at"`
}

// ListMeta counts the items of a listing across its pages.
type ListMeta struct {
	Count int `json:"count"`
}

// ComposesResponse is a page of GET /composes.
type ComposesResponse struct {
	Meta ListMeta       `json:"meta"`
	Data []ComposesItem `json:"data"`
}

// ComposesItem is one compose in a listing.
type ComposesItem struct {
	ID          string       `json:"id"`
	CreatedAt   time.Time    `json:"created_at"`
	ImageName   string       `json:"image_name,omitempty"`
	ImageStatus *ImageStatus `json:"image_status,omitempty"`
}

// BlueprintsResponse is a page of GET /blueprints.
type BlueprintsResponse struct {
	Meta ListMeta        `json:"meta"`
	Data []BlueprintItem `json:"data"`
}

// BlueprintItem is one blueprint in a listing (its latest version).
type BlueprintItem struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Version        int       `json:"version"`
	LastModifiedAt time.Time `json:"last_modified_at"`
}

// BlueprintResponse is the reply of GET /blueprints/{id}: one version of
// a stored blueprint.
type BlueprintResponse struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Description    string         `json:"description"`
	Distribution   string         `json:"distribution"`
	ImageRequests  []ImageRequest `json:"image_requests"`
	Customizations map[string]any `json:"customizations"`
	Version        int            `json:"version"`
	LastModifiedAt time.Time      `json:"last_modified_at"`
}

// ErrorList is the body of every failing reply: one item per problem.
type ErrorList struct {
	Errors    []ErrorItem `json:"errors"`
	RequestID string      `json:"request_id,omitempty"`
}

// ErrorItem is one problem: its detail names the field, which Field holds
// on its own when the problem is about one field of the request body.
type ErrorItem struct {
	Title  string `json:"title,omitempty"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
}
