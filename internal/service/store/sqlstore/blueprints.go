package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// CreateBlueprint implements store.Blueprints.
func (s *Store) CreateBlueprint(ctx context.Context, b store.Blueprint) error {
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO blueprints (id, org_id, name, description, version, updated_at) VALUES ($1, $2, $3, $4, 1, $5)`),
			b.ID, b.OrgID, b.Name, b.Description, rowscan.Nano(b.UpdatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO blueprint_versions (blueprint_id, version, body, created_at) VALUES ($1, 1, $2, $3)`),
			b.ID, string(b.Body), rowscan.Nano(b.UpdatedAt))
		return err
	})
	if s.D.IsUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

// UpdateBlueprint implements store.Blueprints.
func (s *Store) UpdateBlueprint(ctx context.Context, b store.Blueprint) (int, error) {
	var version int
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`UPDATE blueprints SET version = version + 1, name = $1, description = $2, updated_at = $3
			WHERE org_id = $4 AND id = $5 AND deleted = `+s.D.False+` RETURNING version`),
			b.Name, b.Description, rowscan.Nano(b.UpdatedAt), b.OrgID, b.ID).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO blueprint_versions (blueprint_id, version, body, created_at) VALUES ($1, $2, $3, $4)`),
			b.ID, version, string(b.Body), rowscan.Nano(b.UpdatedAt))
		return err
	})
	if s.D.IsUniqueViolation(err) {
		return 0, store.ErrConflict
	}
	return version, err
}

// GetBlueprint implements store.Blueprints.
func (s *Store) GetBlueprint(ctx context.Context, org, id string, version int) (store.Blueprint, error) {
	var b store.Blueprint
	var updated int64
	var body string
	err := s.R.QueryRowContext(ctx, s.q(`SELECT b.id, b.org_id, b.name, b.description, v.version, v.created_at, v.body
		FROM blueprints b JOIN blueprint_versions v ON v.blueprint_id = b.id
		WHERE b.org_id = $1 AND b.id = $2 AND b.deleted = `+s.D.False+`
		AND v.version = CASE WHEN CAST($3 AS INTEGER) = 0 THEN b.version ELSE CAST($3 AS INTEGER) END`),
		org, id, version).Scan(&b.ID, &b.OrgID, &b.Name, &b.Description, &b.Version, &updated, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Blueprint{}, store.ErrNotFound
	}
	b.UpdatedAt, b.Body = rowscan.Time(updated), []byte(body)
	return b, err
}

// ListBlueprintVersions implements store.Blueprints.
func (s *Store) ListBlueprintVersions(ctx context.Context, org, id string) ([]store.Blueprint, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT b.id, b.org_id, b.name, b.description, v.version, v.created_at, v.body
		FROM blueprints b JOIN blueprint_versions v ON v.blueprint_id = b.id
		WHERE b.org_id = $1 AND b.id = $2 AND b.deleted = `+s.D.False+` ORDER BY v.version DESC`), org, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Blueprint
	for rows.Next() {
		var b store.Blueprint
		var created int64
		var body string
		if err := rows.Scan(&b.ID, &b.OrgID, &b.Name, &b.Description, &b.Version, &created, &body); err != nil {
			return nil, err
		}
		b.UpdatedAt, b.Body = rowscan.Time(created), []byte(body)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, store.ErrNotFound
	}
	return out, nil
}

// ListBlueprints implements store.Blueprints.
func (s *Store) ListBlueprints(ctx context.Context, org, name string, p store.Page) ([]store.Blueprint, int, error) {
	where := `org_id = $1 AND deleted = ` + s.D.False
	args := []any{org}
	if name != "" {
		where += ` AND name = $2`
		args = append(args, name)
	}
	var total int
	if err := s.R.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM blueprints WHERE `+where), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	n := len(args)
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT id, org_id, name, description, version, updated_at FROM blueprints WHERE `+where+`
		ORDER BY updated_at DESC, id LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2)), append(args, p.Limit, p.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []store.Blueprint
	for rows.Next() {
		var b store.Blueprint
		var updated int64
		if err := rows.Scan(&b.ID, &b.OrgID, &b.Name, &b.Description, &b.Version, &updated); err != nil {
			return nil, 0, err
		}
		b.UpdatedAt = rowscan.Time(updated)
		out = append(out, b)
	}
	return out, total, rows.Err()
}

// DeleteBlueprint implements store.Blueprints.
func (s *Store) DeleteBlueprint(ctx context.Context, org, id string) error {
	res, err := s.W.ExecContext(ctx, s.q(`UPDATE blueprints SET deleted = `+s.D.True+` WHERE org_id = $1 AND id = $2 AND deleted = `+s.D.False),
		org, id)
	if err != nil {
		return err
	}
	if rowsAffected(res) == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListBlueprintComposes implements store.Blueprints.
func (s *Store) ListBlueprintComposes(ctx context.Context, org, id string, version int, p store.Page) ([]store.Compose, int, error) {
	where := `org_id = $1 AND blueprint_id = $2 AND hidden = ` + s.D.False
	args := []any{org, id}
	if version > 0 {
		where += ` AND blueprint_version = $3`
		args = append(args, version)
	}
	var total int
	if err := s.R.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM composes WHERE `+where), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := s.pageOfComposes(ctx, where, args, p)
	return out, total, err
}
