package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/apimodel"
)

// newBlueprintPushCommand imports a blueprint file into a service as a
// stored blueprint: a new one, or a new version of the one with its name.
func newBlueprintPushCommand(a *app) *cobra.Command {
	var distroName, arch string
	var types []string
	cmd := &cobra.Command{
		Use:   "push FILE",
		Short: "Store a blueprint file in a kiln service (a new version when its name exists)",
		Example: `  kiln blueprint push web.toml --type qcow2 --type raw
  kiln blueprint pull ID > web.toml`,
		Args: cobra.ExactArgs(1),
	}
	c := newServiceClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		bp, cust, d, err := readForService(args[0], distroName)
		if err != nil {
			return err
		}
		id, version, err := c.PushBlueprint(cmd.Context(), apimodel.BlueprintRequest{Name: bp.Name, Description: bp.Description,
			Distribution: d, ImageRequests: imageRequests(arch, types), Customizations: cust})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s version %d\n", id, version)
		return nil
	}
	cmd.Flags().StringVar(&distroName, "distro", "", "distribution (default: the blueprint's, else "+defaultDistro+")")
	cmd.Flags().StringVar(&arch, "arch", "x86_64", "architecture")
	cmd.Flags().StringArrayVarP(&types, "type", "t", nil, "image type to build it as (repeatable; required)")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// newBlueprintPullCommand exports a stored blueprint as TOML.
func newBlueprintPullCommand(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "pull ID",
		Short: "Write a stored blueprint from a kiln service as a TOML file (password hashes left out)",
		Args:  cobra.ExactArgs(1),
	}
	c := newServiceClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		data, err := c.ExportBlueprint(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if output == "" {
			_, err = a.stdout.Write(data)
			return err
		}
		return os.WriteFile(output, data, 0o644)
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")
	return cmd
}
