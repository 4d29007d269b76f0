package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/service/store"
)

func newWorkerTokenCommand(a *app) *cobra.Command {
	var dbf databaseFlags
	cmd := &cobra.Command{
		Use:   "worker-token",
		Short: "Create, list and revoke the tokens remote workers request jobs with",
		Long: `worker-token manages the secrets "kiln worker" processes authenticate to the
service's worker API with. A worker token lets a worker ask for jobs of any
organization; everything it then does to a job it does with that job's own
lease token. Only the token's hash is stored: it is printed once.`,
	}
	dbf.register(cmd.PersistentFlags())

	var name string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a worker token and print it",
		Example: "  kiln worker-token create --name rack-1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(name) > 128 {
				return fmt.Errorf("--name is required, at most 128 characters")
			}
			db, err := dbf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			secret, hash := store.NewSecret("kwt_")
			if err := db.CreateWorkerToken(cmd.Context(), store.WorkerToken{ID: store.NewID(), Name: name, Hash: hash, CreatedAt: time.Now().UTC()}); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, secret)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for, such as the machines that use it (required)")

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the worker tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := dbf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			tokens, err := db.ListWorkerTokens(cmd.Context())
			if err != nil {
				return err
			}
			rows := []tokenRow{}
			for _, t := range tokens {
				rows = append(rows, tokenRow{t.ID, t.Name, t.CreatedAt, t.RevokedAt})
			}
			return writeTokens(a.stdout, format, rows)
		},
	}
	list.Flags().StringVar(&format, "format", "text", "text or json")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a worker token: its workers get no more jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := dbf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.RevokeWorkerToken(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("worker token %s: %w", args[0], err)
			}
			fmt.Fprintf(a.stdout, "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newMigrateCommand(_ *app) *cobra.Command {
	var dbf databaseFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the service's database schema up to date, then exit",
		Long: `migrate applies the schema migrations this kiln carries to the database.
"kiln serve" applies them too when it starts; run migrate first to upgrade
the schema before rolling out new replicas. Several processes migrating at
once wait for each other.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := dbf.open(cmd.Context())
			if err != nil {
				return err
			}
			return db.Close()
		},
	}
	dbf.register(cmd.Flags())
	return cmd
}
