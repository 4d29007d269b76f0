// Package rowscan is what the SQL store backends share beyond their SQL:
// both keep the same schema, with times as Unix nanoseconds, so a row of
// tokens, composes or jobs reads the same from SQLite and from PostgreSQL,
// and the reasons the queue writes into jobs read the same on either.
package rowscan

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
)

// Scanner is a row: *sql.Row, *sql.Rows and pgx.Row all are. NULL columns
// are scanned into pointers, which both drivers set to nil.
type Scanner interface{ Scan(dest ...any) error }

// Nano is how a time is stored.
func Nano(t time.Time) int64 { return t.UnixNano() }

// Time reads a stored time.
func Time(n int64) time.Time { return time.Unix(0, n).UTC() }

// NullTime reads a stored time that may be NULL.
func NullTime(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := Time(*n)
	return &t
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TokenColumns are the columns Token reads, in order.
const TokenColumns = `id, org_id, name, hash, created_at, revoked_at`

// Token reads a row of TokenColumns.
func Token(s Scanner) (store.Token, error) {
	var t store.Token
	var created int64
	var revoked *int64
	if err := s.Scan(&t.ID, &t.OrgID, &t.Name, &t.Hash, &created, &revoked); err != nil {
		return store.Token{}, err
	}
	t.CreatedAt, t.RevokedAt = Time(created), NullTime(revoked)
	return t, nil
}

// WorkerTokenColumns are the columns WorkerToken reads, in order.
const WorkerTokenColumns = `id, name, hash, created_at, revoked_at`

// WorkerToken reads a row of WorkerTokenColumns.
func WorkerToken(s Scanner) (store.WorkerToken, error) {
	var t store.WorkerToken
	var created int64
	var revoked *int64
	if err := s.Scan(&t.ID, &t.Name, &t.Hash, &created, &revoked); err != nil {
		return store.WorkerToken{}, err
	}
	t.CreatedAt, t.RevokedAt = Time(created), NullTime(revoked)
	return t, nil
}

// ComposeColumns are the columns Compose reads, in order.
const ComposeColumns = `id, org_id, created_at, image_name, image_type, request, expired, blueprint_id, blueprint_version`

// Compose reads a row of ComposeColumns.
func Compose(s Scanner) (store.Compose, error) {
	var c store.Compose
	var created int64
	var req string
	var bpID *string
	var bpVersion *int
	if err := s.Scan(&c.ID, &c.OrgID, &created, &c.ImageName, &c.ImageType, &req, &c.Expired, &bpID, &bpVersion); err != nil {
		return store.Compose{}, err
	}
	c.BlueprintID, c.BlueprintVersion = deref(bpID), deref(bpVersion)
	c.CreatedAt = Time(created)
	c.Request = []byte(req)
	return c, nil
}

// JobColumns are the columns Job reads, in order.
const JobColumns = `id, compose_id, org_id, type, arch, args, max_attempts, state, attempts, worker,
	queued_at, started_at, finished_at, lease_expires_at, progress_done, progress_total, progress_step,
	result, error_reason, error_details, cancel_requested, traceparent`

// Job reads a row of JobColumns, followed by the columns extra points to.
func Job(s Scanner, extra ...any) (store.Job, error) {
	var j store.Job
	var args string
	var queued int64
	var started, finished, expiry *int64
	var result, reason, details *string
	dest := []any{&j.ID, &j.ComposeID, &j.OrgID, &j.Type, &j.Arch, &args, &j.MaxAttempts, &j.State, &j.Attempts, &j.Worker,
		&queued, &started, &finished, &expiry, &j.Progress.Done, &j.Progress.Total, &j.Progress.Step,
		&result, &reason, &details, &j.CancelRequested, &j.TraceParent}
	if err := s.Scan(append(dest, extra...)...); err != nil {
		return store.Job{}, err
	}
	j.Args = json.RawMessage(args)
	j.QueuedAt = Time(queued)
	j.StartedAt, j.FinishedAt, j.LeaseExpiry = NullTime(started), NullTime(finished), NullTime(expiry)
	if result != nil {
		j.Result = json.RawMessage(*result)
	}
	if reason != nil && (j.State == store.JobFailure || j.State == store.JobCanceled) {
		j.Error = &store.JobError{Reason: *reason, Details: deref(details)}
	}
	return j, nil
}

// DependencyFailed is the error of a job whose dependency, of type typ,
// failed with reason and details: it names the dependency and carries the
// root cause.
func DependencyFailed(typ, reason, details string) (string, string) {
	if details != "" {
		reason += ": " + details
	}
	return fmt.Sprintf("the %s job it depends on failed", typ), reason
}
