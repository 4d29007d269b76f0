package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// createComposeSQL stores a compose, counts it in its org, stores its
// jobs (in order, so that seq follows it) and dependencies and, when there
// are jobs, sends the NOTIFY that wakes the workers of every replica at
// commit: one statement, one round trip. The foreign keys are checked at
// the end of the statement, when every row is in.
const createComposeSQL = `WITH c AS (
		INSERT INTO composes (id, org_id, created_at, image_name, request, blueprint_id, blueprint_version, image_type)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $18)
	), counted AS (
		INSERT INTO org_compose_counts (org_id, visible) VALUES ($2, 1)
		ON CONFLICT (org_id) DO UPDATE SET visible = org_compose_counts.visible + 1
	), j AS (
		INSERT INTO jobs (id, compose_id, org_id, type, arch, args, max_attempts, state, queued_at)
		SELECT u.id, $1, $2, u.type, u.arch, u.args, u.max, 'pending', $8
		FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::int[]) WITH ORDINALITY AS u (id, type, arch, args, max, n)
		ORDER BY u.n
	), d AS (
		INSERT INTO job_deps (job_id, dep_id) SELECT * FROM unnest($14::text[], $15::text[])
	)
	SELECT pg_notify($16, $17) WHERE cardinality($9::text[]) > 0`

// CreateCompose implements store.Composes.
func (db *DB) CreateCompose(ctx context.Context, c store.Compose, jobs []store.Job) error {
	n, err := db.createCompose(ctx, db.pool, c, jobs)
	if err != nil {
		return err
	}
	if n > 0 {
		db.wake()
	}
	return nil
}

// CreateComposes implements store.Composes. A transaction-scoped advisory
// lock on the org serializes the calls for one org (across replicas):
// the count and the inserts cannot interleave with another's.
func (db *DB) CreateComposes(ctx context.Context, org string, cs []store.NewCompose, q store.Quota) error {
	jobs := 0
	err := db.tx(ctx, func(tx pgx.Tx) error {
		jobs = 0
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('kiln compose quota ' || $1, 0))`, org); err != nil {
			return err
		}
		if q.Limit > 0 {
			var n int
			var oldest *int64
			if err := tx.QueryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM composes WHERE org_id = $1 AND created_at >= $2`,
				org, rowscan.Nano(q.Since)).Scan(&n, &oldest); err != nil {
				return err
			}
			if n+len(cs) > q.Limit {
				qe := &store.QuotaError{Used: n}
				if oldest != nil {
					qe.Oldest = rowscan.Time(*oldest)
				}
				return qe
			}
		}
		for _, nc := range cs {
			if nc.Compose.OrgID != org {
				return fmt.Errorf("compose %s belongs to org %q, not %q", nc.Compose.ID, nc.Compose.OrgID, org)
			}
			n, err := db.createCompose(ctx, tx, nc.Compose, nc.Jobs)
			if err != nil {
				return err
			}
			jobs += n
		}
		return nil
	})
	if err == nil && jobs > 0 {
		db.wake()
	}
	return err
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// createCompose stores a compose and its jobs in one statement and
// returns how many jobs it stored.
func (db *DB) createCompose(ctx context.Context, x execer, c store.Compose, jobs []store.Job) (int, error) {
	var bpID *string
	var bpVersion *int
	if c.BlueprintID != "" {
		bpID, bpVersion = &c.BlueprintID, &c.BlueprintVersion
	}
	n := len(jobs)
	ids, types, arches, args, maxes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int32, n)
	deps, depOf := []string{}, []string{}
	for i, j := range jobs {
		ids[i], types[i], arches[i], args[i], maxes[i] = j.ID, j.Type, j.Arch, string(j.Args), int32(store.AttemptsAllowed(j))
		if args[i] == "" {
			args[i] = "null"
		}
		for _, d := range j.Deps {
			depOf, deps = append(depOf, j.ID), append(deps, d)
		}
	}
	if _, err := x.Exec(ctx, createComposeSQL, c.ID, c.OrgID, rowscan.Nano(c.CreatedAt), c.ImageName, string(c.Request), bpID, bpVersion,
		rowscan.Nano(db.now()), ids, types, arches, args, maxes, depOf, deps, channel, db.id, c.ImageType); err != nil {
		return 0, err
	}
	return n, nil
}
