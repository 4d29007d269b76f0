package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/storetest"
	"github.com/kiln-project/kiln/internal/testhost"
)

func TestMain(m *testing.M) { testhost.MainWithPostgres(m) }

func open(t testing.TB, dsn string, opts Options) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, opts)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Backend {
		db, err := Open(context.Background(), testhost.StartPostgres(t), Options{Now: now})
		require.NoError(t, err)
		return db
	})
}

// Reopening a database keeps its rows and applies no migration twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dsn := testhost.StartPostgres(t)
	db, err := Open(ctx, dsn, Options{})
	require.NoError(t, err)
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: "t1", OrgID: "a", Name: "ci", Hash: "h", CreatedAt: time.Now()}))
	require.NoError(t, db.Close())
	db = open(t, dsn, Options{})
	tok, err := db.TokenByHash(ctx, "h")
	require.NoError(t, err)
	require.Equal(t, "t1", tok.ID)
}

// Replicas starting together on a new database migrate it once, in turn.
func TestConcurrentMigrations(t *testing.T) {
	dsn := testhost.StartPostgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(context.Background(), dsn, Options{})
			errs[i] = err
			if err == nil {
				db.Close()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "replica %d", i)
	}
}

// Several replicas on one database hand out every job exactly once, and a
// worker waiting on one replica wakes when another enqueues.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := testhost.StartPostgres(t)
	// The fallback poll is far longer than the wake-up the test asserts:
	// only a notification can wake the worker in time.
	opts := Options{FallbackPoll: time.Minute}
	replicas := []*DB{open(t, dsn, opts), open(t, dsn, opts), open(t, dsn, opts)}

	t.Run("wake across replicas", func(t *testing.T) {
		for i := range 5 {
			a, b := replicas[i%3], replicas[(i+1)%3]
			wait := a.Wait()
			start := time.Now()
			require.NoError(t, b.CreateCompose(ctx, compose("a"), []store.Job{{ID: store.NewID(), Type: "wake"}}))
			select {
			case <-wait:
				t.Logf("woken after %v", time.Since(start))
			case <-time.After(time.Second):
				t.Fatal("a worker waiting on one replica did not wake within 1 s of a job enqueued on another")
			}
			l, err := a.Dequeue(ctx, []string{"wake"}, nil, store.Worker{Name: "w"}, time.Minute)
			require.NoError(t, err)
			require.NoError(t, a.Finish(ctx, l.Job.ID, l.Token, nil, nil))
		}
	})

	t.Run("a finished dependency wakes other replicas", func(t *testing.T) {
		dep, next := store.NewID(), store.NewID()
		require.NoError(t, replicas[0].CreateCompose(ctx, compose("a"), []store.Job{
			{ID: dep, Type: "first"}, {ID: next, Type: "second", Deps: []string{dep}},
		}))
		l, err := replicas[0].Dequeue(ctx, []string{"first"}, nil, store.Worker{Name: "w"}, time.Minute)
		require.NoError(t, err)
		wait := replicas[2].Wait()
		require.NoError(t, replicas[1].Finish(ctx, l.Job.ID, l.Token, nil, nil))
		select {
		case <-wait:
		case <-time.After(time.Second):
			t.Fatal("finishing a dependency on one replica did not wake another")
		}
		l, err = replicas[2].Dequeue(ctx, []string{"second"}, nil, store.Worker{Name: "w"}, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, next, l.Job.ID)
		require.NoError(t, replicas[2].Finish(ctx, l.Job.ID, l.Token, nil, nil))
	})

	t.Run("no job handed out twice", func(t *testing.T) {
		const composes, workers = 200, 12
		var produced sync.WaitGroup
		produced.Add(1)
		go func() {
			defer produced.Done()
			for i := range composes {
				first := store.NewID()
				err := replicas[i%3].CreateCompose(ctx, compose(fmt.Sprintf("org%d", i%4)), []store.Job{
					{ID: first, Type: "many"}, {ID: store.NewID(), Type: "many", Deps: []string{first}},
				})
				if !assert.NoError(t, err) {
					return
				}
			}
		}()
		var mu sync.Mutex
		got := map[string]int{}
		done := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := replicas[w%3]
				for {
					wait := db.Wait()
					l, err := db.Dequeue(ctx, []string{"many"}, nil, store.Worker{Name: fmt.Sprintf("w%d", w)}, time.Minute)
					if err == store.ErrNoJob {
						select {
						case <-wait:
							continue
						case <-done:
							return
						}
					}
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					got[l.Job.ID]++
					mu.Unlock()
					assert.NoError(t, db.Finish(ctx, l.Job.ID, l.Token, json.RawMessage(`{}`), nil))
				}
			}()
		}
		produced.Wait()
		deadline := time.After(30 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == 2*composes {
				break
			}
			select {
			case <-deadline:
				t.Fatalf("%d of %d jobs handed out", n, 2*composes)
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(done)
		wg.Wait()
		for id, n := range got {
			assert.Equal(t, 1, n, "job %s handed out once", id)
		}
		total := 0
		for i := range 4 {
			_, n, err := replicas[0].ListComposes(ctx, fmt.Sprintf("org%d", i), store.ComposeFilter{}, store.Page{Limit: 1})
			require.NoError(t, err)
			total += n
		}
		assert.Equal(t, composes, total, "no compose count is lost to concurrent inserts")
	})

	t.Run("rescue on every replica at once", func(t *testing.T) {
		clock := &storetest.Clock{}
		clock.Advance(time.Duration(time.Now().UnixNano()))
		var dbs []*DB
		for range 3 {
			dbs = append(dbs, open(t, dsn, Options{Now: clock.Now, FallbackPoll: time.Minute}))
		}
		const n = 30
		for range n {
			require.NoError(t, dbs[0].CreateCompose(ctx, compose("a"), []store.Job{{ID: store.NewID(), Type: "dies", MaxAttempts: 2}}))
		}
		for range n {
			_, err := dbs[0].Dequeue(ctx, []string{"dies"}, nil, store.Worker{Name: "w"}, time.Second)
			require.NoError(t, err)
		}
		clock.Advance(time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		requeued := 0
		for _, db := range dbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, f, err := db.Rescue(ctx)
				assert.NoError(t, err)
				assert.Zero(t, f)
				mu.Lock()
				requeued += r
				mu.Unlock()
			}()
		}
		wg.Wait()
		assert.Equal(t, n, requeued, "each expired job is requeued once, by one replica")
		for range n {
			l, err := dbs[1].Dequeue(ctx, []string{"dies"}, nil, store.Worker{Name: "w2"}, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, 2, l.Job.Attempts)
		}
	})
}

func compose(org string) store.Compose {
	return store.Compose{ID: store.NewID(), OrgID: org, CreatedAt: time.Now(), ImageName: "img", Request: json.RawMessage(`{}`)}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://kiln:s3cret@db:5432/kiln?sslmode=disable": "postgres://kiln:xxxxx@db:5432/kiln?sslmode=disable",
		"postgresql://kiln@db/kiln":                           "postgresql://kiln@db/kiln",
		"postgres://db/kiln?user=kiln&password=s3cret":        "postgres://db/kiln?password=xxxxx&user=kiln",
		"host=db user=kiln password=s3cret dbname=kiln":       "host=db user=kiln password=xxxxx dbname=kiln",
		"host=db password='s3 cret' dbname=kiln":              "host=db password=xxxxx dbname=kiln",
		"postgres://kiln:s3cret@db:bad/kiln":                  "postgres://(a connection string that does not parse)",
	} {
		got := Redact(in)
		assert.Equal(t, want, got)
		assert.NotContains(t, got, "s3")
	}
	_, err := Open(context.Background(), "postgres://kiln:s3cret@db:bad/kiln", Options{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
}

// A replica whose listening connection is cut reconnects and hears the
// other replicas' jobs again.
func TestListenReconnects(t *testing.T) {
	ctx := context.Background()
	dsn := testhost.StartPostgres(t)
	opts := Options{FallbackPoll: time.Minute}
	a, b := open(t, dsn, opts), open(t, dsn, opts)
	wait := a.Wait()
	_, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`)
	require.NoError(t, err)
	select {
	case <-wait: // a wakes its workers once it listens again
	case <-time.After(5 * time.Second):
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n))
		return n == 2
	}, 10*time.Second, 20*time.Millisecond, "both replicas listen again")
	wait = a.Wait()
	require.NoError(t, b.CreateCompose(ctx, compose("a"), []store.Job{{ID: store.NewID(), Type: "again"}}))
	select {
	case <-wait:
	case <-time.After(time.Second):
		t.Fatal("a reconnected replica did not hear another replica's job")
	}
}

// Composes stored before image types were recorded get theirs from their
// depsolve job's arguments.
func TestMigrationFillsImageTypes(t *testing.T) {
	ctx := context.Background()
	dsn := testhost.StartPostgres(t)
	raw, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	dir, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectPostgres, raw, dir, goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 1)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO composes (id, org_id, created_at, image_name, request) VALUES ('c1', 'a', 1, 'img', '{}'), ('c2', 'a', 2, 'img', '{}')`)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO jobs (id, compose_id, org_id, type, arch, args, max_attempts, state, queued_at) VALUES
		('j1', 'c1', 'a', 'depsolve', '', '{"distro":"debian-12","image_type":"qcow2"}', 3, 'success', 1),
		('j2', 'c1', 'a', 'build', 'x86_64', 'null', 3, 'pending', 1)`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	db := open(t, dsn, Options{})
	c, err := db.GetCompose(ctx, "a", "c1")
	require.NoError(t, err)
	require.Equal(t, "qcow2", c.ImageType)
	c, err = db.GetCompose(ctx, "a", "c2")
	require.NoError(t, err)
	require.Equal(t, "", c.ImageType, "a compose without jobs has no type")
}
