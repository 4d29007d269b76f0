package backends

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/store/postgres"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
	"github.com/kiln-project/kiln/internal/testhost"
)

func TestMain(m *testing.M) { testhost.MainWithPostgres(m) }

func TestParse(t *testing.T) {
	for _, c := range []struct{ spec, kind, arg string }{
		{"", "sqlite", "/data/kiln.db"},
		{"sqlite:///var/lib/kiln/state.db", "sqlite", "/var/lib/kiln/state.db"},
		{"/srv/kiln.db", "sqlite", "/srv/kiln.db"},
		{"rel/kiln.db", "sqlite", "rel/kiln.db"},
		{"postgres://kiln:pw@db/kiln", "postgres", "postgres://kiln:pw@db/kiln"},
		{"postgresql://db/kiln?sslmode=require", "postgres", "postgresql://db/kiln?sslmode=require"},
	} {
		kind, arg, err := parse(c.spec, "/data")
		require.NoError(t, err, c.spec)
		assert.Equal(t, c.kind, kind, c.spec)
		assert.Equal(t, c.arg, arg, c.spec)
	}
	for _, spec := range []string{"mysql://kiln:s3cret@db/kiln", "sqlite://relative.db", "kiln", "host=db password=s3cret"} {
		_, _, err := parse(spec, "/data")
		require.Error(t, err, spec)
		assert.Contains(t, err.Error(), "--database")
		assert.Contains(t, err.Error(), "postgres://")
		assert.NotContains(t, err.Error(), "s3cret")
	}
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "postgres://kiln:xxxxx@db/kiln", Redact("postgres://kiln:s3cret@db/kiln"))
	assert.Equal(t, "mysql://kiln:xxxxx@db/kiln", Redact("mysql://kiln:s3cret@db/kiln"))
	assert.Equal(t, "/srv/kiln.db", Redact("/srv/kiln.db"))
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(ctx, "", dir)
	require.NoError(t, err)
	assert.IsType(t, &sqlite.DB{}, b)
	require.NoError(t, b.Close())
	assert.FileExists(t, filepath.Join(dir, "kiln.db"))

	b, err = Open(ctx, "sqlite://"+filepath.Join(dir, "other.db"), dir)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	assert.FileExists(t, filepath.Join(dir, "other.db"))

	b, err = Open(ctx, testhost.StartPostgres(t), dir)
	require.NoError(t, err)
	assert.IsType(t, &postgres.DB{}, b)
	require.NoError(t, b.Close())

	// A server that is not there: the error names it without the password.
	_, err = Open(ctx, "postgres://kiln:s3cret@127.0.0.1:1/kiln?connect_timeout=2", dir)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
}
