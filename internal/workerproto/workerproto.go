// Package workerproto is the contract between the service and its
// workers: the worker API's routes and wire types, the jobs a compose
// becomes with their arguments and results, the names of the files a
// build uploads, and the HTTP client workers speak the API with.
//
// Workers never hold database credentials: they request a job with the
// worker key, then act on it only with the job's own lease token
// (heartbeat, progress, log, files, finish). The service's handler for
// this API lives in internal/service/workerapi; this package imports
// nothing of the service, so a worker links neither the store, nor the
// database drivers, nor the artifact store's S3 client.
package workerproto

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Prefix is where the worker API lives.
const Prefix = "/api/worker/v1"

// Routes of the worker API, below Prefix, as net/http.ServeMux patterns:
// {id} is a job's ID, {name} a file's name and {upload} an upload's ID.
// The client fills them with Path; the handler reads them with
// Request.PathValue.
const (
	// RouteJobs takes a POST of a JobRequest and long-polls for a Job.
	RouteJobs = "/jobs"
	// RouteHeartbeat takes a POST that extends the lease; 409 when the
	// job was canceled.
	RouteHeartbeat = "/jobs/{id}/heartbeat"
	// RouteProgress takes a POST of a Progress.
	RouteProgress = "/jobs/{id}/progress"
	// RouteLog takes a POST of a piece of the build log.
	RouteLog = "/jobs/{id}/log"
	// RouteFile takes a PUT of a file's bytes, through the server.
	RouteFile = "/jobs/{id}/files/{name}"
	// RouteUploads takes a POST of an UploadRequest and answers an
	// UploadOffer.
	RouteUploads = "/jobs/{id}/uploads"
	// RouteUpload takes a DELETE (with ?name=) that drops an unfinished
	// upload.
	RouteUpload = "/jobs/{id}/uploads/{upload}"
	// RouteCompleteUpload takes a POST of an UploadCompletion.
	RouteCompleteUpload = "/jobs/{id}/uploads/{upload}/complete"
	// RouteFinish takes a POST of a Finish.
	RouteFinish = "/jobs/{id}/finish"
)

// Path fills route's wildcards with values, in the order they appear,
// each escaped as one path segment. A wildcard without a value is left
// as it is.
func Path(route string, values ...string) string {
	var b strings.Builder
	rest := route
	for _, v := range values {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			break
		}
		b.WriteString(rest[:open])
		b.WriteString(url.PathEscape(v))
		rest = rest[open+end+1:]
	}
	b.WriteString(rest)
	return b.String()
}

// JobRequest asks for a job of one of Types. Jobs for an architecture go
// only to workers that list it in Arches.
//
// Max is how many jobs the worker takes with this request (it runs that
// many at once). 0 or 1 asks for one job, answered as a Job: what every
// worker asked before Max existed. Above 1 the answer is a JobBatch of
// 1 to Max jobs (the server takes at most MaxJobsPerRequest). A server
// that predates Max ignores it and answers one Job, which
// Client.RequestJobs reads as a batch of one: old and new workers and
// servers mix.
type JobRequest struct {
	Types  []string `json:"types"`
	Arches []string `json:"arches"`
	Worker string   `json:"worker"`
	Max    int      `json:"max,omitempty"`
}

// MaxJobsPerRequest bounds the jobs one request hands out.
const MaxJobsPerRequest = 100

// JobBatch answers a JobRequest whose Max is above 1.
type JobBatch struct {
	Jobs []Job `json:"jobs"`
}

// Job is a leased job as the worker sees it.
type Job struct {
	ID         string                     `json:"id"`
	Token      string                     `json:"token"`
	ComposeID  string                     `json:"compose_id"`
	Type       string                     `json:"type"`
	Arch       string                     `json:"arch,omitempty"`
	Args       json.RawMessage            `json:"args"`
	DepResults map[string]json.RawMessage `json:"dep_results,omitempty"`
	// LeaseSeconds is how long the lease lasts without a heartbeat.
	LeaseSeconds int `json:"lease_seconds"`
	// TraceParent is the W3C trace context of the compose's trace
	// ("00-<trace>-<span>-<flags>"): the worker's spans for the job are
	// its children and its log lines carry its trace ID. Empty: none.
	TraceParent string `json:"traceparent,omitempty"`
}

// Heartbeat answers a heartbeat: whether the job was canceled.
type Heartbeat struct {
	Canceled bool `json:"canceled"`
}

// Progress says how far a job got: Done of Total steps.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
	// Step is an upload's step: "uploading" or "registering".
	Step string `json:"step,omitempty"`
}

// StoredFile answers a stored or completed file with its size.
type StoredFile struct {
	Size int64 `json:"size"`
}

// Finish ends a job.
type Finish struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *FinishError    `json:"error,omitempty"`
}

// FinishError says why a job failed.
type FinishError struct {
	Reason  string `json:"reason"`
	Details string `json:"details,omitempty"`
	Retry   bool   `json:"retry,omitempty"`
	// Problems, when the job failed because of what the blueprint asks
	// for (a service no installed package provides, a group the image
	// lacks), are those problems, one each, with the blueprint field
	// they are about.
	Problems []Problem `json:"problems,omitempty"`
	// UserError marks a failure caused by what the user submitted (a
	// refused blueprint, a package that does not exist, an unknown image
	// type), not by the service: the compose-success SLO leaves these
	// out. A worker older than this field never sets it, so its failures
	// count against the service unless they carry Problems.
	UserError bool `json:"user_error,omitempty"`
}

// Problem is one thing wrong with a blueprint that a job found: Field is
// its path in the blueprint (customizations.services.enabled[0]), empty
// when it is about no one field; Message says what is wrong and how to
// fix it, without repeating the field.
type Problem struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// UploadRequest asks to upload a file straight to the artifact store.
type UploadRequest struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// UploadOffer answers an UploadRequest. Without Presigned the store cannot
// take uploads from workers: PUT the file to RouteFile. With it, PUT each
// part to its URL and complete the upload with the parts' ETags.
type UploadOffer struct {
	Presigned bool `json:"presigned"`
	Upload
}

// UploadCompletion completes an upload: the file's name and size, as
// asked for, and the parts' ETags in order.
type UploadCompletion struct {
	Name  string          `json:"name"`
	Size  int64           `json:"size"`
	Parts []CompletedPart `json:"parts"`
}
