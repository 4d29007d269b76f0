package workerproto

import "time"

// Names of the files a compose has besides its image.
const (
	BuildLog = "build.log"
	Manifest = "manifest.json"
	SBOM     = "sbom.spdx.json"
)

// Upload is a started multipart upload: part i (from 1) holds bytes
// [(i-1)*PartSize, i*PartSize) of the file and is sent with a PUT to
// Parts[i-1].URL, whose answer's ETag header completes the upload.
type Upload struct {
	ID        string       `json:"upload_id"`
	PartSize  int64        `json:"part_size"`
	Parts     []UploadPart `json:"parts"`
	ExpiresAt time.Time    `json:"expires_at"`
}

// UploadPart is where one part of an upload goes.
type UploadPart struct {
	Number int    `json:"number"`
	URL    string `json:"url"`
}

// CompletedPart is an uploaded part.
type CompletedPart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}
