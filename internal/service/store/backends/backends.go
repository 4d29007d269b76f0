// Package backends opens the store backend a --database spec names.
package backends

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

// Open opens the backend spec names: "" is SQLite at dataDir/kiln.db.
func Open(ctx context.Context, spec, dataDir string) (store.Backend, error) {
	switch {
	case spec == "":
		return sqlite.Open(ctx, filepath.Join(dataDir, "kiln.db"), sqlite.Options{})
	case strings.HasPrefix(spec, "sqlite://"):
		return sqlite.Open(ctx, strings.TrimPrefix(spec, "sqlite://"), sqlite.Options{})
	}
	return nil, fmt.Errorf("--database: %q is not a database this kiln opens (empty for SQLite in --data, sqlite:///path/kiln.db)", spec)
}
