package main

import (
	"context"
	"os"

	"github.com/spf13/pflag"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/backends"
)

// databaseFlags are how the commands that manage the service's state
// find its database: SQLite in --data, or --database.
type databaseFlags struct{ data, database string }

func (d *databaseFlags) register(f *pflag.FlagSet) {
	f.StringVar(&d.data, "data", defaultDataDir, "the service's data directory (its SQLite database when --database is empty)")
	f.StringVar(&d.database, "database", os.Getenv("KILN_DATABASE"), "the service's database: empty for SQLite in --data, or postgres://USER@HOST/DB (default $KILN_DATABASE)")
}

func (d *databaseFlags) open(ctx context.Context) (store.Backend, error) {
	return backends.Open(ctx, d.database, d.data)
}
