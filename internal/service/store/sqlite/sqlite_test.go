package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Backend {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "kiln.db"), Options{Now: now})
		require.NoError(t, err)
		return db
	})
}

// Reopening a database keeps its rows and applies no migration twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kiln.db")
	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: "t1", OrgID: "a", Name: "ci", Hash: "h", CreatedAt: time.Now()}))
	require.NoError(t, db.Close())
	db, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close()
	tok, err := db.TokenByHash(ctx, "h")
	require.NoError(t, err)
	require.Equal(t, "t1", tok.ID)
}
