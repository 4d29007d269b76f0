package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/service/status"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/target"
)

// maxIncidentText bounds an incident's title and an update's message.
const maxIncidentText = 2000

func newIncidentCommand(a *app) *cobra.Command {
	var dbf databaseFlags
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Open, update and resolve the incidents shown on the public status page",
		Long: `incident manages the incidents the service's public status page (/status,
/status.json and the Atom feed /status/feed.atom) shows. An incident has a
title, an impact (minor, major or critical), the components it affects and
a list of updates; it is open until resolved. Everything written here is
public: name no customer, user, blueprint or compose.`,
		Example: `  kiln incident open "Builds for aarch64 wait" --impact major --component workers/aarch64 --message "We are looking into it."
  kiln incident update ID --status identified --message "A worker host lost its network."
  kiln incident resolve ID --message "Builds run again."
  kiln incident list`,
	}
	dbf.register(cmd.PersistentFlags())

	var (
		impact     string
		components []string
		message    string
	)
	open := &cobra.Command{
		Use:   "open TITLE",
		Short: "Open an incident; it shows on the status page at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			title := strings.TrimSpace(args[0])
			if err := checkText("the title", title); err != nil {
				return err
			}
			if !slices.Contains(store.IncidentImpacts(), impact) {
				return fmt.Errorf("--impact %q: give one of %s", impact, strings.Join(store.IncidentImpacts(), ", "))
			}
			if err := checkText("--message", message); err != nil {
				return err
			}
			if len(components) == 0 {
				return fmt.Errorf("--component is required: name each affected component (repeat the flag), such as --component api")
			}
			db, err := dbf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			known, err := knownComponents(cmd.Context(), a, db)
			if err != nil {
				return err
			}
			var cs []string
			for _, c := range components {
				c = strings.TrimSpace(c)
				if !slices.Contains(known, c) {
					return fmt.Errorf("--component %q: not a component of the status page; give one of %s", c, strings.Join(known, ", "))
				}
				if !slices.Contains(cs, c) {
					cs = append(cs, c)
				}
			}
			now := time.Now().UTC()
			inc := store.Incident{ID: store.NewID(), Title: title, Impact: impact, Components: cs, CreatedAt: now}
			if err := db.CreateIncident(cmd.Context(), inc, store.IncidentUpdate{ID: store.NewID(), IncidentID: inc.ID,
				Status: store.IncidentInvestigating, Body: strings.TrimSpace(message), CreatedAt: now}); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, inc.ID)
			return nil
		},
	}
	open.Flags().StringVar(&impact, "impact", "", "minor, major or critical (required)")
	open.Flags().StringArrayVar(&components, "component", nil, "an affected component as the status page names it: api, database, queue, artifact-store, workers/ARCH, upload/TYPE (required, repeatable)")
	open.Flags().StringVar(&message, "message", "", "the first update, what users should know (required)")

	var (
		updStatus  string
		updMessage string
	)
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Add an update to an open incident",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(store.IncidentOpenStatuses(), updStatus) {
				return fmt.Errorf("--status %q: give one of %s (resolve it with \"kiln incident resolve\")", updStatus, strings.Join(store.IncidentOpenStatuses(), ", "))
			}
			return addUpdate(cmd.Context(), a, dbf, args[0], updStatus, updMessage)
		},
	}
	update.Flags().StringVar(&updStatus, "status", "", "investigating, identified or monitoring (required)")
	update.Flags().StringVar(&updMessage, "message", "", "what changed (required)")

	var resMessage string
	resolve := &cobra.Command{
		Use:   "resolve ID",
		Short: "Resolve an incident with a last update",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return addUpdate(cmd.Context(), a, dbf, args[0], store.IncidentResolved, resMessage)
		},
	}
	resolve.Flags().StringVar(&resMessage, "message", "", "how it ended (required)")

	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the open incidents and those resolved in the last 90 days, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: give text or json", format)
			}
			db, err := dbf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			incs, err := db.ListIncidents(cmd.Context(), time.Now().AddDate(0, 0, -status.Days))
			if err != nil {
				return err
			}
			return writeIncidents(a.stdout, format, incs)
		},
	}
	list.Flags().StringVar(&format, "format", "text", "text or json")

	cmd.AddCommand(open, update, resolve, list)
	return cmd
}

// checkText refuses an empty or overlong title or message.
func checkText(what, s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return fmt.Errorf("%s is required and must not be empty", what)
	}
	if len(s) > maxIncidentText {
		return fmt.Errorf("%s is %d bytes long: keep it under %d", what, len(s), maxIncidentText)
	}
	return nil
}

func addUpdate(ctx context.Context, a *app, dbf databaseFlags, id, st, message string) error {
	if err := checkText("--message", message); err != nil {
		return err
	}
	db, err := dbf.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.AddIncidentUpdate(ctx, store.IncidentUpdate{ID: store.NewID(), IncidentID: id, Status: st,
		Body: strings.TrimSpace(message), CreatedAt: time.Now().UTC()})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("incident %s: no such incident (see \"kiln incident list\")", id)
	case errors.Is(err, store.ErrIncidentResolved):
		return fmt.Errorf("incident %s: it is resolved already and takes no more updates; open a new one if it happened again", id)
	case err != nil:
		return err
	}
	fmt.Fprintf(a.stdout, "%s %s\n", id, st)
	return nil
}

// knownComponents are the names an incident may affect: the fixed ones,
// every architecture's workers, the upload types configured here, and
// every component the service's prober recorded in the last 90 days.
func knownComponents(ctx context.Context, a *app, db store.Backend) ([]string, error) {
	known := status.FixedComponents()
	for _, arch := range status.OfferedArches(a.registry, nil) {
		known = append(known, status.WorkersPrefix+arch)
	}
	types := []string{"local", "aws.s3"}
	if a.cfg != nil {
		if reg, err := target.Build(a.cfg.Targets, os.Getenv, ""); err == nil {
			types = reg.Types()
		}
	}
	for _, t := range types {
		known = append(known, status.UploadPrefix+t)
	}
	days, err := db.UptimeDays(ctx, time.Now().AddDate(0, 0, -status.Days))
	if err != nil {
		return nil, err
	}
	for _, d := range days {
		known = append(known, d.Component)
	}
	slices.Sort(known)
	return slices.Compact(known), nil
}

func writeIncidents(w io.Writer, format string, incs []store.Incident) error {
	if format == "json" {
		out := []status.ReportIncident{}
		for _, inc := range incs {
			out = append(out, status.IncidentOf(inc))
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIMPACT\tSTATUS\tOPENED\tCOMPONENTS\tTITLE")
	for _, inc := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.Impact, inc.Status, inc.CreatedAt.Format(time.RFC3339),
			strings.Join(inc.Components, ","), inc.Title)
	}
	return tw.Flush()
}
