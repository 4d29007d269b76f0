package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/engine/sandbox"
)

func newCacheCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Inspect and prune the build cache"}
	var format string
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List cache entries, least recently used first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			entries, err := engine.Entries(a.cfg.CacheDir)
			if err != nil {
				return err
			}
			if format == "json" {
				if entries == nil {
					entries = []engine.Entry{}
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			if format != "text" {
				return fmt.Errorf("--format %q: expected text or json", format)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tSIZE\tLAST USED\tPATH")
			var total int64
			for _, e := range entries {
				total += e.Size
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Kind, blueprint.Size(e.Size).String(), e.LastUsed.Format("2006-01-02 15:04"), e.Path)
			}
			fmt.Fprintf(tw, "total\t%s\t\t%s\n", blueprint.Size(total).String(), a.cfg.CacheDir)
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&format, "format", "text", "output format: text or json")
	var maxSize string
	prune := &cobra.Command{
		Use:     "prune",
		Short:   "Evict least recently used entries until the cache fits a size",
		Example: "  kiln cache prune --max-size 20GiB",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			sz, err := blueprint.ParseSize(maxSize)
			if err != nil {
				return fmt.Errorf("--max-size: %w", err)
			}
			removed, err := engine.Prune(a.cfg.CacheDir, int64(sz))
			var freed int64
			for _, e := range removed {
				freed += e.Size
				fmt.Fprintf(a.stdout, "removed %s %s (%s)\n", e.Kind, e.Path, blueprint.Size(e.Size).String())
			}
			fmt.Fprintf(a.stdout, "freed %s\n", blueprint.Size(freed).String())
			return err
		},
	}
	prune.Flags().StringVar(&maxSize, "max-size", "", "keep the cache at most this large (e.g. \"20 GiB\", \"0\" empties it)")
	_ = prune.MarkFlagRequired("max-size")
	cmd.AddCommand(ls, prune)
	return cmd
}

func newDoctorCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check that this host can build images",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, t := range engine.Requirements(nil) {
				fmt.Fprintf(a.stdout, "  %-16s (Debian package %s) %s\n", t.Name, t.Package, t.Why)
			}
			if iso, err := sandbox.Probe(context.Background()); err == nil {
				fmt.Fprintf(a.stdout, "isolation: user namespace (uid map %s), pivot_root, idmapped tree, no_new_privs %s, seccomp %s, capabilities %s\n",
					iso.UIDMap, iso.NoNewPrivs, iso.Seccomp, iso.CapEff)
			}
			if p := engine.HostProblems(nil); len(p) > 0 {
				for _, line := range p {
					fmt.Fprintf(a.stdout, "problem: %s\n", line)
				}
				return fmt.Errorf("this host cannot build images yet")
			}
			fmt.Fprintln(a.stdout, "this host can build images")
			return nil
		},
	}
}
