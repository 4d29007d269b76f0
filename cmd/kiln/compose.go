package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apiclient"
	"github.com/kiln-project/kiln/internal/apimodel"
)

// newServiceClient adds --server and --token (defaults $KILN_SERVER and
// $KILN_TOKEN) to cmd and returns the client they configure.
func newServiceClient(cmd *cobra.Command) *apiclient.Client {
	c := &apiclient.Client{HTTP: &http.Client{}}
	server := os.Getenv("KILN_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8086"
	}
	cmd.PersistentFlags().StringVar(&c.Server, "server", server, "the service's address (default $KILN_SERVER)")
	cmd.PersistentFlags().StringVar(&c.Token, "token", os.Getenv("KILN_TOKEN"), "API token, from kiln token create (default $KILN_TOKEN)")
	return c
}

// imageRequests are the API's image requests for the given types.
func imageRequests(arch string, types []string) []apimodel.ImageRequest {
	var out []apimodel.ImageRequest
	for _, t := range types {
		out = append(out, apimodel.ImageRequest{Architecture: arch, ImageType: t,
			UploadRequest: apimodel.UploadRequest{Type: "local", Options: json.RawMessage(`{}`)}})
	}
	return out
}

// readForService reads a blueprint file for the service: the blueprint,
// its customizations in the API's names and the distribution to build
// (distroFlag, else the blueprint's, else the default).
func readForService(path, distroFlag string) (*blueprint.Blueprint, map[string]any, string, error) {
	bp, err := blueprint.ParseFile(path)
	if err != nil {
		return nil, nil, "", err
	}
	cust, err := apimodel.CustomizationsFromBlueprint(bp)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w", path, err)
	}
	d := distroFlag
	if d == "" {
		d = bp.Distro
	}
	if d == "" {
		d = defaultDistro
	}
	return bp, cust, d, nil
}

func newComposeCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "Submit composes to a kiln service and follow them",
		Long: `compose talks to a kiln service ("kiln serve"): it submits a blueprint as a
compose, shows its status and build log, downloads the image and cancels
or lists composes. --server and --token default to $KILN_SERVER and
$KILN_TOKEN.`,
	}
	c := newServiceClient(cmd)

	var distroName, imageType, arch string
	start := &cobra.Command{
		Use:     "start BLUEPRINT",
		Short:   "Submit a blueprint as a compose and print its ID",
		Example: "  kiln compose start web.toml --distro debian-12 --type qcow2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, cust, d, err := readForService(args[0], distroName)
			if err != nil {
				return err
			}
			id, err := c.CreateCompose(cmd.Context(), apimodel.ComposeRequest{
				Distribution: d, ImageName: bp.Name, ImageDescription: bp.Description, ClientID: "api",
				ImageRequests:  imageRequests(arch, []string{imageType}),
				Customizations: cust,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, id)
			return nil
		},
	}
	start.Flags().StringVar(&distroName, "distro", "", "distribution (default: the blueprint's, else debian-12)")
	start.Flags().StringVarP(&imageType, "type", "t", "", "image type (required; see kiln list-images)")
	start.Flags().StringVar(&arch, "arch", "x86_64", "architecture")
	_ = start.MarkFlagRequired("type")

	var wait bool
	status := &cobra.Command{
		Use:   "status ID",
		Short: "Show a compose's status (--wait: until it ends)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for {
				st, err := c.ComposeStatus(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				is := st.ImageStatus
				line := is.Status
				if is.Progress != nil {
					line += fmt.Sprintf(" (%d/%d stages)", is.Progress.Done, is.Progress.Total)
				}
				if is.Waiting != nil {
					line += ": " + is.Waiting.Reason
				}
				fmt.Fprintln(a.stdout, line)
				switch is.Status {
				case "success":
					if is.UploadStatus != nil && is.UploadStatus.Options.URL != "" {
						fmt.Fprintf(a.stdout, "download: kiln compose download %s\n", args[0])
					}
					return nil
				case "failure":
					if is.Error != nil {
						return fmt.Errorf("the compose failed: %s\n%s", is.Error.Reason, is.Error.Details)
					}
					return fmt.Errorf("the compose failed")
				}
				if !wait {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(3 * time.Second):
				}
			}
		},
	}
	status.Flags().BoolVar(&wait, "wait", false, "poll until the compose succeeds or fails")

	logs := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a compose's build log; while it runs, follow it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := c.ComposeLogs(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer log.Close()
			_, err = io.Copy(a.stdout, log)
			return err
		},
	}

	var output string
	download := &cobra.Command{
		Use:   "download ID",
		Short: "Download a compose's image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := c.Download(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer img.Body.Close()
			name := cmp.Or(output, img.Filename, "image")
			if _, err := os.Stat(name); err == nil {
				return fmt.Errorf("%s exists already: remove it or pass --output", name)
			}
			tmp := name + ".partial"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, img.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp, name)
			}
			if err != nil {
				os.Remove(tmp)
				return err
			}
			fmt.Fprintln(a.stdout, name)
			return nil
		},
	}
	download.Flags().StringVarP(&output, "output", "o", "", "file to write (default: the image's name)")

	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a compose (and remove it from the list)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.DeleteCompose(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "canceled %s\n", args[0])
			return nil
		},
	}

	var limit, offset int
	list := &cobra.Command{
		Use:   "list",
		Short: "List your composes, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := c.Composes(cmd.Context(), limit, offset)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tNAME")
			for _, d := range out.Data {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", d.ID, d.CreatedAt.Format(time.RFC3339), d.ImageName)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d of %d\n", len(out.Data), out.Meta.Count)
			return nil
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many (1-100)")
	list.Flags().IntVar(&offset, "offset", 0, "how many to skip")

	cmd.AddCommand(start, status, logs, download, cancel, list)
	return cmd
}
