package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/emulation"
)

type imageRow struct {
	Distro    string   `json:"distro"`
	Arch      string   `json:"arch"`
	Type      string   `json:"type"`
	Aliases   []string `json:"aliases,omitempty"`
	Extension string   `json:"extension"`
	MIMEType  string   `json:"mime_type"`
	Buildable bool     `json:"buildable"`
	// Emulated: this host builds it through qemu-user.
	Emulated bool   `json:"emulated,omitempty"`
	Reason   string `json:"not_buildable_reason,omitempty"`
}

// hostArches remembers, per architecture, whether this host runs its
// programs (emulation.Check executes a program, once per run).
var hostArches sync.Map

type archHere struct {
	mode emulation.Mode
	why  string
}

// buildableHere says whether this host builds images of ar, and how; why
// is empty when it does.
func buildableHere(ar *distro.Arch) (mode emulation.Mode, why string) {
	if ar.NotBuildable != "" {
		return "", ar.NotBuildable
	}
	if v, ok := hostArches.Load(ar.Name); ok {
		h := v.(archHere)
		return h.mode, h.why
	}
	m, err := emulation.Check(ar.Name)
	h := archHere{mode: m}
	if err != nil {
		h.why = err.Error()
	}
	hostArches.Store(ar.Name, h)
	return h.mode, h.why
}

func newListImagesCommand(a *app) *cobra.Command {
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:   "list-images",
		Short: "List every distribution, architecture and image type kiln can build",
		Example: `  kiln list-images
  kiln list-images --filter distro:debian-12 --filter type:qcow2 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			match := map[string][]string{}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, ":")
				if !ok || v == "" || (k != "distro" && k != "arch" && k != "type") {
					return fmt.Errorf("--filter %q: expected distro:NAME, arch:NAME or type:NAME", f)
				}
				match[k] = append(match[k], v)
			}
			ok := func(k string, vals ...string) bool {
				if len(match[k]) == 0 {
					return true
				}
				for _, want := range match[k] {
					for _, v := range vals {
						if v == want {
							return true
						}
					}
				}
				return false
			}
			var rows []imageRow
			for _, d := range a.registry.Distros() {
				for _, ar := range d.Arches() {
					for _, it := range ar.ImageTypes() {
						if !ok("distro", d.Name) || !ok("arch", ar.Name, ar.DebianArch) || !ok("type", append([]string{it.Name}, it.Aliases...)...) {
							continue
						}
						mode, why := buildableHere(ar)
						rows = append(rows, imageRow{Distro: d.Name, Arch: ar.Name, Type: it.Name, Aliases: it.Aliases, Extension: it.Extension,
							MIMEType: it.MIMEType, Buildable: why == "", Emulated: mode == emulation.Emulated, Reason: why})
					}
				}
			}
			switch format {
			case "json":
				if rows == nil {
					rows = []imageRow{}
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case "text":
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DISTRO\tARCH\tTYPE\tALIASES\tFILE\tBUILDABLE")
				for _, r := range rows {
					b := "yes"
					if r.Emulated {
						b = "yes (emulated)"
					}
					if !r.Buildable {
						b = "no: " + r.Reason
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t*.%s\t%s\n", r.Distro, r.Arch, r.Type, strings.Join(r.Aliases, ","), r.Extension, b)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("--format %q: expected text or json", format)
			}
		},
	}
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "show only matching rows: distro:NAME, arch:NAME or type:NAME (repeatable)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
