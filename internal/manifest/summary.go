package manifest

import (
	"fmt"
	"io"
	"strings"
)

// Summary writes a readable overview: the target, the repositories, the
// package count and size, and each pipeline's stages.
func (m *Manifest) Summary(w io.Writer) error {
	var total int64
	for _, d := range m.Sources.Debs {
		total += d.Size
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Image:      %s (%s %s %s)\n", m.Output.Filename, m.Target.Distro, m.Target.Arch, m.Target.ImageType)
	fmt.Fprintf(&b, "Seed:       %d\n", m.Target.Seed)
	fmt.Fprintf(&b, "Packages:   %d (%.1f MiB to download)\n", len(m.Sources.Debs), float64(total)/(1<<20))
	fmt.Fprintf(&b, "Repositories:\n")
	for _, r := range m.Sources.Repositories {
		fmt.Fprintf(&b, "  %-16s %s %s (%s)\n", r.ID, r.URI, r.Suite, r.Date)
	}
	fmt.Fprintf(&b, "Pipelines:\n")
	for _, p := range m.Pipelines {
		from := ""
		if p.Input != "" {
			from = " from " + p.Input
		}
		out := p.Produces
		if p.Filename != "" {
			out += " " + p.Filename
		}
		fmt.Fprintf(&b, "  %s%s -> %s\n", p.Name, from, out)
		for i, s := range p.Stages {
			fmt.Fprintf(&b, "    %2d. %s\n", i+1, s.Type)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
