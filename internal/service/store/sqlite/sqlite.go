// Package sqlite is the embedded store backend: one SQLite database file
// in WAL mode, written through a single connection (SQLite has one writer
// at a time; queueing writes in the pool instead of retrying on "database
// is locked" keeps latency flat) and read through several.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// dialect is SQLite's for sqlstore: ?1 placeholders, flags as integers.
var dialect = sqlstore.Dialect{
	Placeholder:       "?",
	False:             "0",
	True:              "1",
	IsUniqueViolation: isUniqueViolation,
}

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Options configure a database.
type Options struct {
	// Now is the clock (tests move it). Default: time.Now.
	Now func() time.Time
}

// DB is a SQLite store backend. Tokens and blueprints are sqlstore's,
// in SQLite's dialect.
type DB struct {
	*sqlstore.Store
	w, r *sql.DB
	now  func() time.Time

	mu    sync.Mutex
	ready chan struct{}
}

var _ store.Backend = (*DB)(nil)

// Open opens (creating and migrating) the database at path.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := private(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	db := &DB{w: w, r: r, now: opts.Now, ready: make(chan struct{})}
	db.Store = &sqlstore.Store{W: w, R: r, D: dialect, Now: opts.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// private makes the database file (creating it, empty) and the WAL and
// shared-memory files that exist readable by this user only: it holds
// token hashes and every tenant's requests. SQLite gives the WAL and
// shared-memory files it creates the database file's mode.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("making the database private: %w", err)
		}
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.w, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("store migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating the database: %w", err)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	rerr := db.r.Close()
	if err := db.w.Close(); err != nil {
		return err
	}
	return rerr
}

// Wait implements store.Queue.
func (db *DB) Wait() <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.ready
}

// wake tells waiting workers that a job may be ready.
func (db *DB) wake() {
	db.mu.Lock()
	close(db.ready)
	db.ready = make(chan struct{})
	db.mu.Unlock()
}

// tx runs fn in a write transaction.
func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.Store.Tx(ctx, fn)
}
