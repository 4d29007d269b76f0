package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/kiln-project/kiln/internal/service/workerapi"
)

// Client speaks the worker API.
type Client struct {
	// BaseURL is the server's address, such as http://127.0.0.1:8086.
	BaseURL string
	// Key is the worker key jobs are requested with.
	Key  string
	HTTP *http.Client
}

// errLeaseLost: the server no longer counts the job as ours.
var errLeaseLost = errors.New("the job's lease was lost")

func (c *Client) do(ctx context.Context, method, path, token string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+workerapi.Prefix+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound && path != "/jobs":
		return resp.StatusCode, errLeaseLost
	case resp.StatusCode >= 400 && resp.StatusCode != http.StatusConflict:
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// RequestJob long-polls for a job; nil when none became ready.
func (c *Client) RequestJob(ctx context.Context, req workerapi.JobRequest) (*workerapi.Job, error) {
	var j workerapi.Job
	status, err := c.do(ctx, http.MethodPost, "/jobs", c.Key, jsonBody(req), &j)
	if err != nil || status == http.StatusNoContent {
		return nil, err
	}
	return &j, nil
}

// Heartbeat extends the lease and reports whether the job was canceled.
func (c *Client) Heartbeat(ctx context.Context, j *workerapi.Job) (canceled bool, err error) {
	status, err := c.do(ctx, http.MethodPost, "/jobs/"+j.ID+"/heartbeat", j.Token, nil, nil)
	return status == http.StatusConflict, err
}

// Progress reports done of total.
func (c *Client) Progress(ctx context.Context, j *workerapi.Job, done, total int) error {
	_, err := c.do(ctx, http.MethodPost, "/jobs/"+j.ID+"/progress", j.Token, jsonBody(map[string]int{"done": done, "total": total}), nil)
	return err
}

// Log appends to the compose's build log.
func (c *Client) Log(ctx context.Context, j *workerapi.Job, data []byte) error {
	_, err := c.do(ctx, http.MethodPost, "/jobs/"+j.ID+"/log", j.Token, bytes.NewReader(data), nil)
	return err
}

// PutFile uploads the file at path as the compose's file name.
func (c *Client) PutFile(ctx context.Context, j *workerapi.Job, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = c.do(ctx, http.MethodPut, "/jobs/"+j.ID+"/files/"+name, j.Token, f, nil)
	return err
}

// Finish ends the job with its result or its failure.
func (c *Client) Finish(ctx context.Context, j *workerapi.Job, result any, failure *workerapi.FinishError) error {
	f := workerapi.Finish{Error: failure}
	if failure == nil {
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		f.Result = b
	}
	_, err := c.do(ctx, http.MethodPost, "/jobs/"+j.ID+"/finish", j.Token, jsonBody(f), nil)
	return err
}
