package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// The reads and small writes of composes whose SQL the backends share;
// storing composes with their jobs stays per backend.

// GetCompose implements store.Composes.
func (s *Store) GetCompose(ctx context.Context, org, id string) (store.Compose, error) {
	row := s.R.QueryRowContext(ctx, s.q(`SELECT `+rowscan.ComposeColumns+` FROM composes WHERE org_id = $1 AND id = $2 AND hidden = `+s.D.False), org, id)
	c, err := rowscan.Compose(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Compose{}, store.ErrNotFound
	}
	return c, err
}

// ListComposes implements store.Composes. Without a filter the total is
// the org's kept count; with one, the matching composes are counted.
func (s *Store) ListComposes(ctx context.Context, org string, f store.ComposeFilter, p store.Page) ([]store.Compose, int, error) {
	where, args := `org_id = $1 AND hidden = `+s.D.False, []any{org}
	if f.ImageType != "" {
		args = append(args, f.ImageType)
		where += ` AND image_type = $` + strconv.Itoa(len(args))
	}
	for _, t := range f.IgnoreImageTypes {
		args = append(args, t)
		where += ` AND image_type <> $` + strconv.Itoa(len(args))
	}
	if f.BlueprintID != "" {
		args = append(args, f.BlueprintID)
		where += ` AND blueprint_id = $` + strconv.Itoa(len(args))
		if f.BlueprintVersion > 0 {
			args = append(args, f.BlueprintVersion)
			where += ` AND blueprint_version = $` + strconv.Itoa(len(args))
		}
	}
	if f.Status != "" {
		args = append(args, f.LastType, f.Status)
		where += ` AND ` + ComposeStatusSQL("$"+strconv.Itoa(len(args)-1)) + ` = $` + strconv.Itoa(len(args))
	}
	if f.Cancelled {
		// store.ComposeCancelled: a job was canceled and none failed.
		where += ` AND EXISTS (SELECT 1 FROM jobs j WHERE j.compose_id = composes.id AND j.state = ` + literal(store.JobCanceled) +
			`) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.compose_id = composes.id AND j.state = ` + literal(store.JobFailure) + `)`
	}
	var total int
	var err error
	if len(args) == 1 && !f.Cancelled {
		err = s.R.QueryRowContext(ctx, s.q(`SELECT visible FROM org_compose_counts WHERE org_id = $1`), org).Scan(&total)
	} else {
		err = s.R.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM composes WHERE `+where), args...).Scan(&total)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	out, err := s.pageOfComposes(ctx, where, args, p)
	return out, total, err
}

// pageOfComposes returns a page of the composes matching where (whose
// placeholders are $1..$len(args)), newest first.
func (s *Store) pageOfComposes(ctx context.Context, where string, args []any, p store.Page) ([]store.Compose, error) {
	n := len(args)
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT `+rowscan.ComposeColumns+` FROM composes WHERE `+where+`
		ORDER BY created_at DESC, id LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2)), append(args, p.Limit, p.Offset)...)
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
func (s *Store) CountComposesSince(ctx context.Context, org string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest *int64
	err := s.R.QueryRowContext(ctx, s.q(`SELECT COUNT(*), MIN(created_at) FROM composes WHERE org_id = $1 AND created_at >= $2`),
		org, rowscan.Nano(since)).Scan(&n, &oldest)
	if err != nil || oldest == nil {
		return n, time.Time{}, err
	}
	return n, rowscan.Time(*oldest), nil
}

// HideCompose implements store.Composes.
func (s *Store) HideCompose(ctx context.Context, org, id string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE composes SET hidden = `+s.D.True+` WHERE org_id = $1 AND id = $2 AND hidden = `+s.D.False), org, id)
		if err != nil {
			return err
		}
		if rowsAffected(res) == 0 {
			return store.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE org_compose_counts SET visible = visible - 1 WHERE org_id = $1`), org)
		return err
	})
}

// ExpirableComposes implements store.Composes.
func (s *Store) ExpirableComposes(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT id FROM composes c WHERE expired = `+s.D.False+` AND created_at < $1
		AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.compose_id = c.id AND j.state IN ($2, $3))
		ORDER BY created_at, id LIMIT $4`), rowscan.Nano(before), store.JobPending, store.JobRunning, limit)
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
func (s *Store) MarkExpired(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	marks := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		marks[i], args[i] = "$"+strconv.Itoa(i+1), id
	}
	_, err := s.W.ExecContext(ctx, s.q(`UPDATE composes SET expired = `+s.D.True+` WHERE id IN (`+strings.Join(marks, ", ")+`)`), args...)
	return err
}

// Counts implements store.Queue.
func (s *Store) Counts(ctx context.Context) ([]store.JobCount, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT type, arch, state, COUNT(*) FROM jobs GROUP BY type, arch, state ORDER BY type, arch, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.JobCount
	for rows.Next() {
		var c store.JobCount
		if err := rows.Scan(&c.Type, &c.Arch, &c.State, &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ComposeStatusCounts implements store.Queue.
func (s *Store) ComposeStatusCounts(ctx context.Context, lastType string) (map[string]int, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT status, COUNT(*) FROM (SELECT `+ComposeStatusSQL("$1")+` AS status
		FROM composes WHERE hidden = `+s.D.False+`) statuses GROUP BY status`), lastType)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
