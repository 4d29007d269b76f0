package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/rowscan"
)

// CreateIncident implements store.Incidents.
func (s *Store) CreateIncident(ctx context.Context, inc store.Incident, first store.IncidentUpdate) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO incidents (id, title, impact, components, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`),
			inc.ID, inc.Title, inc.Impact, strings.Join(inc.Components, ","), first.Status, rowscan.Nano(inc.CreatedAt), rowscan.Nano(first.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO incident_updates (id, incident_id, status, body, created_at) VALUES ($1, $2, $3, $4, $5)`),
			first.ID, inc.ID, first.Status, first.Body, rowscan.Nano(first.CreatedAt))
		return err
	})
}

// AddIncidentUpdate implements store.Incidents.
func (s *Store) AddIncidentUpdate(ctx context.Context, u store.IncidentUpdate) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var resolved *int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT resolved_at FROM incidents WHERE id = $1`), u.IncidentID).Scan(&resolved)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if resolved != nil {
			return store.ErrIncidentResolved
		}
		var resolvedAt *int64
		if u.Status == store.IncidentResolved {
			n := rowscan.Nano(u.CreatedAt)
			resolvedAt = &n
		}
		// The check above takes no lock: of two updates racing on an
		// open incident (PostgreSQL runs them side by side), the one
		// that finds it resolved by the other here is refused.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE incidents SET status = $1, updated_at = $2, resolved_at = $3 WHERE id = $4 AND resolved_at IS NULL`),
			u.Status, rowscan.Nano(u.CreatedAt), resolvedAt, u.IncidentID)
		if err != nil {
			return err
		}
		if rowsAffected(res) == 0 {
			return store.ErrIncidentResolved
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO incident_updates (id, incident_id, status, body, created_at) VALUES ($1, $2, $3, $4, $5)`),
			u.ID, u.IncidentID, u.Status, u.Body, rowscan.Nano(u.CreatedAt))
		return err
	})
}

const incidentColumns = `id, title, impact, components, status, created_at, updated_at, resolved_at`

func scanIncident(r rowscan.Scanner) (store.Incident, error) {
	var (
		inc              store.Incident
		components       string
		created, updated int64
		resolved         *int64
	)
	if err := r.Scan(&inc.ID, &inc.Title, &inc.Impact, &components, &inc.Status, &created, &updated, &resolved); err != nil {
		return inc, err
	}
	if components != "" {
		inc.Components = strings.Split(components, ",")
	}
	inc.CreatedAt, inc.UpdatedAt, inc.ResolvedAt = rowscan.Time(created), rowscan.Time(updated), rowscan.NullTime(resolved)
	return inc, nil
}

// GetIncident implements store.Incidents.
func (s *Store) GetIncident(ctx context.Context, id string) (store.Incident, error) {
	inc, err := scanIncident(s.R.QueryRowContext(ctx, s.q(`SELECT `+incidentColumns+` FROM incidents WHERE id = $1`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return inc, store.ErrNotFound
	}
	if err != nil {
		return inc, err
	}
	ups, err := s.incidentUpdates(ctx, []string{id})
	inc.Updates = ups[id]
	return inc, err
}

// ListIncidents implements store.Incidents.
func (s *Store) ListIncidents(ctx context.Context, since time.Time) ([]store.Incident, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT `+incidentColumns+` FROM incidents
		WHERE resolved_at IS NULL OR resolved_at >= $1 ORDER BY created_at DESC, id`), rowscan.Nano(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out []store.Incident
		ids []string
	)
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
		ids = append(ids, inc.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	ups, err := s.incidentUpdates(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Updates = ups[out[i].ID]
	}
	return out, nil
}

// incidentUpdates returns the updates of the incidents ids, oldest first.
func (s *Store) incidentUpdates(ctx context.Context, ids []string) (map[string][]store.IncidentUpdate, error) {
	out := map[string][]store.IncidentUpdate{}
	if len(ids) == 0 {
		return out, nil
	}
	var ph []string
	args := make([]any, len(ids))
	for i, id := range ids {
		ph = append(ph, "$"+strconv.Itoa(i+1))
		args[i] = id
	}
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT id, incident_id, status, body, created_at FROM incident_updates
		WHERE incident_id IN (`+strings.Join(ph, ", ")+`) ORDER BY created_at, id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			u  store.IncidentUpdate
			at int64
		)
		if err := rows.Scan(&u.ID, &u.IncidentID, &u.Status, &u.Body, &at); err != nil {
			return nil, err
		}
		u.CreatedAt = rowscan.Time(at)
		out[u.IncidentID] = append(out[u.IncidentID], u)
	}
	return out, rows.Err()
}

// RecordUptime implements store.Uptime: one upsert per component and day,
// which adds to what other replicas counted.
func (s *Store) RecordUptime(ctx context.Context, samples []store.UptimeSample) error {
	type key struct {
		component string
		day       int64
	}
	counts := map[key][2]int64{}
	var order []key
	for _, smp := range samples {
		k := key{smp.Component, rowscan.Nano(store.Day(smp.At))}
		c, seen := counts[k]
		if !seen {
			order = append(order, k)
		}
		if smp.OK {
			c[0]++
		}
		c[1]++
		counts[k] = c
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		for _, k := range order {
			c := counts[k]
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO uptime_days (component, day, ok, total) VALUES ($1, $2, $3, $4)
				ON CONFLICT (component, day) DO UPDATE SET ok = uptime_days.ok + excluded.ok, total = uptime_days.total + excluded.total`),
				k.component, k.day, c[0], c[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// UptimeDays implements store.Uptime.
func (s *Store) UptimeDays(ctx context.Context, since time.Time) ([]store.UptimeDay, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT component, day, ok, total FROM uptime_days WHERE day >= $1 ORDER BY component, day`),
		rowscan.Nano(store.Day(since)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.UptimeDay
	for rows.Next() {
		var (
			d   store.UptimeDay
			day int64
		)
		if err := rows.Scan(&d.Component, &day, &d.OK, &d.Total); err != nil {
			return nil, err
		}
		d.Day = rowscan.Time(day)
		out = append(out, d)
	}
	return out, rows.Err()
}

// PruneUptime implements store.Uptime.
func (s *Store) PruneUptime(ctx context.Context, before time.Time) (int, error) {
	res, err := s.W.ExecContext(ctx, s.q(`DELETE FROM uptime_days WHERE day < $1`), rowscan.Nano(before))
	if err != nil {
		return 0, err
	}
	return int(rowsAffected(res)), nil
}

// uploadJob is the type of the jobs that deliver an image to its target
// (workerproto.KindUpload).
const uploadJob = "upload"

// UploadOutcomes implements store.Uploads. The upload type is read from
// each job's arguments in Go, the same way in both backends; the
// jobs_finished index (type, finished_at) bounds the rows read to the
// window's finished uploads.
func (s *Store) UploadOutcomes(ctx context.Context, since time.Time) ([]store.UploadOutcome, error) {
	rows, err := s.R.QueryContext(ctx, s.q(`SELECT args, state FROM jobs
		WHERE state IN ($1, $2) AND type = $3 AND queued_at >= $4 AND started_at IS NOT NULL AND finished_at >= $5`),
		store.JobSuccess, store.JobFailure, uploadJob, rowscan.Nano(since.Add(-24*time.Hour)), rowscan.Nano(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byType := map[string]*store.UploadOutcome{}
	for rows.Next() {
		var (
			args  []byte
			state string
		)
		if err := rows.Scan(&args, &state); err != nil {
			return nil, err
		}
		var a struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(args, &a) != nil || a.Type == "" {
			continue
		}
		o := byType[a.Type]
		if o == nil {
			o = &store.UploadOutcome{Type: a.Type}
			byType[a.Type] = o
		}
		if state == store.JobSuccess {
			o.Success++
		} else {
			o.Failure++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]store.UploadOutcome, 0, len(byType))
	for _, o := range byType {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b store.UploadOutcome) int { return strings.Compare(a.Type, b.Type) })
	return out, nil
}
