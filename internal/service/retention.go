package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
)

// Retention bounds how long and how much the artifact store keeps. A
// compose whose files expired stays listed; its download answers that the
// image expired.
type Retention struct {
	// MaxAge removes the files of composes older than this. Default 14 days.
	MaxAge time.Duration
	// MaxBytes, when set, removes the oldest ended composes' files until
	// the store fits.
	MaxBytes int64
	// Every is how often the cleanup runs. Default 1h.
	Every time.Duration
}

func (r *Retention) withDefaults() {
	if r.MaxAge <= 0 {
		r.MaxAge = 14 * 24 * time.Hour
	}
	if r.Every <= 0 {
		r.Every = time.Hour
	}
}

// cleanup removes expired files and returns how many composes' files it
// removed and the bytes the store takes afterwards.
func cleanup(ctx context.Context, db store.Composes, arts artifacts.Store, r Retention, now time.Time, log *slog.Logger) (int, int64, error) {
	removed := 0
	expire := func(ids []string) error {
		for _, id := range ids {
			if err := arts.Delete(ctx, id); err != nil {
				return err
			}
		}
		removed += len(ids)
		return db.MarkExpired(ctx, ids)
	}
	for {
		ids, err := db.ExpirableComposes(ctx, now.Add(-r.MaxAge), 100)
		if err != nil {
			return removed, 0, err
		}
		if len(ids) == 0 {
			break
		}
		if err := expire(ids); err != nil {
			return removed, 0, err
		}
	}
	total, err := arts.Usage(ctx)
	if err != nil {
		return removed, 0, err
	}
	for r.MaxBytes > 0 && total > r.MaxBytes {
		ids, err := db.ExpirableComposes(ctx, now, 20)
		if err != nil {
			return removed, total, err
		}
		if len(ids) == 0 {
			log.Warn("the artifact store is over its size bound, but every compose left is still running", "bytes", total, "max_bytes", r.MaxBytes)
			break
		}
		for _, id := range ids {
			if total <= r.MaxBytes {
				break
			}
			size, err := arts.Size(ctx, id)
			if err != nil {
				return removed, total, err
			}
			if err := expire([]string{id}); err != nil {
				return removed, total, err
			}
			total -= size
		}
	}
	return removed, total, nil
}
