package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

// The database holds token hashes and every tenant's requests: its file
// and its WAL and shared-memory files are the service user's alone, also
// when the process's umask would allow more, and a database made looser
// earlier is tightened when opened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "kiln.db")
	check := func() {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			require.NoError(t, err)
			require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), p)
		}
	}
	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: "t1", OrgID: "a", Name: "ci", Hash: "h", CreatedAt: time.Now()}))
	_, err = db.TokenByHash(ctx, "h")
	require.NoError(t, err)
	check()
	require.NoError(t, db.Close())

	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			require.NoError(t, os.Chmod(p, 0o644))
		}
	}
	db, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close()
	_, err = db.TokenByHash(ctx, "h")
	require.NoError(t, err)
	check()
}
