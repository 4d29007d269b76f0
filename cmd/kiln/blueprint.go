package main

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
)

func newBlueprintCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "blueprint",
		Short: "Work with blueprint files, locally and in a kiln service",
	}
	var distroName, arch, imageType string
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a blueprint and list every problem with its field path",
		Long: `Checks a blueprint (TOML or JSON). With --type it is also checked against that
image type: supported options, known time zones, locales and keyboard layouts,
and paths that would pass through a symbolic link of the image. With --distro
or --arch alone, the paths are checked against that distribution's tree.`,
		Example: `  kiln blueprint validate web.toml
  kiln blueprint validate web.toml --type qcow2 --distro debian-12
  kiln blueprint validate web.toml --distro debian-13`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, err := blueprint.ParseFile(args[0])
			if err != nil {
				return err
			}
			warnings := bp.Warnings()
			switch {
			case imageType != "":
				it, err := compose.ImageType(a.registry, bp, compose.Request{Distro: distroName, Arch: arch, ImageType: imageType},
					compose.Defaults{Distro: defaultDistro, Arch: hostArch()})
				if err != nil {
					return err
				}
				if err := it.CheckBlueprint(bp); err != nil {
					return err
				}
				w, _ := it.Arch().CheckPaths(bp)
				warnings = append(warnings, w...)
			case distroName != "" || arch != "":
				d, err := a.registry.Distro(cmp.Or(distroName, bp.Distro, defaultDistro))
				if err != nil {
					return err
				}
				ar, err := d.Arch(cmp.Or(arch, bp.Architecture, hostArch()))
				if err != nil {
					return err
				}
				w, err := ar.CheckPaths(bp)
				if err != nil {
					return err
				}
				warnings = append(warnings, w...)
			}
			for _, w := range warnings {
				fmt.Fprintf(a.stderr, "kiln: warning: %s\n", w)
			}
			fmt.Fprintf(a.stdout, "%s: blueprint %q is valid\n", args[0], bp.Name)
			return nil
		},
	}
	validate.Flags().StringVar(&distroName, "distro", "", "distribution to check against (default: the blueprint's, else "+defaultDistro+")")
	validate.Flags().StringVar(&arch, "arch", "", "architecture to check against (default: the blueprint's, else this host's)")
	validate.Flags().StringVarP(&imageType, "type", "t", "", "image type to check against")
	cmd.AddCommand(validate, newBlueprintPushCommand(a), newBlueprintPullCommand(a))
	return cmd
}
