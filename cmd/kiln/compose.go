package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/service/api"
)

// serviceClient talks to a kiln service's image-builder API.
type serviceClient struct {
	server, token string
	http          *http.Client
}

func (c *serviceClient) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	return c.requestWith(ctx, method, path, body, nil)
}

// requestWith sends a request with extra headers; a refusal comes back as
// an error listing the service's problems.
func (c *serviceClient) requestWith(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.server, "/")+api.Prefix+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the service at %s: %w", c.server, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var e struct {
			Errors []struct{ Detail string } `json:"errors"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &e) == nil && len(e.Errors) > 0 {
			var lines []string
			for _, it := range e.Errors {
				lines = append(lines, it.Detail)
			}
			return nil, fmt.Errorf("the service refused (%s):\n  %s", resp.Status, strings.Join(lines, "\n  "))
		}
		return nil, fmt.Errorf("the service refused: %s", resp.Status)
	}
	return resp, nil
}

func (c *serviceClient) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

type composeStatusReply struct {
	ImageStatus struct {
		Status   string `json:"status"`
		Progress *struct {
			Done  int `json:"done"`
			Total int `json:"total"`
		} `json:"progress"`
		UploadStatus *struct {
			Status  string `json:"status"`
			Options struct {
				URL string `json:"url"`
			} `json:"options"`
		} `json:"upload_status"`
		Error *struct {
			Reason  string `json:"reason"`
			Details string `json:"details"`
		} `json:"error"`
	} `json:"image_status"`
}

// newServiceClient adds --server and --token (defaults $KILN_SERVER and
// $KILN_TOKEN) to cmd and returns the client they configure.
func newServiceClient(cmd *cobra.Command) *serviceClient {
	c := &serviceClient{http: &http.Client{}}
	server := os.Getenv("KILN_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8086"
	}
	cmd.PersistentFlags().StringVar(&c.server, "server", server, "the service's address (default $KILN_SERVER)")
	cmd.PersistentFlags().StringVar(&c.token, "token", os.Getenv("KILN_TOKEN"), "API token, from kiln token create (default $KILN_TOKEN)")
	return c
}

// imageRequests are the API's image requests for the given types.
func imageRequests(arch string, types []string) []any {
	var out []any
	for _, t := range types {
		out = append(out, map[string]any{"architecture": arch, "image_type": t,
			"upload_request": map[string]any{"type": "local", "options": map[string]any{}}})
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
	cust, err := api.CustomizationsFromBlueprint(bp)
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
			req := map[string]any{
				"distribution": d, "image_name": bp.Name, "image_description": bp.Description, "client_id": "api",
				"image_requests": imageRequests(arch, []string{imageType}),
				"customizations": cust,
			}
			resp, err := c.request(cmd.Context(), http.MethodPost, "/compose", req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var out struct{ ID string }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, out.ID)
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
				var st composeStatusReply
				if err := c.getJSON(cmd.Context(), "/composes/"+args[0], &st); err != nil {
					return err
				}
				is := st.ImageStatus
				line := is.Status
				if is.Progress != nil {
					line += fmt.Sprintf(" (%d/%d stages)", is.Progress.Done, is.Progress.Total)
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
			resp, err := c.request(cmd.Context(), http.MethodGet, "/composes/"+args[0]+"/logs", nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(a.stdout, resp.Body)
			return err
		},
	}

	var output string
	download := &cobra.Command{
		Use:   "download ID",
		Short: "Download a compose's image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := c.request(cmd.Context(), http.MethodGet, "/composes/"+args[0]+"/download", nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			name := output
			if name == "" {
				name = "image"
				if _, params, ok := strings.Cut(resp.Header.Get("Content-Disposition"), "filename="); ok {
					name = filepath.Base(strings.Trim(params, `"`))
				}
			}
			if _, err := os.Stat(name); err == nil {
				return fmt.Errorf("%s exists already: remove it or pass --output", name)
			}
			tmp := name + ".partial"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, resp.Body)
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
			resp, err := c.request(cmd.Context(), http.MethodDelete, "/composes/"+args[0], nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
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
			var out struct {
				Meta struct{ Count int } `json:"meta"`
				Data []struct {
					ID        string    `json:"id"`
					CreatedAt time.Time `json:"created_at"`
					ImageName string    `json:"image_name"`
				} `json:"data"`
			}
			if err := c.getJSON(cmd.Context(), fmt.Sprintf("/composes?limit=%d&offset=%d", limit, offset), &out); err != nil {
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
