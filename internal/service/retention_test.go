package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

func TestRetention(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	defer db.Close()
	arts := artifacts.Local{Dir: t.TempDir()}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	compose := func(age time.Duration, size int, ended bool) string {
		c := store.Compose{ID: store.NewID(), OrgID: "acme", CreatedAt: now.Add(-age), Request: json.RawMessage(`{}`)}
		require.NoError(t, db.CreateCompose(ctx, c, []store.Job{{ID: store.NewID(), Type: "build"}}))
		if ended {
			require.NoError(t, db.CancelCompose(ctx, "acme", c.ID))
		}
		_, err := arts.Put(ctx, c.ID, "image.raw", strings.NewReader(strings.Repeat("x", size)))
		require.NoError(t, err)
		return c.ID
	}
	old := compose(20*24*time.Hour, 100, true)
	oldRunning := compose(20*24*time.Hour, 100, false)
	mid := compose(5*24*time.Hour, 300, true)
	fresh := compose(time.Hour, 300, true)
	log := slog.New(slog.DiscardHandler)

	n, total, err := cleanup(ctx, db, arts, Retention{MaxAge: 14 * 24 * time.Hour}, now, log)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the old compose that ended")
	assert.Equal(t, int64(700), total)
	_, err = arts.Open(ctx, old, "image.raw")
	assert.ErrorIs(t, err, artifacts.ErrNotFound)
	f, err := arts.Open(ctx, oldRunning, "image.raw")
	require.NoError(t, err, "a running compose keeps its files")
	f.Close()

	n, total, err = cleanup(ctx, db, arts, Retention{MaxAge: 14 * 24 * time.Hour, MaxBytes: 450}, now, log)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the oldest ended compose goes first")
	assert.Equal(t, int64(400), total)
	_, err = arts.Open(ctx, mid, "image.raw")
	assert.ErrorIs(t, err, artifacts.ErrNotFound)
	f, err = arts.Open(ctx, fresh, "image.raw")
	require.NoError(t, err)
	f.Close()
}
