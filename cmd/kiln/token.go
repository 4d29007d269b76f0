package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/service/store"
)

func newTokenCommand(a *app) *cobra.Command {
	var dbf databaseFlags
	open := dbf.open
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the service's API tokens",
		Long: `token manages the bearer tokens clients of "kiln serve" authenticate with.
A token belongs to one organization and sees only its composes. Only the
token's hash is stored: the token is printed once, when it is created.`,
	}
	dbf.register(cmd.PersistentFlags())

	var org, name string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a token and print it",
		Example: "  kiln token create --org acme --name ci",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" || name == "" {
				return fmt.Errorf("--org and --name are required")
			}
			if len(org) > 128 || len(name) > 128 {
				return fmt.Errorf("--org and --name are at most 128 characters")
			}
			db, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			secret, hash := store.NewSecret("kiln_")
			t := store.Token{ID: store.NewID(), OrgID: org, Name: name, Hash: hash, CreatedAt: time.Now().UTC()}
			if err := db.CreateToken(cmd.Context(), t); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, secret)
			return nil
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization the token acts for (required)")
	create.Flags().StringVar(&name, "name", "", "what the token is for (required)")

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List an organization's tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" {
				return fmt.Errorf("--org is required")
			}
			db, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			tokens, err := db.ListTokens(cmd.Context(), org)
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
	list.Flags().StringVar(&org, "org", "", "organization (required)")
	list.Flags().StringVar(&format, "format", "text", "text or json")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return fmt.Errorf("--org is required")
			}
			db, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.RevokeToken(cmd.Context(), org, args[0]); err != nil {
				return fmt.Errorf("token %s of org %s: %w", args[0], org, err)
			}
			fmt.Fprintf(a.stdout, "revoked %s\n", args[0])
			return nil
		},
	}
	revoke.Flags().StringVar(&org, "org", "", "organization (required)")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// tokenRow is a token as `list` shows it: never its secret or hash.
type tokenRow struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// writeTokens prints tokens as a table, or as JSON with format "json".
func writeTokens(w io.Writer, format string, rows []tokenRow) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
	for _, r := range rows {
		revoked := "-"
		if r.RevokedAt != nil {
			revoked = r.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CreatedAt.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}
