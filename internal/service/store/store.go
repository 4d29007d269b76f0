// Package store holds the service's state: API tokens, composes and the
// durable job queue. Each aggregate has a small interface of its own;
// backends (sqlite/ and postgres/, sharing the SQL they can through
// sqlstore/) implement all of them and must pass the conformance suite in
// storetest/. Nothing above this package knows which database it talks
// to. What is policy rather than storage is decided here, once: a
// compose's status (ComposeStatus) and what becomes of a job whose lease
// ends (FinishOutcome, ExpiredOutcome, RevokedOutcome, RescueExpired).
//
// Every row belongs to an organisation, and every method that reads or
// changes a tenant's data takes the org and filters by it: another org's
// rows are ErrNotFound, never "forbidden".
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound: no such row in the caller's org.
	ErrNotFound = errors.New("not found")
	// ErrNoJob: no job is ready for the worker.
	ErrNoJob = errors.New("no job is ready")
	// ErrLeaseLost: the job is not (or no longer) held under this token.
	ErrLeaseLost = errors.New("the job's lease is not held by this token")
	// ErrLeaseRevoked: the lease ended because the worker token it was
	// taken with was revoked; the worker is no longer trusted.
	ErrLeaseRevoked = errors.New("the worker token the job was leased with was revoked")
	// ErrCanceled: the job was canceled; the worker should stop it.
	ErrCanceled = errors.New("the job was canceled")
	// ErrConflict: the name is taken in the org.
	ErrConflict = errors.New("the name is taken")
	// ErrEnded: the compose has nothing left to cancel; every job ended
	// or is already being canceled.
	ErrEnded = errors.New("the compose has ended")
)

// NewID returns a random (version 4) UUID.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// NewSecret returns a random secret and the hash under which it is
// stored: secrets (API tokens, job lease tokens) are never stored as such.
func NewSecret(prefix string) (secret, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret = prefix + hex.EncodeToString(b[:])
	return secret, HashSecret(secret)
}

// HashSecret is the stored form of a secret.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Token is an API token: a bearer secret scoped to one org.
type Token struct {
	ID        string
	OrgID     string
	Name      string
	Hash      string // HashSecret of the secret, which is shown once
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Tokens stores API tokens.
type Tokens interface {
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash finds a token that is not revoked.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	ListTokens(ctx context.Context, org string) ([]Token, error)
	RevokeToken(ctx context.Context, org, id string) error
}

// WorkerToken is the secret a remote worker requests jobs with. It
// belongs to no org: a worker builds for every org and acts on a job only
// with that job's own lease token.
type WorkerToken struct {
	ID        string
	Name      string
	Hash      string // HashSecret of the secret, which is shown once
	CreatedAt time.Time
	RevokedAt *time.Time
}

// WorkerTokens stores worker tokens.
type WorkerTokens interface {
	CreateWorkerToken(ctx context.Context, t WorkerToken) error
	// WorkerTokenByHash finds a worker token that is not revoked.
	WorkerTokenByHash(ctx context.Context, hash string) (WorkerToken, error)
	ListWorkerTokens(ctx context.Context) ([]WorkerToken, error)
	// RevokeWorkerToken revokes a worker token and ends the leases taken
	// with it: their jobs go back to the queue at once (a canceled one
	// ends canceled), and their lease tokens answer ErrLeaseRevoked from
	// then on.
	RevokeWorkerToken(ctx context.Context, id string) error
}

// Compose is one submitted compose: the request as accepted (passwords
// already hashed) and its jobs.
type Compose struct {
	ID        string
	OrgID     string
	CreatedAt time.Time
	ImageName string
	// ImageType is the image type's name (never an alias), what listings
	// filter on.
	ImageType string
	Request   json.RawMessage
	// Expired is set once retention removed the compose's files.
	Expired bool
	// BlueprintID and BlueprintVersion name the stored blueprint the
	// compose was made from, if any.
	BlueprintID      string
	BlueprintVersion int
}

// Page selects a slice of a list, newest first.
type Page struct {
	Limit, Offset int
}

// ComposeFilter narrows a listing of composes; empty fields match all.
type ComposeFilter struct {
	// Status is a status as ComposeStatus derives it from the jobs:
	// pending, building, uploading, success or failure.
	Status string
	// Cancelled, when set, keeps only the composes ComposeCancelled
	// says were cancelled (their Status is failure).
	Cancelled bool
	// LastType is the kind of a compose's last job, which Status needs.
	LastType string
	// ImageType is an image type's name.
	ImageType string
	// IgnoreImageTypes are image types' names to leave out.
	IgnoreImageTypes []string
	// BlueprintID, when set, keeps the composes built from that
	// blueprint; BlueprintVersion (when above 0) from that version.
	BlueprintID      string
	BlueprintVersion int
}

// NewCompose is a compose to store, with its jobs.
type NewCompose struct {
	Compose Compose
	Jobs    []Job
}

// Quota bounds how many composes an org may have created since a time.
type Quota struct {
	// Limit is the most composes created at or after Since; 0 or
	// negative: no bound.
	Limit int
	Since time.Time
}

// ErrQuota: the composes would take the org past its quota.
var ErrQuota = errors.New("the organization's compose quota is used up")

// QuotaError is ErrQuota with the org's count: Used composes created
// since the quota's Since, the oldest of them at Oldest.
type QuotaError struct {
	Used   int
	Oldest time.Time
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%v: %d composes counted", ErrQuota, e.Used)
}

func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// Composes stores composes.
type Composes interface {
	// CreateCompose stores a compose and its jobs in one transaction.
	CreateCompose(ctx context.Context, c Compose, jobs []Job) error
	// CreateComposes stores org's composes, each with its jobs, in one
	// transaction: all of them, or none and a *QuotaError when the org's
	// composes created since q.Since and these would number more than
	// q.Limit. Concurrent calls for one org are serialized, so together
	// they never pass the limit either.
	CreateComposes(ctx context.Context, org string, cs []NewCompose, q Quota) error
	GetCompose(ctx context.Context, org, id string) (Compose, error)
	// ListComposes returns a page of the org's visible composes that match
	// f, newest first, and how many match in all.
	ListComposes(ctx context.Context, org string, f ComposeFilter, p Page) ([]Compose, int, error)
	// CountComposesSince counts the org's composes (hidden ones too)
	// created at or after since, and gives the oldest one's time: what
	// quotas count.
	CountComposesSince(ctx context.Context, org string, since time.Time) (n int, oldest time.Time, err error)
	// HideCompose removes a compose from the org's lists; its jobs are
	// canceled first by the caller.
	HideCompose(ctx context.Context, org, id string) error
	// ExpirableComposes lists, oldest first, up to limit composes of any
	// org created before before whose jobs have all ended and whose files
	// have not expired yet.
	ExpirableComposes(ctx context.Context, before time.Time, limit int) ([]string, error)
	// MarkExpired records that the composes' files were removed.
	MarkExpired(ctx context.Context, ids []string) error
}

// Blueprint is one version of a stored blueprint.
type Blueprint struct {
	ID          string
	OrgID       string
	Name        string
	Description string
	Version     int
	// Body is the blueprint as the API takes it (passwords as hashes).
	Body      json.RawMessage
	UpdatedAt time.Time
}

// Blueprints stores versioned blueprints.
type Blueprints interface {
	// CreateBlueprint stores version 1; ErrConflict when the name is taken.
	CreateBlueprint(ctx context.Context, b Blueprint) error
	// UpdateBlueprint stores the next version and returns its number.
	UpdateBlueprint(ctx context.Context, b Blueprint) (int, error)
	// GetBlueprint returns version (0: the latest).
	GetBlueprint(ctx context.Context, org, id string, version int) (Blueprint, error)
	// ListBlueprintVersions returns every version of a blueprint, newest
	// first: each with its body and the time it was stored (UpdatedAt);
	// Name and Description are the latest version's.
	ListBlueprintVersions(ctx context.Context, org, id string) ([]Blueprint, error)
	// ListBlueprints returns a page of the org's blueprints (latest
	// versions, recently changed first), optionally only those named name.
	ListBlueprints(ctx context.Context, org, name string, p Page) ([]Blueprint, int, error)
	DeleteBlueprint(ctx context.Context, org, id string) error
	// ListBlueprintComposes returns a page of the composes made from a
	// blueprint (version 0: any version).
	ListBlueprintComposes(ctx context.Context, org, id string, version int, p Page) ([]Compose, int, error)
}

// Job states.
const (
	JobPending  = "pending"
	JobRunning  = "running"
	JobSuccess  = "success"
	JobFailure  = "failure"
	JobCanceled = "canceled"
)

// Job is one step of a compose: depsolve, build or upload. It runs when
// every job in Deps has succeeded, and fails when one of them fails.
type Job struct {
	ID          string
	ComposeID   string
	OrgID       string
	Type        string
	Arch        string // empty: any worker of the type takes it
	Args        json.RawMessage
	Deps        []string
	MaxAttempts int // 0: DefaultMaxAttempts
	// TraceParent is the W3C trace context of the request that created
	// the job ("00-<trace>-<span>-<flags>"), which the worker running it
	// continues; empty when there was none.
	TraceParent string

	State       string
	Attempts    int
	Worker      string
	QueuedAt    time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	LeaseExpiry *time.Time
	Progress    Progress
	Result      json.RawMessage
	Error       *JobError
	// CancelRequested is set on a running job whose compose was canceled;
	// its worker learns it from its next heartbeat.
	CancelRequested bool
}

// DefaultMaxAttempts runs a job at most three times: the first attempt and
// two retries after its worker stopped heartbeating.
const DefaultMaxAttempts = 3

// Progress is a job's done/total count (stages of a build, MiB of an
// upload) and, for an upload, the step it is in ("uploading",
// "registering").
type Progress struct {
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Step  string `json:"step,omitempty"`
}

// JobError says why a job failed.
type JobError struct {
	Reason  string `json:"reason"`
	Details string `json:"details,omitempty"`
	// Retry marks a transient failure (a mirror timed out), run again
	// while attempts remain; bad input is never retried.
	Retry bool `json:"-"`
}

// Lease is a job handed to a worker with the secret it acts under.
type Lease struct {
	Job   Job
	Token string
	// DepResults holds the results of the job's dependencies by job type.
	DepResults map[string]json.RawMessage
}

// MaxDequeueBatch bounds the jobs one DequeueBatch hands out; a larger
// max is taken as this.
const MaxDequeueBatch = 100

// Worker is who takes a job: its name, and the worker token it
// authenticated with (empty for the service's worker key), whose
// revocation ends the lease.
type Worker struct {
	Name    string
	TokenID string
}

// Queue is the durable job queue.
type Queue interface {
	// Dequeue leases the oldest ready job of one of types to worker for
	// lease, or returns ErrNoJob. A job with an arch goes only to a worker
	// whose arches include it; a job without one goes to any worker.
	Dequeue(ctx context.Context, types, arches []string, worker Worker, lease time.Duration) (Lease, error)
	// DequeueBatch leases up to max of the ready jobs Dequeue would hand
	// out, oldest first, to worker in one step, each under a lease (and
	// token) of its own; ErrNoJob when none is ready. A worker that runs
	// several jobs at once takes them with one request; every guarantee
	// of Dequeue holds for each job.
	DequeueBatch(ctx context.Context, types, arches []string, worker Worker, lease time.Duration, max int) ([]Lease, error)
	// Heartbeat extends a lease; ErrCanceled tells the worker to stop.
	// Heartbeat, Leased, SetProgress and Finish answer ErrLeaseRevoked,
	// not ErrLeaseLost, for a lease its worker token's revocation ended.
	Heartbeat(ctx context.Context, jobID, token string, lease time.Duration) error
	// Leased returns the running job jobID when token holds its lease,
	// else ErrLeaseLost.
	Leased(ctx context.Context, jobID, token string) (Job, error)
	// SetProgress records a running job's progress.
	SetProgress(ctx context.Context, jobID, token string, p Progress) error
	// Finish ends a leased job with its result, or with failure (then its
	// dependents fail too, naming it). A failure marked Retry goes back to
	// the queue while attempts remain.
	Finish(ctx context.Context, jobID, token string, result json.RawMessage, failure *JobError) error
	// CancelCompose cancels the compose's unfinished jobs: pending ones at
	// once, running ones through their worker's next heartbeat. ErrEnded:
	// there was nothing left to cancel.
	CancelCompose(ctx context.Context, org, composeID string) error
	// Rescue requeues running jobs whose lease expired, or fails them once
	// their attempts are used up, as RescueExpired decides, and returns
	// how many of each.
	Rescue(ctx context.Context) (requeued, failed int, err error)
	// ComposeJobs returns a compose's jobs in the order they were created.
	ComposeJobs(ctx context.Context, org, composeID string) ([]Job, error)
	// JobsByCompose returns the jobs of several composes, by compose ID,
	// each list as ComposeJobs gives it: one query for a page of a listing.
	JobsByCompose(ctx context.Context, org string, composeIDs []string) (map[string][]Job, error)
	// Counts returns how many jobs are in each state, by type and arch.
	Counts(ctx context.Context) ([]JobCount, error)
	// ComposeStatusCounts counts the visible composes by status, as
	// ComposeStatus derives it from their jobs. lastType is the kind of a
	// compose's last job.
	ComposeStatusCounts(ctx context.Context, lastType string) (map[string]int, error)
	// Wait returns a channel closed when a job may have become ready; the
	// caller then tries Dequeue again (a long poll without polling).
	Wait() <-chan struct{}
}

// JobCount is one row of Queue.Counts.
type JobCount struct {
	Type, Arch, State string
	N                 int
}

// ConnectedWindow is how long after it was last heard from a worker
// counts as connected. An idle worker asks for a job at least every poll
// timeout (25 s by default) and a busy one heartbeats its job at least
// every 5 s, so a worker still running is heard from well within it,
// even through the worker API's throttled writes (one per 15 s).
const ConnectedWindow = 2 * time.Minute

// SeenWorker is a worker as the service last heard from it.
type SeenWorker struct {
	// Name is the name it asks for jobs under.
	Name string
	// Arches are the architectures it declared it builds.
	Arches []string
	// LastSeen is when it last asked for a job or heartbeat one.
	LastSeen time.Time
}

// Workers records which workers ask for jobs and what they build, so
// that every replica of the service knows which architectures some
// connected worker builds.
type Workers interface {
	// SeeWorker records that the worker w.Name asked for jobs of
	// w.Arches at w.LastSeen; a later time than the one stored wins.
	SeeWorker(ctx context.Context, w SeenWorker) error
	// TouchWorker records that the worker name was heard from at at
	// (a heartbeat of its job), keeping the arches it declared; a worker
	// not recorded yet stays unrecorded.
	TouchWorker(ctx context.Context, name string, at time.Time) error
	// ConnectedWorkers lists the workers heard from at or after since,
	// by name.
	ConnectedWorkers(ctx context.Context, since time.Time) ([]SeenWorker, error)
}

// Backend is everything a database backend provides.
type Backend interface {
	Tokens
	WorkerTokens
	Workers
	Composes
	Blueprints
	Queue
	Incidents
	Uptime
	Uploads
	Close() error
}
