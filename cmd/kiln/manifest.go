package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/keyfetch"
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
	cmd.Flags().StringVar(&f.arch, "arch", "", "architecture (default: the blueprint's architecture, else this host's); kiln build --type container takes several, comma-separated, for one multi-architecture image")
	cmd.Flags().StringVarP(&f.imageType, "type", "t", "", "image type (see kiln list-images)")
	cmd.Flags().StringVar(&f.seed, "seed", "", "seed for every identifier in the image (default: derived from blueprint name, distro, arch and type)")
	f.registerSolver(cmd)
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

// registerSolver registers the flags of the package solver: the mirrors
// and how the repository metadata is fetched.
func (f *targetFlags) registerSolver(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.mirrors, "mirror", nil, "mirror URI for the distribution's packages, or ROLE=URI (roles: debian, debian-security); default: the host's apt sources")
	cmd.Flags().BoolVar(&f.offline, "offline", false, "use only cached repository metadata; never touch the network")
	cmd.Flags().BoolVar(&f.refresh, "refresh", false, "fetch repository metadata even when the cache is fresh")
}

// loadBlueprint reads the blueprint with every problem parsing finds
// (blueprint.ParseFileAll). The blueprint is nil only when the document
// itself cannot be read; then the error says why.
func (f *targetFlags) loadBlueprint() (*blueprint.Blueprint, blueprint.Errors, error) {
	if f.blueprintPath == "" {
		return &blueprint.Blueprint{Name: "image"}, nil, nil
	}
	bp, problems, err := blueprint.ParseFileAll(f.blueprintPath)
	if err != nil {
		return nil, nil, err
	}
	if bp == nil {
		return nil, nil, fmt.Errorf("blueprint %s:\n%w", f.blueprintPath, problems)
	}
	return bp, problems, nil
}

// plannedImage is a planned image: the blueprint, the problems parsing found in
// it, the image type and the options.
type plannedImage struct {
	bp     *blueprint.Blueprint
	parsed blueprint.Errors
	it     *distro.ImageType
	opts   distro.Options
}

// archList reads --arch as a list: one architecture, or several joined
// by commas (which only kiln build of the container type takes). An
// empty --arch is the empty list.
func (f *targetFlags) archList() ([]string, error) {
	if f.arch == "" {
		return nil, nil
	}
	var arches, problems []string
	for _, a := range strings.Split(f.arch, ",") {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			problems = append(problems, "an empty architecture in the list")
		case slices.Contains(arches, a):
			problems = append(problems, fmt.Sprintf("%s is named twice", a))
		default:
			arches = append(arches, a)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("--arch %q: %s: give architectures separated by commas, each once, e.g. x86_64,aarch64", f.arch, strings.Join(problems, "; "))
	}
	return arches, nil
}

// plan loads the blueprint and works out the image type and options.
func (f *targetFlags) plan(a *app) (*plannedImage, error) {
	if arches, err := f.archList(); err != nil {
		return nil, err
	} else if len(arches) > 1 {
		return nil, fmt.Errorf("--arch %q: one architecture is planned at a time; only kiln build --type container takes several, for one multi-architecture image", f.arch)
	}
	bp, parsed, err := f.loadBlueprint()
	if err != nil {
		return nil, err
	}
	t := &plannedImage{bp: bp, parsed: parsed}
	t.it, err = compose.ImageType(a.registry, bp, compose.Request{Distro: f.distro, Arch: f.arch, ImageType: f.imageType},
		compose.Defaults{Distro: defaultDistro, Arch: hostArch()})
	if err != nil {
		return nil, f.withProblems(err, parsed)
	}
	if f.seed != "" {
		s, err := strconv.ParseUint(f.seed, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seed %q: expected a non-negative integer", f.seed)
		}
		t.opts.Seed = &s
	}
	t.opts.Mirrors, err = a.mirrors(t.it.Arch().Distro(), f.mirrors)
	if err != nil {
		return nil, f.withProblems(err, parsed)
	}
	// The blueprint is the user's own: its key URLs may be on their network.
	t.opts.KeyClient = keyfetch.AnyAddressClient()
	return t, nil
}

// withProblems adds the blueprint's problems to an error that stopped
// planning, so that they are not lost to a later round.
func (f *targetFlags) withProblems(err error, problems blueprint.Errors) error {
	if len(problems) == 0 {
		return err
	}
	return fmt.Errorf("%w; and blueprint %s:\n%w", err, f.blueprintPath, problems)
}

// inFile names the blueprint file in its problems.
func (f *targetFlags) inFile(err error) error {
	var problems blueprint.Errors
	if f.blueprintPath != "" && errors.As(err, &problems) && err.Error() == problems.Error() {
		return fmt.Errorf("blueprint %s:\n%w", f.blueprintPath, problems)
	}
	return err
}

// manifest plans the image, solves its packages and writes its manifest,
// or returns every problem found on the way, together.
func (f *targetFlags) manifest(ctx context.Context, a *app) (*compose.Result, error) {
	t, err := f.plan(a)
	if err != nil {
		return nil, err
	}
	r, err := a.planResolver(ctx, f.offline, f.refresh)
	if err != nil {
		return nil, err
	}
	res, err := compose.ManifestAll(ctx, t.it, t.bp, t.parsed, t.opts, r)
	if err != nil {
		return nil, f.inFile(err)
	}
	return res, nil
}

// resolverContextKey is the context key of a resolver that replaces the
// one the configuration gives (see planResolver).
type resolverContextKey struct{}

// planResolver is the package resolver of the verbs that plan: the
// configured one, unless the command's context carries another under
// resolverContextKey (how tests solve without a network).
func (a *app) planResolver(ctx context.Context, offline, refresh bool) (depsolve.Resolver, error) {
	if r, ok := ctx.Value(resolverContextKey{}).(depsolve.Resolver); ok {
		return r, nil
	}
	return a.resolver(offline, refresh)
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
			res, err := f.manifest(cmd.Context(), a)
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
