package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"
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
		body := map[string]any{"name": bp.Name, "description": bp.Description, "distribution": d,
			"image_requests": imageRequests(arch, types), "customizations": cust}
		var found struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := c.getJSON(cmd.Context(), "/blueprints?name="+url.QueryEscape(bp.Name), &found); err != nil {
			return err
		}
		method, path := http.MethodPost, "/blueprints"
		if len(found.Data) > 0 {
			method, path = http.MethodPut, "/blueprints/"+found.Data[0].ID
		}
		resp, err := c.request(cmd.Context(), method, path, body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct{ ID string }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return err
		}
		var stored struct {
			Version int `json:"version"`
		}
		if err := c.getJSON(cmd.Context(), "/blueprints/"+out.ID, &stored); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s version %d\n", out.ID, stored.Version)
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
		resp, err := c.requestWith(cmd.Context(), http.MethodGet, "/blueprints/"+args[0]+"/export", nil, http.Header{"Accept": {"application/toml"}})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
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
