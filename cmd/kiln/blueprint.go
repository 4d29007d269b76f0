package main

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/distro"
)

func newBlueprintCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "blueprint",
		Short: "Work with blueprint files, locally and in a kiln service",
	}
	var f targetFlags
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a blueprint and list every problem with its field path",
		Long: `Checks a blueprint (TOML or JSON) and lists every problem found, each with
its field path, all in one answer.

Without --distro or --type, only the blueprint itself is checked: offline,
reading nothing but the file. With --arch alone, it is also checked against
that architecture of the blueprint's distribution (else ` + defaultDistro + `): known
time zones, locales, keyboard layouts and firewall services, and paths that
would pass through a symbolic link of the tree; still offline.

With --distro or --type, the blueprint is planned as kiln manifest plans it:
with --type, against that image type (supported options, the disk layout);
with --distro alone, everything that does not depend on the image type. The
packages are solved too, so every missing package is reported with the rest;
this reads the repositories' metadata like kiln manifest (see --mirror,
--offline).`,
		Example: `  kiln blueprint validate web.toml
  kiln blueprint validate web.toml --type qcow2 --distro debian-12
  kiln blueprint validate web.toml --distro debian-13 --offline`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.blueprintPath = args[0]
			name, warnings, err := validateBlueprint(cmd, a, &f)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintf(a.stderr, "kiln: warning: %s\n", w)
			}
			fmt.Fprintf(a.stdout, "%s: blueprint %q is valid\n", args[0], name)
			return nil
		},
	}
	validate.Flags().StringVar(&f.distro, "distro", "", "distribution to check against, solving the packages (default: the blueprint's, else "+defaultDistro+")")
	validate.Flags().StringVar(&f.arch, "arch", "", "architecture to check against (default: the blueprint's, else this host's)")
	validate.Flags().StringVarP(&f.imageType, "type", "t", "", "image type to check against, solving the packages")
	f.registerSolver(validate)
	cmd.AddCommand(validate, newBlueprintPushCommand(a), newBlueprintPullCommand(a))
	return cmd
}

// validateBlueprint runs every check the flags ask for and returns the
// blueprint's name and warnings, or every problem of every phase
// together.
func validateBlueprint(cmd *cobra.Command, a *app, f *targetFlags) (string, []string, error) {
	bp, parsed, err := f.loadBlueprint()
	if err != nil {
		return "", nil, err
	}
	warnings, err := checkBlueprint(cmd, a, f, bp, parsed)
	return bp.Name, warnings, err
}

// checkBlueprint is validateBlueprint past reading the file.
func checkBlueprint(cmd *cobra.Command, a *app, f *targetFlags, bp *blueprint.Blueprint, parsed blueprint.Errors) ([]string, error) {
	var err error
	switch {
	case f.imageType != "" || f.distro != "":
		var t *plannedImage
		if f.imageType != "" {
			if t, err = f.plan(a); err != nil {
				return nil, err
			}
		} else {
			it, err := f.anyImageType(a, bp)
			if err != nil {
				return nil, f.withProblems(err, parsed)
			}
			t = &plannedImage{bp: bp, parsed: parsed, it: it}
			if t.opts.Mirrors, err = a.mirrors(it.Arch().Distro(), f.mirrors); err != nil {
				return nil, f.withProblems(err, parsed)
			}
		}
		r, err := a.planResolver(cmd.Context(), f.offline, f.refresh)
		if err != nil {
			return nil, err
		}
		warnings, err := compose.Check(cmd.Context(), t.it, t.bp, t.parsed, t.opts, r)
		return warnings, f.inFile(err)
	case f.arch != "":
		it, err := f.anyImageType(a, bp)
		if err != nil {
			return nil, f.withProblems(err, parsed)
		}
		var problems blueprint.Errors
		if err := it.CheckBlueprint(bp); err != nil {
			var errs blueprint.Errors
			if !errors.As(err, &errs) {
				return nil, err
			}
			problems = errs
		}
		if problems = parsed.Merge(problems); len(problems) > 0 {
			return nil, f.inFile(problems)
		}
		return problemStrings(append(bp.Warnings(), pathWarnings(it.Arch(), bp)...)), nil
	}
	if len(parsed) > 0 {
		return nil, f.inFile(parsed)
	}
	return problemStrings(bp.Warnings()), nil
}

// anyImageType is the stand-in image type of the flags' (else the
// blueprint's, else the default) distribution and architecture, for the
// checks that do not depend on an image type.
func (f *targetFlags) anyImageType(a *app, bp *blueprint.Blueprint) (*distro.ImageType, error) {
	d, err := a.registry.Distro(cmp.Or(f.distro, bp.Distro, defaultDistro))
	if err != nil {
		return nil, err
	}
	ar, err := d.Arch(cmp.Or(f.arch, bp.Architecture, hostArch()))
	if err != nil {
		return nil, err
	}
	return ar.AnyImageType(), nil
}

// pathWarnings are the blueprint's paths that replace a link of the tree.
func pathWarnings(ar *distro.Arch, bp *blueprint.Blueprint) []blueprint.Problem {
	w, _ := ar.CheckPaths(bp)
	return w
}

func problemStrings(ps []blueprint.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
