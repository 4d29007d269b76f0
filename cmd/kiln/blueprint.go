package main

import (
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
image type: supported options, known time zones, locales and keyboard layouts.`,
		Example: `  kiln blueprint validate web.toml
  kiln blueprint validate web.toml --type qcow2 --distro debian-12`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, err := blueprint.ParseFile(args[0])
			if err != nil {
				return err
			}
			if imageType != "" {
				it, err := compose.ImageType(a.registry, bp, compose.Request{Distro: distroName, Arch: arch, ImageType: imageType},
					compose.Defaults{Distro: defaultDistro, Arch: hostArch()})
				if err != nil {
					return err
				}
				if err := it.CheckBlueprint(bp); err != nil {
					return err
				}
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
