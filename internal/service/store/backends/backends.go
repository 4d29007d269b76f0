// Package backends opens the store backend that kiln serve's --database
// flag names.
package backends

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/postgres"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

// Forms lists what --database accepts, for help texts and errors.
const Forms = `"" (SQLite at DATA_DIR/kiln.db), sqlite:///absolute/path.db, a path ending in .db (SQLite), ` +
	`postgres://user:password@host:port/database (or postgresql://...)`

// Open opens the backend that spec names:
//
//   - "": SQLite at dataDir/kiln.db
//   - sqlite:///abs/path.db, or a path ending in .db: SQLite there
//   - postgres://... or postgresql://...: PostgreSQL
//
// Errors never quote a password from spec.
func Open(ctx context.Context, spec, dataDir string) (store.Backend, error) {
	switch kind, arg, err := parse(spec, dataDir); {
	case err != nil:
		return nil, err
	case kind == "postgres":
		db, err := postgres.Open(ctx, arg, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL database %s: %w", Redact(spec), err)
		}
		return db, nil
	default:
		db, err := sqlite.Open(ctx, arg, sqlite.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening the SQLite database %s: %w", arg, err)
		}
		return db, nil
	}
}

// parse returns the backend kind ("sqlite" or "postgres") and what to
// open it with: a file path or a DSN.
func parse(spec, dataDir string) (kind, arg string, err error) {
	switch {
	case spec == "":
		return "sqlite", filepath.Join(dataDir, "kiln.db"), nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return "postgres", spec, nil
	case strings.HasPrefix(spec, "sqlite://"):
		path := strings.TrimPrefix(spec, "sqlite://")
		if !filepath.IsAbs(path) {
			return "", "", fmt.Errorf("--database %s: a sqlite:// database takes an absolute path (sqlite:///var/lib/kiln/kiln.db); accepted: %s", Redact(spec), Forms)
		}
		return "sqlite", filepath.Clean(path), nil
	case !strings.Contains(spec, "://") && strings.HasSuffix(spec, ".db"):
		return "sqlite", spec, nil
	default:
		return "", "", fmt.Errorf("--database %s: not a database this kiln opens; accepted: %s", Redact(spec), Forms)
	}
}

// Redact returns spec fit for logs and errors: any password in it is
// replaced.
func Redact(spec string) string {
	if strings.HasPrefix(spec, "sqlite://") || (!strings.Contains(spec, "://") && strings.HasSuffix(spec, ".db")) {
		return spec
	}
	return postgres.Redact(spec)
}
