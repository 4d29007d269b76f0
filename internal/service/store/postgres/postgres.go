// Package postgres is the store backend for a PostgreSQL database that
// several kiln serve replicas may share. Jobs are handed out with
// SELECT ... FOR UPDATE SKIP LOCKED, so any number of replicas dequeue from
// one table without handing a job out twice; every transaction that makes
// a job ready sends a NOTIFY, and each replica LISTENs on a dedicated
// connection to wake its long-polling workers, with a slow fallback poll
// for notifications lost while that connection was down.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// channel is the LISTEN/NOTIFY channel on which a transaction that made a
// job ready says so. The payload is the sending replica's id: a replica
// has already woken its own workers and ignores its own notifications.
const channel = "kiln_jobs"

// migrationLock is the advisory lock key (per database) under which Open
// applies migrations, so replicas starting together migrate one at a time.
const migrationLock = int64(0x6b696c6e) // "kiln"

// dialect is PostgreSQL's for sqlstore: $1 placeholders, boolean flags,
// transactions run again when aborted to break a deadlock.
var dialect = sqlstore.Dialect{
	Placeholder:       "$",
	False:             "false",
	True:              "true",
	IsUniqueViolation: isUniqueViolation,
	Retry:             isDeadlock,
}

// Options configure a database.
type Options struct {
	// Now is the clock (tests move it). Default: time.Now.
	Now func() time.Time
	// FallbackPoll wakes waiting workers when no notification has come for
	// this long, in case one was lost (the listening connection dropped).
	// Default: 2 s.
	FallbackPoll time.Duration
	// MaxConns sizes the connection pool unless the DSN sets
	// pool_max_conns. Default: 16.
	MaxConns int32
	// Logger gets the listening connection's losses and reconnections.
	// Default: slog.Default().
	Logger *slog.Logger
}

// DB is a PostgreSQL store backend. Tokens and blueprints are
// sqlstore's, in PostgreSQL's dialect, over the same pool.
type DB struct {
	*sqlstore.Store
	pool *pgxpool.Pool
	sql  *sql.DB // the pool as database/sql, for sqlstore
	now  func() time.Time
	id   string // this replica's notification payload
	log  *slog.Logger
	poll time.Duration

	mu    sync.Mutex
	ready chan struct{}
	gen   uint64 // wakes so far
	gates map[string]*gate

	stop context.CancelFunc
	done sync.WaitGroup
}

var _ store.Backend = (*DB)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string), applies the migrations it lacks and starts
// listening for ready jobs.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FallbackPoll <= 0 {
		opts.FallbackPoll = 2 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, parseError(dsn, err)
	}
	if !hasParam(dsn, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	db := &DB{pool: pool, now: opts.Now, id: store.NewID(), log: opts.Logger, poll: opts.FallbackPoll,
		ready: make(chan struct{}), gates: map[string]*gate{}}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.sql = stdlib.OpenDBFromPool(pool)
	db.Store = &sqlstore.Store{W: db.sql, R: db.sql, D: dialect, Now: opts.Now}
	// Listen before Open returns: a worker that waits right after Open
	// must hear of a job another replica enqueues next.
	lconn, err := db.connectListener(ctx)
	if err != nil {
		db.sql.Close()
		pool.Close()
		return nil, err
	}
	bg, stop := context.WithCancel(context.Background())
	db.stop = stop
	db.done.Add(2)
	go db.listen(bg, lconn)
	go db.fallback(bg)
	return db, nil
}

// parseError says that the DSN does not parse without quoting it, nor
// the parser's own error, which may quote it: it may hold a password.
func parseError(dsn string, _ error) error {
	return fmt.Errorf("the PostgreSQL connection string %s is not valid: want postgres://user:password@host:port/database?options or key=value pairs", Redact(dsn))
}

func hasParam(dsn, name string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Query().Has(name)
	}
	return regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(name) + `\s*=`).MatchString(dsn)
}

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// Redact returns the DSN with any password replaced, for logs and errors.
func Redact(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok {
		u, err := url.Parse(dsn)
		if err != nil {
			return scheme + "://(a connection string that does not parse)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

func (db *DB) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	// One replica migrates at a time: the others wait here (a blocking
	// advisory lock, no polling) and then find nothing left to apply.
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("locking the database for migrations: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock) //nolint:errcheck // the lock also ends with the session
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("store migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating the database: %w", err)
	}
	return nil
}

// Close stops listening and closes the pool.
func (db *DB) Close() error {
	db.stop()
	db.done.Wait()
	db.sql.Close()
	db.pool.Close()
	return nil
}

// Wait implements store.Queue.
func (db *DB) Wait() <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.ready
}

// wake tells this replica's waiting workers that a job may be ready.
func (db *DB) wake() {
	db.mu.Lock()
	close(db.ready)
	db.ready = make(chan struct{})
	db.gen++
	db.mu.Unlock()
}

func (db *DB) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cfg := db.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL to listen for jobs: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listening for jobs: %w", err)
	}
	return conn, nil
}

// listen wakes the waiting workers on every other replica's notification,
// and reconnects with backoff when the connection drops.
func (db *DB) listen(ctx context.Context, conn *pgx.Conn) {
	defer db.done.Done()
	backoff := 100 * time.Millisecond
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				if ctx.Err() != nil {
					return
				}
				db.log.Warn("store: lost the connection that listens for jobs; reconnecting", "err", err)
				break
			}
			backoff = 100 * time.Millisecond
			if n.Payload != db.id {
				db.wake()
			}
		}
		// Jitter keeps replicas that lost the server together from
		// reconnecting together.
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		backoff = min(2*backoff, 30*time.Second)
		c, err := db.connectListener(ctx)
		if err != nil {
			if ctx.Err() == nil {
				db.log.Warn("store: cannot listen for jobs yet", "err", err, "retry_in", backoff)
			}
			continue
		}
		conn = c
		db.log.Info("store: listening for jobs again")
		// Notifications sent while no one listened are lost: look.
		db.wake()
	}
}

// fallback wakes the waiting workers when nothing else has for a while:
// a safety net for lost notifications, quiet while notifications flow.
func (db *DB) fallback(ctx context.Context) {
	defer db.done.Done()
	t := time.NewTimer(db.poll)
	defer t.Stop()
	for {
		ch := db.Wait()
		jitter := rand.N(db.poll/10 + 1)
		t.Reset(db.poll - jitter)
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
			db.wake()
		}
	}
}

// tx runs fn in a transaction, again (from the start) when PostgreSQL
// broke a deadlock by aborting it: fn must be safe to run again.
func (db *DB) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, db.pool, fn)
		if attempt < 5 && isDeadlock(err) {
			continue
		}
		return err
	}
}

// isDeadlock says whether PostgreSQL aborted a transaction to break a
// deadlock or a serialization failure: it may run again.
func isDeadlock(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// notify queues the wake-up that the transaction sends when it commits.
func (db *DB) notify(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, db.id)
	return err
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
