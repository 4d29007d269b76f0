package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// The job states are written into the statements as literals, not passed
// as parameters: the planner then matches the partial indexes on state
// (jobs_ready, jobs_lease) in the generic plans of prepared statements too.
// They must spell store.JobPending and the rest.

// dequeueSQL picks up to $8 of the oldest ready jobs, locks them
// (skipping jobs that other dequeuers hold at this moment), leases each
// under its own lease hash (from $4, one per picked row) and returns them
// with their dependencies' results: one statement, one round trip, atomic,
// whether it hands out one job or a batch. FOR UPDATE takes no window
// function, so the picked rows are numbered in a CTE of their own.
const dequeueSQL = `WITH picked AS (
		SELECT id AS pick FROM jobs j
		WHERE state = 'pending' AND type = ANY($1) AND (arch = '' OR arch = ANY($2))
		AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs dj ON dj.id = d.dep_id WHERE d.job_id = j.id AND dj.state <> 'success')
		ORDER BY queued_at, seq LIMIT $8
		FOR UPDATE SKIP LOCKED
	), numbered AS (
		SELECT pick, row_number() OVER () AS n FROM picked
	), leased AS (
		UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = $3, worker_token_id = $7, lease_hash = ($4::text[])[numbered.n],
			lease_expires_at = $5, started_at = $6, progress_done = 0, progress_total = 0, progress_step = ''
		FROM numbered WHERE jobs.id = numbered.pick
		RETURNING ` + rowscan.JobColumns + `, jobs.lease_hash, jobs.seq
	)
	SELECT ` + rowscan.JobColumns + `, lease_hash, deps.types, deps.results FROM leased LEFT JOIN LATERAL (
		SELECT array_agg(dj.type ORDER BY dj.seq) AS types, array_agg(dj.result ORDER BY dj.seq) AS results
		FROM job_deps d JOIN jobs dj ON dj.id = d.dep_id WHERE d.job_id = leased.id AND dj.result IS NOT NULL) deps ON true
	ORDER BY queued_at, seq`

// A gate remembers, for one kind of Dequeue (its types and arches), the
// last wake generation in which a look found no job. Every wake wakes
// every waiting worker and most of them find nothing; a worker whose look
// begins in a generation in which one already found nothing gets ErrNoJob
// without asking the database. That is safe: a job that became ready since
// that look began comes with a wake, which closes the worker's Wait
// channel (a job another replica made ready, with that replica's
// notification), and the worker looks again.
type gate struct {
	mu       sync.Mutex
	empty    bool
	emptyGen uint64
}

func (g *gate) emptySince(gen uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.empty && g.emptyGen >= gen
}

func (g *gate) foundNone(gen uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.empty || gen > g.emptyGen {
		g.empty, g.emptyGen = true, gen
	}
}

func (db *DB) gateFor(types, arches []string) (*gate, uint64) {
	key := strings.Join(types, ",") + "|" + strings.Join(arches, ",")
	db.mu.Lock()
	defer db.mu.Unlock()
	g := db.gates[key]
	if g == nil {
		g = &gate{}
		db.gates[key] = g
	}
	return g, db.gen
}

// Dequeue implements store.Queue.
func (db *DB) Dequeue(ctx context.Context, types, arches []string, worker store.Worker, lease time.Duration) (store.Lease, error) {
	ls, err := db.DequeueBatch(ctx, types, arches, worker, lease, 1)
	if err != nil {
		return store.Lease{}, err
	}
	return ls[0], nil
}

// DequeueBatch implements store.Queue.
func (db *DB) DequeueBatch(ctx context.Context, types, arches []string, worker store.Worker, lease time.Duration, max int) ([]store.Lease, error) {
	if len(types) == 0 || max < 1 {
		return nil, store.ErrNoJob
	}
	max = min(max, store.MaxDequeueBatch)
	g, gen := db.gateFor(types, arches)
	if g.emptySince(gen) {
		return nil, store.ErrNoJob
	}
	ls, err := db.dequeue(ctx, types, arches, worker, lease, max)
	switch {
	case errors.Is(err, store.ErrNoJob):
		g.foundNone(gen)
	case err != nil:
		// The statement may have held jobs that others skipped and
		// that are ready again now: let them look.
		db.wake()
	}
	return ls, err
}

func (db *DB) dequeue(ctx context.Context, types, arches []string, worker store.Worker, lease time.Duration, max int) ([]store.Lease, error) {
	if arches == nil {
		arches = []string{}
	}
	tokens := make(map[string]string, max)
	hashes := make([]string, max)
	for i := range hashes {
		token, hash := store.NewSecret("kjt_")
		tokens[hash], hashes[i] = token, hash
	}
	now := db.now()
	rows, err := db.pool.Query(ctx, dequeueSQL, types, arches, worker.Name, hashes, rowscan.Nano(now.Add(lease)), rowscan.Nano(now), worker.TokenID, max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		var hash string
		var depTypes, depResults []string
		j, err := rowscan.Job(rows, &hash, &depTypes, &depResults)
		if err != nil {
			return nil, err
		}
		deps := make(map[string]json.RawMessage, len(depTypes))
		for i, t := range depTypes {
			deps[t] = json.RawMessage(depResults[i])
		}
		out = append(out, store.Lease{Job: j, Token: tokens[hash], DepResults: deps})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, store.ErrNoJob
	}
	return out, nil
}

// queryer is a pool or a transaction.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// leaseGone says why token holds no lease: ErrLeaseRevoked when its
// worker token's revocation ended it, else ErrLeaseLost.
func leaseGone(ctx context.Context, q queryer, token string) error {
	var revoked bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_leases WHERE lease_hash = $1)`, store.HashSecret(token)).Scan(&revoked); err != nil {
		return err
	}
	if revoked {
		return store.ErrLeaseRevoked
	}
	return store.ErrLeaseLost
}

// Heartbeat implements store.Queue.
func (db *DB) Heartbeat(ctx context.Context, jobID, token string, lease time.Duration) error {
	var canceled bool
	err := db.pool.QueryRow(ctx, `UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND lease_hash = $3 AND state = 'running'
		RETURNING cancel_requested`, rowscan.Nano(db.now().Add(lease)), jobID, store.HashSecret(token)).Scan(&canceled)
	if errors.Is(err, pgx.ErrNoRows) {
		return leaseGone(ctx, db.pool, token)
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
	j, err := rowscan.Job(db.pool.QueryRow(ctx, `SELECT `+rowscan.JobColumns+` FROM jobs WHERE id = $1 AND lease_hash = $2 AND state = 'running'`,
		jobID, store.HashSecret(token)))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Job{}, leaseGone(ctx, db.pool, token)
	}
	return j, err
}

// SetProgress implements store.Queue.
func (db *DB) SetProgress(ctx context.Context, jobID, token string, p store.Progress) error {
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET progress_done = $1, progress_total = $2, progress_step = $5 WHERE id = $3 AND lease_hash = $4 AND state = 'running'`,
		p.Done, p.Total, jobID, store.HashSecret(token), p.Step)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return leaseGone(ctx, db.pool, token)
	}
	return nil
}

// succeedSQL ends a leased, not canceled job with success and, when jobs
// wait on it, sends the NOTIFY that wakes their workers: the common case
// of Finish in one statement. It is store.FinishOutcome's LeaseSucceed
// written into the WHERE clause; any other case falls through to Finish's
// transaction, which asks store.FinishOutcome. It returns how many jobs it ended (0 or 1)
// and whether it notified.
const succeedSQL = `WITH done AS (
		UPDATE jobs SET state = 'success', finished_at = $1, result = $2, lease_hash = NULL
		WHERE id = $3 AND lease_hash = $4 AND state = 'running' AND NOT cancel_requested
		RETURNING id
	), woke AS (
		SELECT pg_notify($5, $6) FROM done WHERE EXISTS (SELECT 1 FROM job_deps d WHERE d.dep_id = done.id)
	)
	SELECT (SELECT COUNT(*) FROM done), (SELECT COUNT(*) FROM woke)`

// Finish implements store.Queue.
func (db *DB) Finish(ctx context.Context, jobID, token string, result json.RawMessage, failure *store.JobError) error {
	hash := store.HashSecret(token)
	res := string(result)
	if res == "" {
		res = "null"
	}
	if failure == nil {
		var done, woke int
		if err := db.pool.QueryRow(ctx, succeedSQL, rowscan.Nano(db.now()), res, jobID, hash, channel, db.id).Scan(&done, &woke); err != nil {
			return err
		}
		if woke > 0 {
			db.wake()
		}
		if done > 0 {
			return nil
		}
		// Canceled meanwhile, or not leased: the general case says which.
	}
	wake := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		wake = false
		h := store.HeldLease{JobID: jobID}
		err := tx.QueryRow(ctx, `SELECT attempts, max_attempts, cancel_requested FROM jobs WHERE id = $1 AND lease_hash = $2 AND state = 'running'
			FOR UPDATE`, jobID, hash).Scan(&h.Attempts, &h.MaxAttempts, &h.CancelRequested)
		if errors.Is(err, pgx.ErrNoRows) {
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
			var dependents bool
			if err := tx.QueryRow(ctx, `UPDATE jobs SET state = 'success', finished_at = $1, result = $2, lease_hash = NULL WHERE id = $3
				RETURNING EXISTS (SELECT 1 FROM job_deps d WHERE d.dep_id = jobs.id)`, now, res, jobID).Scan(&dependents); err != nil {
				return err
			}
			if !dependents {
				return nil
			}
		case store.LeaseRequeue:
			if _, err := tx.Exec(ctx, `UPDATE jobs SET state = 'pending', lease_hash = NULL, lease_expires_at = NULL, worker = '',
				error_reason = $1, error_details = $2 WHERE id = $3`, failure.Reason, failure.Details, jobID); err != nil {
				return err
			}
		default:
			return failJob(ctx, tx, jobID, now, failure.Reason, failure.Details)
		}
		wake = true
		return db.notify(ctx, tx)
	})
	if err == nil && wake {
		db.wake()
	}
	return err
}

// failJob fails a job and every job that waits on it, directly or not.
func failJob(ctx context.Context, tx pgx.Tx, id string, now int64, reason, details string) error {
	var typ string
	if err := tx.QueryRow(ctx, `UPDATE jobs SET state = 'failure', finished_at = $1, lease_hash = NULL, error_reason = $2, error_details = $3
		WHERE id = $4 RETURNING type`, now, reason, details, id).Scan(&typ); err != nil {
		return err
	}
	depReason, depDetails := rowscan.DependencyFailed(typ, reason, details)
	_, err := tx.Exec(ctx, `WITH RECURSIVE dependents (id) AS (
			SELECT job_id FROM job_deps WHERE dep_id = $1
			UNION SELECT d.job_id FROM job_deps d JOIN dependents ON d.dep_id = dependents.id)
		UPDATE jobs SET state = 'failure', finished_at = $2, error_reason = $3, error_details = $4
		WHERE id IN (SELECT id FROM dependents) AND state = 'pending'`,
		id, now, depReason, depDetails)
	return err
}

// cancelJob ends a job as canceled, with the jobs waiting on it.
func cancelJob(ctx context.Context, tx pgx.Tx, id string, now int64) error {
	_, err := tx.Exec(ctx, `WITH RECURSIVE chain (id) AS (
			SELECT $1::text COLLATE "C"
			UNION SELECT d.job_id FROM job_deps d JOIN chain ON d.dep_id = chain.id)
		UPDATE jobs SET state = 'canceled', finished_at = $2, lease_hash = NULL, error_reason = 'canceled'
		WHERE id IN (SELECT id FROM chain) AND state IN ('pending', 'running')`, id, now)
	return err
}

// CancelCompose implements store.Queue. One statement marks the running
// jobs and cancels the pending ones: a job that a dequeuer in another
// replica leases meanwhile is re-read once that commits and is marked as
// running, not missed between two statements.
func (db *DB) CancelCompose(ctx context.Context, org, composeID string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM composes WHERE org_id = $1 AND id = $2 AND NOT hidden`, org, composeID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET
				cancel_requested = cancel_requested OR state = 'running',
				finished_at = CASE WHEN state = 'pending' THEN $1 ELSE finished_at END,
				error_reason = CASE WHEN state = 'pending' THEN 'canceled' ELSE error_reason END,
				state = CASE WHEN state = 'pending' THEN 'canceled' ELSE state END
			WHERE compose_id = $2 AND (state = 'pending' OR (state = 'running' AND NOT cancel_requested))`, rowscan.Nano(db.now()), composeID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrEnded
		}
		return nil
	})
}

// Rescue implements store.Queue with the policy of store.RescueExpired.
// Replicas may rescue at once: each locks the expired jobs it handles and
// skips those another one holds.
func (db *DB) Rescue(ctx context.Context) (requeued, failed int, err error) {
	err = db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		requeued, failed, err = store.RescueExpired(ctx, leaseOps{tx}, db.now())
		if err != nil || requeued == 0 {
			return err
		}
		return db.notify(ctx, tx)
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

// ExpiredLeaseTx implements store.ExpiredLeaseTx.
func (db *DB) ExpiredLeaseTx(ctx context.Context, fn func(store.ExpiredLeaseOps) error) error {
	return db.tx(ctx, func(tx pgx.Tx) error { return fn(leaseOps{tx}) })
}

// leaseOps executes the queue policy's steps in a transaction.
type leaseOps struct{ tx pgx.Tx }

// ExpiredLeases locks the expired jobs, in the order it returns them,
// skipping those another replica's rescue holds.
func (o leaseOps) ExpiredLeases(ctx context.Context, now time.Time) ([]store.HeldLease, error) {
	rows, err := o.tx.Query(ctx, `SELECT id, worker, attempts, max_attempts, cancel_requested FROM jobs
		WHERE state = 'running' AND lease_expires_at < $1 ORDER BY lease_expires_at, id FOR UPDATE SKIP LOCKED`, rowscan.Nano(now))
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
	_, err := o.tx.Exec(ctx, `UPDATE jobs SET state = 'pending', lease_hash = NULL, lease_expires_at = NULL, worker = '',
		error_reason = $1 WHERE id = $2`, reason, jobID)
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
	rows, err := db.pool.Query(ctx, `SELECT `+rowscan.JobColumns+`, ARRAY(SELECT dep_id FROM job_deps d WHERE d.job_id = jobs.id ORDER BY dep_id)
		FROM jobs WHERE org_id = $1 AND compose_id = ANY($2) ORDER BY seq`, org, composeIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var deps []string
		j, err := rowscan.Job(rows, &deps)
		if err != nil {
			return nil, err
		}
		if len(deps) > 0 {
			j.Deps = deps
		}
		out[j.ComposeID] = append(out[j.ComposeID], j)
	}
	return out, rows.Err()
}
