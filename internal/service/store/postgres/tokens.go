package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// RevokeWorkerToken implements store.WorkerTokens.
func (db *DB) RevokeWorkerToken(ctx context.Context, id string) error {
	requeued := 0
	err := db.tx(ctx, func(tx pgx.Tx) error {
		requeued = 0
		now := rowscan.Nano(db.now())
		tag, err := tx.Exec(ctx, `UPDATE worker_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, now, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		rows, err := tx.Query(ctx, `SELECT id, lease_hash, worker, cancel_requested FROM jobs WHERE state = 'running' AND worker_token_id = $1 FOR UPDATE`, id)
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
			if _, err := tx.Exec(ctx, `INSERT INTO revoked_leases (lease_hash, job_id, revoked_at) VALUES ($1, $2, $3)`, h.hash, h.id, now); err != nil {
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
			if _, err := tx.Exec(ctx, `UPDATE jobs SET state = 'pending', attempts = GREATEST(attempts - 1, 0), lease_hash = NULL, lease_expires_at = NULL,
				worker = '', worker_token_id = '', error_reason = $1 WHERE id = $2`, store.RevokedReason(h.worker), h.id); err != nil {
				return err
			}
			requeued++
		}
		if requeued > 0 {
			return db.notify(ctx, tx)
		}
		return nil
	})
	if err == nil && requeued > 0 {
		db.wake()
	}
	return err
}
