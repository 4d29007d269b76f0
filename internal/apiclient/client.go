// Package apiclient is an HTTP client of kiln's own REST API (the
// image-builder API that "kiln serve" answers): composes, their status,
// logs and images, and stored blueprints. It speaks in apimodel's types and
// links nothing of the server.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/kiln-project/kiln/internal/apimodel"
)

// Client calls one kiln service as one API token's holder.
type Client struct {
	// Server is the service's address, e.g. http://127.0.0.1:8086; the API
	// is under apimodel.Prefix there.
	Server string
	// Token is the API token sent as a bearer token; empty sends none.
	Token string
	// HTTP sends the requests; nil is http.DefaultClient.
	HTTP *http.Client
}

// Error is the service's refusal of a request, with the details of its
// error body, one per problem.
type Error struct {
	// StatusCode and Status are the reply's, e.g. 404 and "404 Not Found".
	StatusCode int
	Status     string
	// Details are the error items' details, each naming its field.
	Details []string
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return fmt.Sprintf("the service refused: %s", e.Status)
	}
	return fmt.Sprintf("the service refused (%s):\n  %s", e.Status, strings.Join(e.Details, "\n  "))
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 1 << 20

// do sends a request to the API path (below apimodel.Prefix) with body,
// if not nil, as JSON, and extra headers. A reply of 400 or more is an
// *Error; any other reply's body is the caller's to close.
func (c *Client) do(ctx context.Context, method, apiPath string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Server, "/")+apimodel.Prefix+apiPath, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the service at %s: %w", c.Server, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// readError reads a failing reply's error body.
func readError(resp *http.Response) error {
	e := &Error{StatusCode: resp.StatusCode, Status: resp.Status}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var list apimodel.ErrorList
	if json.Unmarshal(data, &list) == nil {
		for _, it := range list.Errors {
			e.Details = append(e.Details, it.Detail)
		}
	}
	return e
}

// call sends a request and decodes its JSON reply into out.
func (c *Client) call(ctx context.Context, method, apiPath string, body, out any) error {
	resp, err := c.do(ctx, method, apiPath, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the service's reply to %s %s: %w", method, apiPath, err)
	}
	return nil
}

// CreateCompose submits a compose and returns its ID.
func (c *Client) CreateCompose(ctx context.Context, req apimodel.ComposeRequest) (string, error) {
	var out apimodel.IDResponse
	if err := c.call(ctx, http.MethodPost, "/compose", req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// ComposeStatus returns a compose's status.
func (c *Client) ComposeStatus(ctx context.Context, id string) (*apimodel.ComposeStatus, error) {
	var out apimodel.ComposeStatus
	if err := c.call(ctx, http.MethodGet, "/composes/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Composes returns a page of the caller's composes, newest first.
func (c *Client) Composes(ctx context.Context, limit, offset int) (*apimodel.ComposesResponse, error) {
	var out apimodel.ComposesResponse
	q := url.Values{"limit": {fmt.Sprint(limit)}, "offset": {fmt.Sprint(offset)}}
	if err := c.call(ctx, http.MethodGet, "/composes?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCompose cancels a compose's unfinished jobs and hides it.
func (c *Client) DeleteCompose(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/composes/"+url.PathEscape(id), nil, nil)
}

// ComposeLogs returns a compose's build log; while the compose runs the
// reader follows it until the build ends. The caller closes it.
func (c *Client) ComposeLogs(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/composes/"+url.PathEscape(id)+"/logs", nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Image is a compose's image being downloaded.
type Image struct {
	// Body is the image; the caller closes it.
	Body io.ReadCloser
	// Filename is the name the service gives the image (no directory), or
	// "" when it gives none.
	Filename string
}

// Download starts downloading a compose's image, following the service's
// redirect to its artifact store if it answers with one.
func (c *Client) Download(ctx context.Context, id string) (*Image, error) {
	resp, err := c.do(ctx, http.MethodGet, "/composes/"+url.PathEscape(id)+"/download", nil, nil)
	if err != nil {
		return nil, err
	}
	img := &Image{Body: resp.Body}
	if _, params, ok := strings.Cut(resp.Header.Get("Content-Disposition"), "filename="); ok {
		if name := path.Base(strings.Trim(params, `"`)); name != "." && name != "/" {
			img.Filename = name
		}
	}
	return img, nil
}

// FindBlueprints returns the caller's blueprints named name (at most one:
// names are unique in an org).
func (c *Client) FindBlueprints(ctx context.Context, name string) ([]apimodel.BlueprintItem, error) {
	var out apimodel.BlueprintsResponse
	if err := c.call(ctx, http.MethodGet, "/blueprints?"+url.Values{"name": {name}}.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// CreateBlueprint stores a new blueprint and returns its ID.
func (c *Client) CreateBlueprint(ctx context.Context, req apimodel.BlueprintRequest) (string, error) {
	var out apimodel.IDResponse
	if err := c.call(ctx, http.MethodPost, "/blueprints", req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// UpdateBlueprint stores req as a new version of blueprint id.
func (c *Client) UpdateBlueprint(ctx context.Context, id string, req apimodel.BlueprintRequest) error {
	return c.call(ctx, http.MethodPut, "/blueprints/"+url.PathEscape(id), req, nil)
}

// Blueprint returns the latest version of a stored blueprint.
func (c *Client) Blueprint(ctx context.Context, id string) (*apimodel.BlueprintResponse, error) {
	var out apimodel.BlueprintResponse
	if err := c.call(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PushBlueprint stores req as a new blueprint, or as a new version of the
// caller's blueprint with its name, and returns its ID and the version
// stored.
func (c *Client) PushBlueprint(ctx context.Context, req apimodel.BlueprintRequest) (id string, version int, err error) {
	found, err := c.FindBlueprints(ctx, req.Name)
	if err != nil {
		return "", 0, err
	}
	if len(found) > 0 {
		id = found[0].ID
		err = c.UpdateBlueprint(ctx, id, req)
	} else {
		id, err = c.CreateBlueprint(ctx, req)
	}
	if err != nil {
		return "", 0, err
	}
	stored, err := c.Blueprint(ctx, id)
	if err != nil {
		return "", 0, err
	}
	return id, stored.Version, nil
}

// ExportBlueprint returns a stored blueprint's latest version as an
// osbuild blueprint file in TOML, without password hashes.
func (c *Client) ExportBlueprint(ctx context.Context, id string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/blueprints/"+url.PathEscape(id)+"/export", nil, http.Header{"Accept": {"application/toml"}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
