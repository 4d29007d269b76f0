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
		// One prepared statement per table for the whole request, and
		// the jobs' seq read once: a request of many composes costs a
		// step per row, not a parse per row.
		insCompose, err := tx.PrepareContext(ctx, `INSERT INTO composes (id, org_id, created_at, image_name, image_type, request, blueprint_id, blueprint_version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insCompose.Close()
		ins := jobInserts{}
		if ins.job, err = tx.PrepareContext(ctx, `INSERT INTO jobs (id, seq, compose_id, org_id, type, arch, args, max_attempts, state, queued_at, traceparent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`); err != nil {
			return err
		}
		defer ins.job.Close()
		if ins.dep, err = tx.PrepareContext(ctx, `INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?)`); err != nil {
			return err
		}
		defer ins.dep.Close()
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM jobs`).Scan(&ins.seq); err != nil {
			return err
		}
		now := db.now()
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
			if _, err := insCompose.ExecContext(ctx, c.ID, c.OrgID, rowscan.Nano(c.CreatedAt), c.ImageName, c.ImageType, string(c.Request), bpID, bpVersion); err != nil {
				return err
			}
			if err := ins.jobs(ctx, c, nc.Jobs, now); err != nil {
				return err
			}
		}
		if len(cs) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO org_compose_counts (org_id, visible) VALUES (?, ?)
			ON CONFLICT (org_id) DO UPDATE SET visible = visible + excluded.visible`, org, len(cs)); err != nil {
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

// jobInserts stores jobs with prepared statements, numbering them on
// from seq.
type jobInserts struct {
	job, dep *sql.Stmt
	seq      int64
}

func (ins *jobInserts) jobs(ctx context.Context, c store.Compose, jobs []store.Job, now time.Time) error {
	for _, j := range jobs {
		ins.seq++
		args := string(j.Args)
		if args == "" {
			args = "null"
		}
		if _, err := ins.job.ExecContext(ctx, j.ID, ins.seq, c.ID, c.OrgID, j.Type, j.Arch, args, store.AttemptsAllowed(j), store.JobPending, rowscan.Nano(now), j.TraceParent); err != nil {
			return err
		}
		for _, d := range j.Deps {
			if _, err := ins.dep.ExecContext(ctx, j.ID, d); err != nil {
				return err
			}
		}
	}
	return nil
}
