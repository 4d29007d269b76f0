package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// createComposesSQL stores an org's composes ($2..$8, one array element
// each), counts them in the org, stores their jobs ($10..$15, and $20 their
// trace contexts, in order, so that seq follows it) and dependencies and, when there are jobs, sends
// the NOTIFY that wakes the workers of every replica at commit: however
// many composes and jobs, one statement, one round trip. The foreign keys
// are checked at the end of the statement, when every row is in.
const createComposesSQL = `WITH c AS (
		INSERT INTO composes (id, org_id, created_at, image_name, request, blueprint_id, blueprint_version, image_type)
		SELECT u.id, $1, u.created, u.name, u.request, u.bp, u.bpv, u.type
		FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[])
			AS u (id, created, name, request, bp, bpv, type)
	), counted AS (
		INSERT INTO org_compose_counts (org_id, visible) VALUES ($1, cardinality($2::text[]))
		ON CONFLICT (org_id) DO UPDATE SET visible = org_compose_counts.visible + excluded.visible
	), j AS (
		INSERT INTO jobs (id, compose_id, org_id, type, arch, args, max_attempts, state, queued_at, traceparent)
		SELECT u.id, u.compose, $1, u.type, u.arch, u.args, u.max, 'pending', $9, u.tp
		FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int[], $20::text[]) WITH ORDINALITY
			AS u (id, compose, type, arch, args, max, tp, n)
		ORDER BY u.n
	), d AS (
		INSERT INTO job_deps (job_id, dep_id) SELECT * FROM unnest($16::text[], $17::text[])
	)
	SELECT pg_notify($18, $19) WHERE cardinality($10::text[]) > 0`

// CreateCompose implements store.Composes.
func (db *DB) CreateCompose(ctx context.Context, c store.Compose, jobs []store.Job) error {
	return db.CreateComposes(ctx, c.OrgID, []store.NewCompose{{Compose: c, Jobs: jobs}}, store.Quota{})
}

// CreateComposes implements store.Composes: every compose and job in one
// statement. Under a quota, a transaction-scoped advisory lock on the org
// serializes the calls for one org (across replicas): the count and the
// inserts cannot interleave with another's. Without one there is nothing
// to count, and the statement runs alone, in one round trip.
func (db *DB) CreateComposes(ctx context.Context, org string, cs []store.NewCompose, q store.Quota) error {
	for _, nc := range cs {
		if nc.Compose.OrgID != org {
			return fmt.Errorf("compose %s belongs to org %q, not %q", nc.Compose.ID, nc.Compose.OrgID, org)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	var jobs int
	var err error
	if q.Limit <= 0 {
		jobs, err = db.createComposes(ctx, db.pool, org, cs)
	} else {
		err = db.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('kiln compose quota ' || $1, 0))`, org); err != nil {
				return err
			}
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
			var err error
			jobs, err = db.createComposes(ctx, tx, org, cs)
			return err
		})
	}
	if err == nil && jobs > 0 {
		db.wake()
	}
	return err
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// createComposes stores an org's composes and their jobs in one
// statement and returns how many jobs it stored.
func (db *DB) createComposes(ctx context.Context, x execer, org string, cs []store.NewCompose) (int, error) {
	nc := len(cs)
	cIDs, created, names, requests, bpIDs, bpVersions, imageTypes :=
		make([]string, nc), make([]int64, nc), make([]string, nc), make([]string, nc), make([]*string, nc), make([]*int32, nc), make([]string, nc)
	var ids, composeIDs, types, arches, args, traceparents []string
	var maxes []int32
	deps, depOf := []string{}, []string{}
	for i, n := range cs {
		c := n.Compose
		cIDs[i], created[i], names[i], requests[i], imageTypes[i] = c.ID, rowscan.Nano(c.CreatedAt), c.ImageName, string(c.Request), c.ImageType
		if c.BlueprintID != "" {
			v := int32(c.BlueprintVersion)
			bpIDs[i], bpVersions[i] = &c.BlueprintID, &v
		}
		for _, j := range n.Jobs {
			a := string(j.Args)
			if a == "" {
				a = "null"
			}
			ids, composeIDs, types, arches, args = append(ids, j.ID), append(composeIDs, c.ID), append(types, j.Type), append(arches, j.Arch), append(args, a)
			maxes = append(maxes, int32(store.AttemptsAllowed(j)))
			traceparents = append(traceparents, j.TraceParent)
			for _, d := range j.Deps {
				depOf, deps = append(depOf, j.ID), append(deps, d)
			}
		}
	}
	if _, err := x.Exec(ctx, createComposesSQL, org, cIDs, created, names, requests, bpIDs, bpVersions, imageTypes,
		rowscan.Nano(db.now()), ids, composeIDs, types, arches, args, maxes, depOf, deps, channel, db.id, traceparents); err != nil {
		return 0, err
	}
	return len(ids), nil
}
