package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// CreateToken implements store.Tokens.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	_, err := s.W.ExecContext(ctx, s.q(`INSERT INTO tokens (id, org_id, name, hash, created_at) VALUES ($1, $2, $3, $4, $5)`),
		t.ID, t.OrgID, t.Name, t.Hash, rowscan.Nano(t.CreatedAt))
	return err
}

// TokenByHash implements store.Tokens.
func (s *Store) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	row := s.R.QueryRowContext(ctx, s.q(`SELECT `+rowscan.TokenColumns+` FROM tokens WHERE hash = $1 AND revoked_at IS NULL`), hash)
	t, err := rowscan.Token(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, store.ErrNotFound
	}
	return t, err
}

// ListTokens implements store.Tokens.
func (s *Store) ListTokens(ctx context.Context, org string) ([]store.Token, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT `+rowscan.TokenColumns+` FROM tokens WHERE org_id = $1 ORDER BY created_at, id`), org)
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
func (s *Store) RevokeToken(ctx context.Context, org, id string) error {
	res, err := s.W.ExecContext(ctx, s.q(`UPDATE tokens SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL`),
		rowscan.Nano(s.Now()), org, id)
	if err != nil {
		return err
	}
	if rowsAffected(res) == 0 {
		return store.ErrNotFound
	}
	return nil
}

// CreateWorkerToken implements store.WorkerTokens.
func (s *Store) CreateWorkerToken(ctx context.Context, t store.WorkerToken) error {
	_, err := s.W.ExecContext(ctx, s.q(`INSERT INTO worker_tokens (id, name, hash, created_at) VALUES ($1, $2, $3, $4)`),
		t.ID, t.Name, t.Hash, rowscan.Nano(t.CreatedAt))
	return err
}

// WorkerTokenByHash implements store.WorkerTokens.
func (s *Store) WorkerTokenByHash(ctx context.Context, hash string) (store.WorkerToken, error) {
	row := s.R.QueryRowContext(ctx, s.q(`SELECT `+rowscan.WorkerTokenColumns+` FROM worker_tokens WHERE hash = $1 AND revoked_at IS NULL`), hash)
	t, err := rowscan.WorkerToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.WorkerToken{}, store.ErrNotFound
	}
	return t, err
}

// ListWorkerTokens implements store.WorkerTokens.
func (s *Store) ListWorkerTokens(ctx context.Context) ([]store.WorkerToken, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT `+rowscan.WorkerTokenColumns+` FROM worker_tokens ORDER BY created_at, id`)
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
