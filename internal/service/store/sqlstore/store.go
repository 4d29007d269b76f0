package sqlstore

import (
	"context"
	"database/sql"
	"regexp"
	"time"
)

// Dialect is what differs between the backends in the queries this
// package holds.
type Dialect struct {
	// Placeholder starts a numbered parameter: "$" (PostgreSQL's $1) or
	// "?" (SQLite's ?1). Queries here are written with $1 and rewritten.
	Placeholder string
	// False and True are the literals of the flag columns (deleted,
	// hidden): 0 and 1 where they are integers, false and true where
	// they are booleans.
	False, True string
	// IsUniqueViolation says whether err is a unique constraint's.
	IsUniqueViolation func(err error) bool
	// Retry says whether a transaction that ended with err (a deadlock
	// the database broke) runs again from the start; nil: never.
	Retry func(err error) bool
}

// Store implements the parts of store.Backend whose SQL the backends
// share: API tokens, worker tokens but their revocation (which ends
// leases, the queue's business), blueprints, the reads and small writes
// of composes, and the queue's counts. A backend embeds it.
type Store struct {
	// W takes the writes and R the reads; they may be one pool.
	W, R *sql.DB
	D    Dialect
	// Now is the clock.
	Now func() time.Time
}

var numbered = regexp.MustCompile(`\$([0-9]+)`)

// q is query in the dialect's placeholders.
func (s *Store) q(query string) string {
	if s.D.Placeholder == "$" {
		return query
	}
	return numbered.ReplaceAllString(query, s.D.Placeholder+"${1}")
}

// Tx runs fn in a write transaction, again when the dialect says the
// database aborted it to break a deadlock: fn must be safe to run again.
func (s *Store) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tx1(ctx, fn)
		if attempt < 5 && err != nil && s.D.Retry != nil && s.D.Retry(err) {
			continue
		}
		return err
	}
}

func (s *Store) tx1(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// rowsAffected is how many rows res changed: 0 when the driver cannot say.
func rowsAffected(res sql.Result) int64 {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return n
}
