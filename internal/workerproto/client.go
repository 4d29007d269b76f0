package workerproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Client speaks the worker API. A request that fails for a while — the
// connection fails, or the answer is 502, 503 or 504 — is tried again,
// waiting longer each time, for as long as its context lives: a worker
// that loses the server for a while keeps its finished work. Other
// answers, 4xx included, are final.
type Client struct {
	// BaseURL is the server's address, such as http://127.0.0.1:8086.
	BaseURL string
	// Fallbacks are further addresses of the same service (its other
	// replicas, when no load balancer stands in front of them). A request
	// the current server does not answer goes to the next one at once;
	// the client waits only after it went round them all.
	Fallbacks []string
	current   atomic.Int64
	// Key is the worker key jobs are requested with.
	Key  string
	HTTP *http.Client
	// MinBackoff is the first wait before a request is tried again; each
	// wait doubles it up to MaxBackoff. Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
}

// ErrLeaseLost: the server no longer counts the job as ours (it was
// requeued, canceled or finished, or the worker token it was leased with
// was revoked). Whatever the worker does with the job is lost.
var ErrLeaseLost = errors.New("the job's lease was lost")

// server is the address requests go to now.
func (c *Client) server() string {
	n := int64(1 + len(c.Fallbacks))
	i := c.current.Load() % n
	if i == 0 {
		return c.BaseURL
	}
	return c.Fallbacks[i-1]
}

// failover moves on from server tried, unless another request did
// already, and tells whether servers remain untried in this round.
func (c *Client) failover(tries int) bool {
	if len(c.Fallbacks) == 0 {
		return false
	}
	c.current.Add(1)
	return tries%(1+len(c.Fallbacks)) != 0
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

// transient says whether an answer may be different when asked again.
func transient(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// send makes the request newReq returns until an answer comes that is not
// transient, and returns it with its body (at most 1 MiB) read. newReq is
// called for each try, so a body is read anew each time.
// With failover, a failed try moves on to the next of the service's
// addresses.
func (c *Client) send(ctx context.Context, failover bool, newReq func() (*http.Request, error)) (*http.Response, []byte, error) {
	wait, maxWait := c.MinBackoff, c.MaxBackoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	for tries := 1; ; tries++ {
		req, err := newReq()
		if err != nil {
			return nil, nil, err
		}
		resp, err := c.httpClient().Do(req)
		var data []byte
		if err == nil {
			data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if err == nil && !transient(resp.StatusCode) {
				return resp, data, nil
			}
			if err == nil {
				err = fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
			}
		}
		if ctx.Err() != nil {
			return nil, nil, err
		}
		if failover && c.failover(tries) {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

func (c *Client) do(ctx context.Context, method, path, token string, body []byte, out any) (int, error) {
	return c.doBody(ctx, method, path, token, func() (io.Reader, int64) { return bytes.NewReader(body), int64(len(body)) }, out)
}

// doBody makes a worker API request whose body body returns, anew for each
// try.
func (c *Client) doBody(ctx context.Context, method, path, token string, body func() (io.Reader, int64), out any) (int, error) {
	resp, data, err := c.send(ctx, true, func() (*http.Request, error) {
		rd, n := body()
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.server(), "/")+Prefix+path, rd)
		if err != nil {
			return nil, err
		}
		req.ContentLength = n
		if n == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Authorization", "Bearer "+token)
		return req, nil
	})
	if err != nil {
		return 0, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && path != RouteJobs:
		return resp.StatusCode, ErrLeaseLost
	case resp.StatusCode == http.StatusUnauthorized && path != RouteJobs:
		// The worker token the job was leased with was revoked: the
		// job is someone else's now.
		return resp.StatusCode, fmt.Errorf("%w: the worker token was revoked", ErrLeaseLost)
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

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// RequestJob long-polls for a job; nil when none became ready.
func (c *Client) RequestJob(ctx context.Context, req JobRequest) (*Job, error) {
	var j Job
	status, err := c.do(ctx, http.MethodPost, RouteJobs, c.Key, jsonBody(req), &j)
	if err != nil || status == http.StatusNoContent {
		return nil, err
	}
	return &j, nil
}

// RequestJobs long-polls for up to req.Max jobs (at least one); none
// when none became ready. It reads a server's answer of one Job (from a
// server that predates JobRequest.Max, or to a Max of 0 or 1) as a batch
// of one.
func (c *Client) RequestJobs(ctx context.Context, req JobRequest) ([]Job, error) {
	var answer struct {
		Job
		Jobs []Job `json:"jobs"`
	}
	status, err := c.do(ctx, http.MethodPost, RouteJobs, c.Key, jsonBody(req), &answer)
	if err != nil || status == http.StatusNoContent {
		return nil, err
	}
	if answer.Jobs != nil {
		return answer.Jobs, nil
	}
	if answer.ID == "" {
		return nil, fmt.Errorf("POST %s: the answer holds no job", RouteJobs)
	}
	return []Job{answer.Job}, nil
}

// Heartbeat extends the lease and reports whether the job was canceled.
func (c *Client) Heartbeat(ctx context.Context, j *Job) (canceled bool, err error) {
	status, err := c.do(ctx, http.MethodPost, Path(RouteHeartbeat, j.ID), j.Token, nil, nil)
	return status == http.StatusConflict, err
}

// Progress reports done of total.
func (c *Client) Progress(ctx context.Context, j *Job, done, total int) error {
	return c.ProgressStep(ctx, j, Progress{Done: done, Total: total})
}

// ProgressStep reports a progress with its step (an upload's).
func (c *Client) ProgressStep(ctx context.Context, j *Job, p Progress) error {
	_, err := c.do(ctx, http.MethodPost, Path(RouteProgress, j.ID), j.Token, jsonBody(p), nil)
	return err
}

// Log appends to the compose's build log.
func (c *Client) Log(ctx context.Context, j *Job, data []byte) error {
	_, err := c.do(ctx, http.MethodPost, Path(RouteLog, j.ID), j.Token, data, nil)
	return err
}

// PutFile uploads the file at path as the compose's file name: straight
// to the artifact store in presigned parts when the server offers that,
// else (and for an empty file) through the server.
func (c *Client) PutFile(ctx context.Context, j *Job, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	var offer UploadOffer
	if size == 0 {
		// An empty part is not worth the round trips.
	} else if _, err := c.do(ctx, http.MethodPost, Path(RouteUploads, j.ID), j.Token, jsonBody(UploadRequest{Name: name, Size: size}), &offer); err != nil {
		return err
	}
	if !offer.Presigned {
		_, err = c.doBody(ctx, http.MethodPut, Path(RouteFile, j.ID, name), j.Token,
			func() (io.Reader, int64) { return io.NewSectionReader(f, 0, size), size }, nil)
		return err
	}
	parts, err := c.putParts(ctx, f, size, offer.Upload)
	if err != nil {
		// Best effort: the server's retention drops what is left anyway.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = c.do(actx, http.MethodDelete, Path(RouteUpload, j.ID, offer.ID)+"?name="+url.QueryEscape(name), j.Token, nil, nil)
		return fmt.Errorf("uploading %s: %w", name, err)
	}
	_, err = c.do(ctx, http.MethodPost, Path(RouteCompleteUpload, j.ID, offer.ID), j.Token,
		jsonBody(UploadCompletion{Name: name, Size: size, Parts: parts}), nil)
	return err
}

// putParts sends each part of f to its presigned URL, read from the file
// for each try, and returns the parts' ETags.
func (c *Client) putParts(ctx context.Context, f *os.File, size int64, up Upload) ([]CompletedPart, error) {
	if up.PartSize <= 0 || int64(len(up.Parts)) < (size+up.PartSize-1)/up.PartSize {
		return nil, fmt.Errorf("the server offered %d parts of %d bytes for %d bytes", len(up.Parts), up.PartSize, size)
	}
	var done []CompletedPart
	for i, p := range up.Parts {
		off := int64(i) * up.PartSize
		n := max(0, min(up.PartSize, size-off))
		resp, data, err := c.send(ctx, false, func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.URL, io.NewSectionReader(f, off, n))
			if err != nil {
				return nil, err
			}
			req.ContentLength = n
			if n == 0 {
				req.Body = http.NoBody
			}
			return req, nil
		})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("part %d: %s: %s", p.Number, resp.Status, bytes.TrimSpace(data))
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			return nil, fmt.Errorf("part %d: the store answered no ETag", p.Number)
		}
		done = append(done, CompletedPart{Number: p.Number, ETag: etag})
	}
	return done, nil
}

// Finish ends the job with its result or its failure.
func (c *Client) Finish(ctx context.Context, j *Job, result any, failure *FinishError) error {
	f := Finish{Error: failure}
	if failure == nil {
		b, err := json.Marshal(result)
		if err != nil {
			return err
		}
		f.Result = b
	}
	_, err := c.do(ctx, http.MethodPost, Path(RouteFinish, j.ID), j.Token, jsonBody(f), nil)
	return err
}
