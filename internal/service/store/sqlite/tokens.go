package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// CreateToken implements store.Tokens.
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO tokens (id, org_id, name, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.OrgID, t.Name, t.Hash, rowscan.Nano(t.CreatedAt))
	return err
}

// TokenByHash implements store.Tokens.
func (db *DB) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+rowscan.TokenColumns+` FROM tokens WHERE hash = ? AND revoked_at IS NULL`, hash)
	t, err := rowscan.Token(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, store.ErrNotFound
	}
	return t, err
}

// ListTokens implements store.Tokens.
func (db *DB) ListTokens(ctx context.Context, org string) ([]store.Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+rowscan.TokenColumns+` FROM tokens WHERE org_id = ? ORDER BY created_at, id`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := rowscan.Token(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken implements store.Tokens.
func (db *DB) RevokeToken(ctx context.Context, org, id string) error {
	res, err := db.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL`,
		rowscan.Nano(db.now()), org, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// CreateWorkerToken implements store.WorkerTokens.
func (db *DB) CreateWorkerToken(ctx context.Context, t store.WorkerToken) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO worker_tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.Name, t.Hash, rowscan.Nano(t.CreatedAt))
	return err
}

// WorkerTokenByHash implements store.WorkerTokens.
func (db *DB) WorkerTokenByHash(ctx context.Context, hash string) (store.WorkerToken, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+rowscan.WorkerTokenColumns+` FROM worker_tokens WHERE hash = ? AND revoked_at IS NULL`, hash)
	t, err := rowscan.WorkerToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.WorkerToken{}, store.ErrNotFound
	}
	return t, err
}

// ListWorkerTokens implements store.WorkerTokens.
func (db *DB) ListWorkerTokens(ctx context.Context) ([]store.WorkerToken, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+rowscan.WorkerTokenColumns+` FROM worker_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.WorkerToken
	for rows.Next() {
		t, err := rowscan.WorkerToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeWorkerToken implements store.WorkerTokens.
func (db *DB) RevokeWorkerToken(ctx context.Context, id string) error {
	requeued := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := rowscan.Nano(db.now())
		res, err := tx.ExecContext(ctx, `UPDATE worker_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, lease_hash, worker, cancel_requested FROM jobs WHERE state = ? AND worker_token_id = ?`, store.JobRunning, id)
		if err != nil {
			return err
		}
		type held struct {
			id, hash, worker string
			canceled         bool
		}
		var all []held
		for rows.Next() {
			var h held
			if err := rows.Scan(&h.id, &h.hash, &h.worker, &h.canceled); err != nil {
				rows.Close()
				return err
			}
			all = append(all, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, h := range all {
			if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_leases (lease_hash, job_id, revoked_at) VALUES (?, ?, ?)`, h.hash, h.id, now); err != nil {
				return err
			}
			if store.RevokedOutcome(store.HeldLease{JobID: h.id, Worker: h.worker, CancelRequested: h.canceled}) == store.LeaseCancel {
				if err := cancelJob(ctx, tx, h.id, now); err != nil {
					return err
				}
				continue
			}
			// The attempt the revoked worker made does not count: the
			// job did not fail, its worker was no longer trusted.
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, attempts = MAX(attempts - 1, 0), lease_hash = NULL, lease_expires_at = NULL,
				worker = '', worker_token_id = '', error_reason = ? WHERE id = ?`, store.JobPending, store.RevokedReason(h.worker), h.id); err != nil {
				return err
			}
			requeued++
		}
		return nil
	})
	if err == nil && requeued > 0 {
		db.wake()
	}
	return err
}
