package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
	"github.com/kiln-project/kiln/internal/service/store/sqlstore"
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
		max := j.MaxAttempts
		if max <= 0 {
			max = store.DefaultMaxAttempts
		}
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

// GetCompose implements store.Composes.
func (db *DB) GetCompose(ctx context.Context, org, id string) (store.Compose, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+rowscan.ComposeColumns+` FROM composes WHERE org_id = ? AND id = ? AND hidden = 0`, org, id)
	c, err := rowscan.Compose(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Compose{}, store.ErrNotFound
	}
	return c, err
}

// composeStatus is a compose's status derived from its jobs, as
// store.ComposeStatus derives it; ?1 is the kind of its last job.
var composeStatus = sqlstore.ComposeStatusSQL("?1")

// ListComposes implements store.Composes. Without a filter the total is
// the org's kept count; with one, the matching composes are counted.
func (db *DB) ListComposes(ctx context.Context, org string, f store.ComposeFilter, p store.Page) ([]store.Compose, int, error) {
	// ?1 is the last job's kind, which composeStatus refers to.
	where, args := `org_id = ?2 AND hidden = 0`, []any{f.LastType, org}
	if f.ImageType != "" {
		where += ` AND image_type = ?3`
		args = append(args, f.ImageType)
	}
	if f.Status != "" {
		where += fmt.Sprintf(` AND %s = ?%d`, composeStatus, len(args)+1)
		args = append(args, f.Status)
	}
	var total int
	var err error
	if f.ImageType == "" && f.Status == "" {
		err = db.r.QueryRowContext(ctx, `SELECT visible FROM org_compose_counts WHERE org_id = ?`, org).Scan(&total)
	} else {
		err = db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM composes WHERE `+where, args...).Scan(&total)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	out, err := db.pageOfComposes(ctx, where, args, p)
	return out, total, err
}

// pageOfComposes returns a page of the composes matching where (whose
// placeholders are ?1..?len(args)), newest first.
func (db *DB) pageOfComposes(ctx context.Context, where string, args []any, p store.Page) ([]store.Compose, error) {
	n := len(args)
	rows, err := db.r.QueryContext(ctx, `SELECT `+rowscan.ComposeColumns+` FROM composes WHERE `+where+`
		ORDER BY created_at DESC, id LIMIT ?`+strconv.Itoa(n+1)+` OFFSET ?`+strconv.Itoa(n+2), append(args, p.Limit, p.Offset)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Compose
	for rows.Next() {
		c, err := rowscan.Compose(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CountComposesSince implements store.Composes.
func (db *DB) CountComposesSince(ctx context.Context, org string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM composes WHERE org_id = ? AND created_at >= ?`, org, rowscan.Nano(since)).Scan(&n, &oldest)
	if err != nil || !oldest.Valid {
		return n, time.Time{}, err
	}
	return n, rowscan.Time(oldest.Int64), nil
}

// HideCompose implements store.Composes.
func (db *DB) HideCompose(ctx context.Context, org, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE composes SET hidden = 1 WHERE org_id = ? AND id = ? AND hidden = 0`, org, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE org_compose_counts SET visible = visible - 1 WHERE org_id = ?`, org)
		return err
	})
}

// ExpirableComposes implements store.Composes.
func (db *DB) ExpirableComposes(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id FROM composes c WHERE expired = 0 AND created_at < ?
		AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.compose_id = c.id AND j.state IN (?, ?))
		ORDER BY created_at, id LIMIT ?`, rowscan.Nano(before), store.JobPending, store.JobRunning, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// MarkExpired implements store.Composes.
func (db *DB) MarkExpired(ctx context.Context, ids []string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE composes SET expired = 1 WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
}
