package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// CreateBlueprint implements store.Blueprints.
func (db *DB) CreateBlueprint(ctx context.Context, b store.Blueprint) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO blueprints (id, org_id, name, description, version, updated_at) VALUES (?, ?, ?, ?, 1, ?)`,
			b.ID, b.OrgID, b.Name, b.Description, rowscan.Nano(b.UpdatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO blueprint_versions (blueprint_id, version, body, created_at) VALUES (?, 1, ?, ?)`,
			b.ID, string(b.Body), rowscan.Nano(b.UpdatedAt))
		return err
	})
	if isUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

// UpdateBlueprint implements store.Blueprints.
func (db *DB) UpdateBlueprint(ctx context.Context, b store.Blueprint) (int, error) {
	var version int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE blueprints SET version = version + 1, name = ?, description = ?, updated_at = ?
			WHERE org_id = ? AND id = ? AND deleted = 0 RETURNING version`,
			b.Name, b.Description, rowscan.Nano(b.UpdatedAt), b.OrgID, b.ID).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO blueprint_versions (blueprint_id, version, body, created_at) VALUES (?, ?, ?, ?)`,
			b.ID, version, string(b.Body), rowscan.Nano(b.UpdatedAt))
		return err
	})
	if isUniqueViolation(err) {
		return 0, store.ErrConflict
	}
	return version, err
}

// GetBlueprint implements store.Blueprints.
func (db *DB) GetBlueprint(ctx context.Context, org, id string, version int) (store.Blueprint, error) {
	var b store.Blueprint
	var updated int64
	var body string
	err := db.r.QueryRowContext(ctx, `SELECT b.id, b.org_id, b.name, b.description, v.version, v.created_at, v.body
		FROM blueprints b JOIN blueprint_versions v ON v.blueprint_id = b.id
		WHERE b.org_id = ? AND b.id = ? AND b.deleted = 0 AND v.version = CASE WHEN ? = 0 THEN b.version ELSE ? END`,
		org, id, version, version).Scan(&b.ID, &b.OrgID, &b.Name, &b.Description, &b.Version, &updated, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Blueprint{}, store.ErrNotFound
	}
	b.UpdatedAt, b.Body = rowscan.Time(updated), []byte(body)
	return b, err
}

// ListBlueprintVersions implements store.Blueprints.
func (db *DB) ListBlueprintVersions(ctx context.Context, org, id string) ([]store.Blueprint, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT b.id, b.org_id, b.name, b.description, v.version, v.created_at, v.body
		FROM blueprints b JOIN blueprint_versions v ON v.blueprint_id = b.id
		WHERE b.org_id = ? AND b.id = ? AND b.deleted = 0 ORDER BY v.version DESC`, org, id)
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
func (db *DB) ListBlueprints(ctx context.Context, org, name string, p store.Page) ([]store.Blueprint, int, error) {
	where := `org_id = ? AND deleted = 0`
	args := []any{org}
	if name != "" {
		where += ` AND name = ?`
		args = append(args, name)
	}
	var total int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM blueprints WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, org_id, name, description, version, updated_at FROM blueprints WHERE `+where+`
		ORDER BY updated_at DESC, id LIMIT ? OFFSET ?`, append(args, p.Limit, p.Offset)...)
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
func (db *DB) DeleteBlueprint(ctx context.Context, org, id string) error {
	res, err := db.w.ExecContext(ctx, `UPDATE blueprints SET deleted = 1 WHERE org_id = ? AND id = ? AND deleted = 0`, org, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListBlueprintComposes implements store.Blueprints.
func (db *DB) ListBlueprintComposes(ctx context.Context, org, id string, version int, p store.Page) ([]store.Compose, int, error) {
	where := `org_id = ?1 AND blueprint_id = ?2 AND hidden = 0`
	args := []any{org, id}
	if version > 0 {
		where += ` AND blueprint_version = ?3`
		args = append(args, version)
	}
	var total int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM composes WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := db.pageOfComposes(ctx, where, args, p)
	return out, total, err
}
