package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/emulation"
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
	var fix bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this host can build images, and for which architectures",
		Long: `Checks that this host can build images: root, the build sandbox, the
tools the stages run, and for each architecture whether its programs run
here natively or through qemu-user emulation (a binfmt_misc handler with
the fix-binary flag, which the sandbox needs). --fix registers qemu-user's
handlers for the foreign architectures (root; qemu-user-static must be
installed).`,
		Example: `  kiln doctor
  sudo kiln doctor --fix`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, t := range engine.Requirements(nil) {
				fmt.Fprintf(a.stdout, "  %-16s (Debian package %s) %s\n", t.Name, t.Package, t.Why)
			}
			if iso, err := sandbox.Probe(context.Background()); err == nil {
				fmt.Fprintf(a.stdout, "isolation: user namespace (uid map %s), pivot_root, idmapped tree, no_new_privs %s, seccomp %s, capabilities %s\n",
					iso.UIDMap, iso.NoNewPrivs, iso.Seccomp, iso.CapEff)
			}
			var fixErrs []error
			if fix {
				for _, arch := range emulation.Foreign() {
					if err := emulation.Register(arch); err != nil {
						fixErrs = append(fixErrs, err)
					}
				}
			}
			fmt.Fprintf(a.stdout, "architectures (this host is %s):\n", emulation.Host())
			for _, arch := range append([]string{emulation.Host()}, emulation.Foreign()...) {
				switch mode, err := emulation.Check(arch); {
				case err != nil:
					fmt.Fprintf(a.stdout, "  %-8s no: %v\n", arch, err)
				case mode == emulation.Emulated:
					fmt.Fprintf(a.stdout, "  %-8s yes, through qemu-user emulation (slower than native)\n", arch)
				default:
					fmt.Fprintf(a.stdout, "  %-8s yes, natively\n", arch)
				}
			}
			if err := errors.Join(fixErrs...); err != nil {
				return fmt.Errorf("--fix: %w", err)
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
	cmd.Flags().BoolVar(&fix, "fix", false, "register qemu-user's binfmt_misc handlers (with the F flag) for the foreign architectures")
	return cmd
}
