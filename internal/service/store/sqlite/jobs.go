package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// Dequeue implements store.Queue.
func (db *DB) Dequeue(ctx context.Context, types, arches []string, worker store.Worker, lease time.Duration) (store.Lease, error) {
	ls, err := db.DequeueBatch(ctx, types, arches, worker, lease, 1)
	if err != nil {
		return store.Lease{}, err
	}
	return ls[0], nil
}

// DequeueBatch implements store.Queue. SQLite has one writer: the write
// transaction (begun IMMEDIATE) that picks and leases the jobs cannot
// interleave with another's.
func (db *DB) DequeueBatch(ctx context.Context, types, arches []string, worker store.Worker, lease time.Duration, max int) ([]store.Lease, error) {
	if len(types) == 0 || max < 1 {
		return nil, store.ErrNoJob
	}
	max = min(max, store.MaxDequeueBatch)
	var out []store.Lease
	err := db.tx(ctx, func(tx *sql.Tx) error {
		out = nil
		args := []any{store.JobPending}
		for _, t := range types {
			args = append(args, t)
		}
		for _, a := range arches {
			args = append(args, a)
		}
		args = append(args, store.JobSuccess, max)
		rows, err := tx.QueryContext(ctx, `SELECT id FROM jobs j
			WHERE state = ? AND type IN (?`+strings.Repeat(", ?", len(types)-1)+`)
			AND (arch = ''`+strings.Repeat(" OR arch = ?", len(arches))+`)
			AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs dj ON dj.id = d.dep_id WHERE d.job_id = j.id AND dj.state != ?)
			ORDER BY queued_at, seq LIMIT ?`, args...)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return store.ErrNoJob
		}
		now := db.now()
		for _, id := range ids {
			token, hash := store.NewSecret("kjt_")
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, attempts = attempts + 1, worker = ?, worker_token_id = ?, lease_hash = ?,
				lease_expires_at = ?, started_at = ?, progress_done = 0, progress_total = 0, progress_step = '' WHERE id = ?`,
				store.JobRunning, worker.Name, worker.TokenID, hash, rowscan.Nano(now.Add(lease)), rowscan.Nano(now), id); err != nil {
				return err
			}
			j, err := getJob(ctx, tx, id)
			if err != nil {
				return err
			}
			deps, err := depResults(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, store.Lease{Job: j, Token: token, DepResults: deps})
		}
		return nil
	})
	return out, err
}

func depResults(ctx context.Context, tx *sql.Tx, id string) (map[string]json.RawMessage, error) {
	rows, err := tx.QueryContext(ctx, `SELECT dj.type, dj.result FROM job_deps d JOIN jobs dj ON dj.id = d.dep_id WHERE d.job_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var typ string
		var res sql.NullString
		if err := rows.Scan(&typ, &res); err != nil {
			return nil, err
		}
		if res.Valid {
			out[typ] = json.RawMessage(res.String)
		}
	}
	return out, rows.Err()
}

// Heartbeat implements store.Queue.
func (db *DB) Heartbeat(ctx context.Context, jobID, token string, lease time.Duration) error {
	var canceled bool
	err := db.w.QueryRowContext(ctx, `UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_hash = ? AND state = ?
		RETURNING cancel_requested`, rowscan.Nano(db.now().Add(lease)), jobID, store.HashSecret(token), store.JobRunning).Scan(&canceled)
	if errors.Is(err, sql.ErrNoRows) {
		return leaseGone(ctx, db.w, token)
	}
	if err != nil {
		return err
	}
	if canceled {
		return store.ErrCanceled
	}
	return nil
}

// Leased implements store.Queue.
func (db *DB) Leased(ctx context.Context, jobID, token string) (store.Job, error) {
	j, err := rowscan.Job(db.r.QueryRowContext(ctx, `SELECT `+rowscan.JobColumns+` FROM jobs WHERE id = ? AND lease_hash = ? AND state = ?`,
		jobID, store.HashSecret(token), store.JobRunning))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Job{}, leaseGone(ctx, db.r, token)
	}
	return j, err
}

// SetProgress implements store.Queue.
func (db *DB) SetProgress(ctx context.Context, jobID, token string, p store.Progress) error {
	res, err := db.w.ExecContext(ctx, `UPDATE jobs SET progress_done = ?, progress_total = ?, progress_step = ? WHERE id = ? AND lease_hash = ? AND state = ?`,
		p.Done, p.Total, p.Step, jobID, store.HashSecret(token), store.JobRunning)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return leaseGone(ctx, db.w, token)
	}
	return nil
}

// queryer is a database or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// leaseGone says why token holds no lease: ErrLeaseRevoked when its
// worker token's revocation ended it, else ErrLeaseLost.
func leaseGone(ctx context.Context, q queryer, token string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM revoked_leases WHERE lease_hash = ?`, store.HashSecret(token)).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return store.ErrLeaseRevoked
	}
	return store.ErrLeaseLost
}

// Finish implements store.Queue.
func (db *DB) Finish(ctx context.Context, jobID, token string, result json.RawMessage, failure *store.JobError) error {
	wake := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		h := store.HeldLease{JobID: jobID}
		err := tx.QueryRowContext(ctx, `SELECT attempts, max_attempts, cancel_requested FROM jobs WHERE id = ? AND lease_hash = ? AND state = ?`,
			jobID, store.HashSecret(token), store.JobRunning).Scan(&h.Attempts, &h.MaxAttempts, &h.CancelRequested)
		if errors.Is(err, sql.ErrNoRows) {
			return leaseGone(ctx, tx, token)
		}
		if err != nil {
			return err
		}
		now := rowscan.Nano(db.now())
		switch store.FinishOutcome(h, failure) {
		case store.LeaseCancel:
			return cancelJob(ctx, tx, jobID, now)
		case store.LeaseSucceed:
			res := string(result)
			if res == "" {
				res = "null"
			}
			wake = true
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, finished_at = ?, result = ?, lease_hash = NULL WHERE id = ?`,
				store.JobSuccess, now, res, jobID)
			return err
		case store.LeaseRequeue:
			wake = true
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, lease_hash = NULL, lease_expires_at = NULL, worker = '',
				error_reason = ?, error_details = ? WHERE id = ?`, store.JobPending, failure.Reason, failure.Details, jobID)
			return err
		default:
			return failJob(ctx, tx, jobID, now, failure.Reason, failure.Details)
		}
	})
	if err == nil && wake {
		db.wake()
	}
	return err
}

// failJob fails a job and every job that waits on it, directly or not.
func failJob(ctx context.Context, tx *sql.Tx, id string, now int64, reason, details string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, finished_at = ?, lease_hash = NULL, error_reason = ?, error_details = ? WHERE id = ?`,
		store.JobFailure, now, reason, details, id); err != nil {
		return err
	}
	var typ string
	if err := tx.QueryRowContext(ctx, `SELECT type FROM jobs WHERE id = ?`, id).Scan(&typ); err != nil {
		return err
	}
	depReason, depDetails := rowscan.DependencyFailed(typ, reason, details)
	_, err := tx.ExecContext(ctx, `WITH RECURSIVE dependents (id) AS (
			SELECT job_id FROM job_deps WHERE dep_id = ?
			UNION SELECT d.job_id FROM job_deps d JOIN dependents ON d.dep_id = dependents.id)
		UPDATE jobs SET state = ?, finished_at = ?, error_reason = ?, error_details = ?
		WHERE id IN (SELECT id FROM dependents) AND state = ?`,
		id, store.JobFailure, now, depReason, depDetails, store.JobPending)
	return err
}

// cancelJob ends a job as canceled, with the jobs waiting on it.
func cancelJob(ctx context.Context, tx *sql.Tx, id string, now int64) error {
	_, err := tx.ExecContext(ctx, `WITH RECURSIVE chain (id) AS (
			SELECT ?
			UNION SELECT d.job_id FROM job_deps d JOIN chain ON d.dep_id = chain.id)
		UPDATE jobs SET state = ?, finished_at = ?, lease_hash = NULL, error_reason = 'canceled'
		WHERE id IN (SELECT id FROM chain) AND state IN (?, ?)`,
		id, store.JobCanceled, now, store.JobPending, store.JobRunning)
	return err
}

// CancelCompose implements store.Queue.
func (db *DB) CancelCompose(ctx context.Context, org, composeID string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM composes WHERE org_id = ? AND id = ? AND hidden = 0`, org, composeID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		now := rowscan.Nano(db.now())
		marked, err := tx.ExecContext(ctx, `UPDATE jobs SET cancel_requested = 1 WHERE compose_id = ? AND state = ? AND cancel_requested = 0`,
			composeID, store.JobRunning)
		if err != nil {
			return err
		}
		canceled, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, finished_at = ?, error_reason = 'canceled' WHERE compose_id = ? AND state = ?`,
			store.JobCanceled, now, composeID, store.JobPending)
		if err != nil {
			return err
		}
		m, _ := marked.RowsAffected()
		c, _ := canceled.RowsAffected()
		if m+c == 0 {
			return store.ErrEnded
		}
		return nil
	})
}

// Rescue implements store.Queue with the policy of store.RescueExpired.
func (db *DB) Rescue(ctx context.Context) (requeued, failed int, err error) {
	err = db.ExpiredLeaseTx(ctx, func(ops store.ExpiredLeaseOps) error {
		var err error
		requeued, failed, err = store.RescueExpired(ctx, ops, db.now())
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if requeued > 0 {
		db.wake()
	}
	return requeued, failed, nil
}

var _ store.ExpiredLeaseTx = (*DB)(nil)

// ExpiredLeaseTx implements store.ExpiredLeaseTx: SQLite's write
// transactions begin IMMEDIATE, so no other writer runs meanwhile.
func (db *DB) ExpiredLeaseTx(ctx context.Context, fn func(store.ExpiredLeaseOps) error) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return fn(leaseOps{tx}) })
}

// leaseOps executes the queue policy's steps in a write transaction.
type leaseOps struct{ tx *sql.Tx }

func (o leaseOps) ExpiredLeases(ctx context.Context, now time.Time) ([]store.HeldLease, error) {
	rows, err := o.tx.QueryContext(ctx, `SELECT id, worker, attempts, max_attempts, cancel_requested FROM jobs
		WHERE state = ? AND lease_expires_at < ? ORDER BY lease_expires_at, id`, store.JobRunning, rowscan.Nano(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.HeldLease
	for rows.Next() {
		var h store.HeldLease
		if err := rows.Scan(&h.JobID, &h.Worker, &h.Attempts, &h.MaxAttempts, &h.CancelRequested); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (o leaseOps) RequeueJob(ctx context.Context, jobID, reason string) error {
	_, err := o.tx.ExecContext(ctx, `UPDATE jobs SET state = ?, lease_hash = NULL, lease_expires_at = NULL, worker = '',
		error_reason = ? WHERE id = ?`, store.JobPending, reason, jobID)
	return err
}

func (o leaseOps) FailJob(ctx context.Context, jobID string, now time.Time, reason, details string) error {
	return failJob(ctx, o.tx, jobID, rowscan.Nano(now), reason, details)
}

func (o leaseOps) CancelJob(ctx context.Context, jobID string, now time.Time) error {
	return cancelJob(ctx, o.tx, jobID, rowscan.Nano(now))
}

// ComposeJobs implements store.Queue: JobsByCompose for one compose.
func (db *DB) ComposeJobs(ctx context.Context, org, composeID string) ([]store.Job, error) {
	byCompose, err := db.JobsByCompose(ctx, org, []string{composeID})
	if err != nil {
		return nil, err
	}
	return byCompose[composeID], nil
}

// JobsByCompose implements store.Queue.
func (db *DB) JobsByCompose(ctx context.Context, org string, composeIDs []string) (map[string][]store.Job, error) {
	out := map[string][]store.Job{}
	if len(composeIDs) == 0 {
		return out, nil
	}
	in := `(?` + strings.Repeat(", ?", len(composeIDs)-1) + `)`
	args := []any{org}
	for _, id := range composeIDs {
		args = append(args, id)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+rowscan.JobColumns+` FROM jobs WHERE org_id = ? AND compose_id IN `+in+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := map[string]*store.Job{}
	var order []string
	var all []store.Job
	for rows.Next() {
		j, err := rowscan.Job(rows)
		if err != nil {
			return nil, err
		}
		all = append(all, j)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range all {
		byID[all[i].ID] = &all[i]
		order = append(order, all[i].ID)
	}
	deps, err := db.r.QueryContext(ctx, `SELECT d.job_id, d.dep_id FROM job_deps d JOIN jobs j ON j.id = d.job_id
		WHERE j.org_id = ? AND j.compose_id IN `+in+` ORDER BY d.dep_id`, args...)
	if err != nil {
		return nil, err
	}
	defer deps.Close()
	for deps.Next() {
		var job, dep string
		if err := deps.Scan(&job, &dep); err != nil {
			return nil, err
		}
		if j := byID[job]; j != nil {
			j.Deps = append(j.Deps, dep)
		}
	}
	if err := deps.Err(); err != nil {
		return nil, err
	}
	for _, id := range order {
		j := byID[id]
		out[j.ComposeID] = append(out[j.ComposeID], *j)
	}
	return out, nil
}

func getJob(ctx context.Context, tx *sql.Tx, id string) (store.Job, error) {
	return rowscan.Job(tx.QueryRowContext(ctx, `SELECT `+rowscan.JobColumns+` FROM jobs WHERE id = ?`, id))
}
