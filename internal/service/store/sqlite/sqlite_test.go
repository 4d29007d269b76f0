package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
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

// Composes stored before image types were recorded get theirs from their
// depsolve job's arguments.
func TestMigrationFillsImageTypes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kiln.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	dir, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, dir, goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 5)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO composes (id, org_id, created_at, image_name, request) VALUES ('c1', 'a', 1, 'img', '{}'), ('c2', 'a', 2, 'img', '{}')`)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO jobs (id, seq, compose_id, org_id, type, arch, args, max_attempts, state, queued_at) VALUES
		('j1', 1, 'c1', 'a', 'depsolve', '', '{"distro":"debian-12","image_type":"qcow2"}', 3, 'success', 1),
		('j2', 2, 'c1', 'a', 'build', 'x86_64', '{}', 3, 'pending', 1)`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close()
	c, err := db.GetCompose(ctx, "a", "c1")
	require.NoError(t, err)
	require.Equal(t, "qcow2", c.ImageType)
	c, err = db.GetCompose(ctx, "a", "c2")
	require.NoError(t, err)
	require.Equal(t, "", c.ImageType, "a compose without jobs has no type")
}
