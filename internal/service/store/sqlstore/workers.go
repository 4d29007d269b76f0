package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// SeeWorker implements store.Workers: one upsert, which keeps the later
// of two times when replicas record the same worker out of order.
func (s *Store) SeeWorker(ctx context.Context, w store.SeenWorker) error {
	_, err := s.W.ExecContext(ctx, s.q(`INSERT INTO workers (name, arches, last_seen) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET arches = excluded.arches, last_seen = excluded.last_seen
		WHERE workers.last_seen <= excluded.last_seen`),
		w.Name, strings.Join(w.Arches, ","), rowscan.Nano(w.LastSeen))
	return err
}

// TouchWorker implements store.Workers.
func (s *Store) TouchWorker(ctx context.Context, name string, at time.Time) error {
	_, err := s.W.ExecContext(ctx, s.q(`UPDATE workers SET last_seen = $1 WHERE name = $2 AND last_seen < $1`), rowscan.Nano(at), name)
	return err
}

// ConnectedWorkers implements store.Workers.
func (s *Store) ConnectedWorkers(ctx context.Context, since time.Time) ([]store.SeenWorker, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT name, arches, last_seen FROM workers WHERE last_seen >= $1 ORDER BY name`), rowscan.Nano(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SeenWorker
	for rows.Next() {
		var (
			w      store.SeenWorker
			arches string
			seen   int64
		)
		if err := rows.Scan(&w.Name, &arches, &seen); err != nil {
			return nil, err
		}
		if arches != "" {
			w.Arches = strings.Split(arches, ",")
		}
		w.LastSeen = rowscan.Time(seen)
		out = append(out, w)
	}
	return out, rows.Err()
}
