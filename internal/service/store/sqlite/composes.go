package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// CreateCompose implements store.Composes.
func (db *DB) CreateCompose(ctx context.Context, c store.Compose, jobs []store.Job) error {
	return db.CreateComposes(ctx, c.OrgID, []store.NewCompose{{Compose: c, Jobs: jobs}}, store.Quota{})
}

// CreateComposes implements store.Composes. SQLite has one writer, and
// write transactions begin IMMEDIATE: the count and the inserts cannot
// interleave with another call's.
func (db *DB) CreateComposes(ctx context.Context, org string, cs []store.NewCompose, q store.Quota) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if q.Limit > 0 {
			var n int
			var oldest sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM composes WHERE org_id = ? AND created_at >= ?`,
				org, rowscan.Nano(q.Since)).Scan(&n, &oldest); err != nil {
				return err
			}
			if n+len(cs) > q.Limit {
				qe := &store.QuotaError{Used: n}
				if oldest.Valid {
					qe.Oldest = rowscan.Time(oldest.Int64)
				}
				return qe
			}
		}
		for _, nc := range cs {
			c := nc.Compose
			if c.OrgID != org {
				return fmt.Errorf("compose %s belongs to org %q, not %q", c.ID, c.OrgID, org)
			}
			var bpID sql.NullString
			var bpVersion sql.NullInt64
			if c.BlueprintID != "" {
				bpID = sql.NullString{String: c.BlueprintID, Valid: true}
				bpVersion = sql.NullInt64{Int64: int64(c.BlueprintVersion), Valid: true}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO composes (id, org_id, created_at, image_name, image_type, request, blueprint_id, blueprint_version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				c.ID, c.OrgID, rowscan.Nano(c.CreatedAt), c.ImageName, c.ImageType, string(c.Request), bpID, bpVersion); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO org_compose_counts (org_id, visible) VALUES (?, 1)
			ON CONFLICT (org_id) DO UPDATE SET visible = visible + 1`, c.OrgID); err != nil {
				return err
			}
			if err := insertJobs(ctx, tx, c, nc.Jobs, db.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		db.wake()
	}
	return err
}

func insertJobs(ctx context.Context, tx *sql.Tx, c store.Compose, jobs []store.Job, now time.Time) error {
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM jobs`).Scan(&seq); err != nil {
		return err
	}
	for _, j := range jobs {
		seq++
		max := store.AttemptsAllowed(j)
		args := string(j.Args)
		if args == "" {
			args = "null"
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, seq, compose_id, org_id, type, arch, args, max_attempts, state, queued_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, seq, c.ID, c.OrgID, j.Type, j.Arch, args, max, store.JobPending, rowscan.Nano(now)); err != nil {
			return err
		}
		for _, d := range j.Deps {
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?)`, j.ID, d); err != nil {
				return err
			}
		}
	}
	return nil
}
