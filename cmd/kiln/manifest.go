package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/distro"
)

// targetFlags are the flags every verb that plans an image shares.
type targetFlags struct {
	blueprintPath string
	distro        string
	arch          string
	imageType     string
	seed          string
	mirrors       []string
	offline       bool
	refresh       bool
}

func (f *targetFlags) register(cmd *cobra.Command, typeRequired bool) {
	cmd.Flags().StringVarP(&f.blueprintPath, "blueprint", "b", "", "blueprint file (.toml or .json); without it, an image with only the defaults")
	cmd.Flags().StringVar(&f.distro, "distro", "", "distribution (default: the blueprint's distro, else "+defaultDistro+")")
	cmd.Flags().StringVar(&f.arch, "arch", "", "architecture (default: the blueprint's architecture, else this host's)")
	cmd.Flags().StringVarP(&f.imageType, "type", "t", "", "image type (see kiln list-images)")
	cmd.Flags().StringVar(&f.seed, "seed", "", "seed for every identifier in the image (default: derived from blueprint name, distro, arch and type)")
	cmd.Flags().StringArrayVar(&f.mirrors, "mirror", nil, "mirror URI for the distribution's packages, or ROLE=URI (roles: debian, debian-security); default: the host's apt sources")
	cmd.Flags().BoolVar(&f.offline, "offline", false, "use only cached repository metadata; never touch the network")
	cmd.Flags().BoolVar(&f.refresh, "refresh", false, "fetch repository metadata even when the cache is fresh")
	if typeRequired {
		_ = cmd.MarkFlagRequired("type")
	}
	_ = cmd.RegisterFlagCompletionFunc("type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"qcow2", "raw", "tar", "guest-image", "minimal-raw"}, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("distro", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"debian-12", "debian-13"}, cobra.ShellCompDirectiveNoFileComp
	})
}

func (f *targetFlags) loadBlueprint() (*blueprint.Blueprint, error) {
	if f.blueprintPath == "" {
		return &blueprint.Blueprint{Name: "image"}, nil
	}
	return blueprint.ParseFile(f.blueprintPath)
}

// plan loads the blueprint and works out the image type and options.
func (f *targetFlags) plan(a *app) (*blueprint.Blueprint, *distro.ImageType, distro.Options, error) {
	var opts distro.Options
	bp, err := f.loadBlueprint()
	if err != nil {
		return nil, nil, opts, err
	}
	it, err := compose.ImageType(a.registry, bp, compose.Request{Distro: f.distro, Arch: f.arch, ImageType: f.imageType},
		compose.Defaults{Distro: defaultDistro, Arch: hostArch()})
	if err != nil {
		return nil, nil, opts, err
	}
	if f.seed != "" {
		s, err := strconv.ParseUint(f.seed, 10, 64)
		if err != nil {
			return nil, nil, opts, fmt.Errorf("--seed %q: expected a non-negative integer", f.seed)
		}
		opts.Seed = &s
	}
	opts.Mirrors, err = a.mirrors(it.Arch().Distro(), f.mirrors)
	if err != nil {
		return nil, nil, opts, err
	}
	return bp, it, opts, nil
}

func newManifestCommand(a *app) *cobra.Command {
	var f targetFlags
	var format string
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Print the manifest of an image: the pinned packages and every build stage",
		Long: `Plans an image from a blueprint, solves its packages against the distribution's
repositories and prints the manifest: the pipelines and stages the build runs, and
every package pinned by version and SHA-256. The same inputs give the same bytes.`,
		Example: `  kiln manifest --blueprint web.toml --distro debian-12 --arch x86_64 --type qcow2 > manifest.json
  kiln manifest -b web.toml -t tar --format text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "json" && format != "text" {
				return fmt.Errorf("--format %q: expected json or text", format)
			}
			bp, it, opts, err := f.plan(a)
			if err != nil {
				return err
			}
			r, err := a.resolver(f.offline, f.refresh)
			if err != nil {
				return err
			}
			res, err := compose.Manifest(cmd.Context(), it, bp, opts, r)
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "kiln: warning: %s\n", w)
			}
			if format == "text" {
				return res.Manifest.Summary(a.stdout)
			}
			b, err := res.Manifest.Marshal()
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&format, "format", "json", "output format: json (the manifest) or text (a readable summary)")
	return cmd
}

// parseMirrorFlags reads --mirror values: a bare URI is the "debian" role.
func parseMirrorFlags(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		role, uri := "debian", v
		if r, u, ok := strings.Cut(v, "="); ok && !strings.Contains(r, "/") {
			role, uri = r, u
		}
		if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") && !strings.HasPrefix(uri, "file:/") {
			return nil, fmt.Errorf("--mirror %q: expected an http(s) or file URL, optionally as ROLE=URL", v)
		}
		out[role] = uri
	}
	return out, nil
}
