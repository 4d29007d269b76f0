package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// uploadSessions carries a push's registry requests and keeps account of
// the blob upload sessions it opens (POST .../blobs/uploads/ answered 202
// with a Location) until each is committed (the PUT with the digest).
// After a failed or canceled push, cancelOpen deletes those left open, as
// the distribution specification's DELETE of an upload session does, so
// the registry holds no half-written blob for it. It also refuses plain
// HTTP unless the registry is configured insecure.
type uploadSessions struct {
	base      http.RoundTripper
	allowHTTP bool

	mu sync.Mutex
	// open maps an upload session's id to its latest location and the
	// authorization its requests carried.
	open map[string]openSession
}

type openSession struct {
	location      string
	authorization string
}

func newUploadSessions(base http.RoundTripper, allowHTTP bool) *uploadSessions {
	return &uploadSessions{base: base, allowHTTP: allowHTTP, open: map[string]openSession{}}
}

// RoundTrip implements http.RoundTripper.
func (s *uploadSessions) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !s.allowHTTP {
		return nil, fmt.Errorf("refusing plain HTTP to %s: the registry is reached over HTTPS (only a loopback registry may be configured insecure)", req.URL.Host)
	}
	const uploads = "/blobs/uploads/"
	i := strings.Index(req.URL.Path, uploads)
	if i < 0 {
		return s.base.RoundTrip(req)
	}
	id := req.URL.Path[i+len(uploads):]
	if req.Method == http.MethodPost && id == "" {
		// Opening a session is not canceled half-way: a canceled request
		// could leave a session the registry opened but whose location
		// never arrived, so nothing could delete it. The request has no
		// body and is quick; the push's cancellation is answered once it
		// is back.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), time.Minute)
		defer cancel()
		resp, err := s.base.RoundTrip(req.WithContext(ctx))
		if err == nil {
			s.track(req, id, resp)
			// The body is read now: ctx ends when this returns.
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if rerr != nil {
				err = rerr
			}
		}
		if cerr := req.Context().Err(); cerr != nil {
			return nil, cerr
		}
		return resp, err
	}
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	s.track(req, id, resp)
	return resp, nil
}

// track notes the session a request to the blob upload session id ("" for
// a new one) opened, moved or closed.
func (s *uploadSessions) track(req *http.Request, id string, resp *http.Response) {
	const uploads = "/blobs/uploads/"
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.Method == http.MethodPost && id == "" && resp.StatusCode == http.StatusAccepted:
		// A new session: its id is the last element of its location.
		if loc, err := resp.Location(); err == nil {
			if j := strings.Index(loc.Path, uploads); j >= 0 {
				s.open[loc.Path[j+len(uploads):]] = openSession{location: loc.String(), authorization: req.Header.Get("Authorization")}
			}
		}
	case req.Method == http.MethodPatch && id != "" && resp.StatusCode == http.StatusAccepted:
		// The session continues at its new location (its state may be
		// in the query).
		if loc, err := resp.Location(); err == nil {
			if _, ok := s.open[id]; ok {
				s.open[id] = openSession{location: loc.String(), authorization: req.Header.Get("Authorization")}
			}
		}
	case req.Method == http.MethodPut && id != "" && resp.StatusCode/100 == 2,
		req.Method == http.MethodDelete && id != "":
		delete(s.open, id)
	}
}

// cancelOpen deletes the upload sessions still open, with a context of
// its own: the push's may be the one canceled.
func (s *uploadSessions) cancelOpen() error {
	s.mu.Lock()
	open := make([]openSession, 0, len(s.open))
	for _, o := range s.open {
		open = append(open, o)
	}
	s.open = map[string]openSession{}
	s.mu.Unlock()
	var errs []error
	for _, o := range open {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, o.location, nil)
		if err != nil {
			cancel()
			errs = append(errs, err)
			continue
		}
		if o.authorization != "" {
			req.Header.Set("Authorization", o.authorization)
		}
		resp, err := s.base.RoundTrip(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// 404: the registry has dropped it already.
			if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
				err = fmt.Errorf("DELETE %s: %s", req.URL.Path, resp.Status)
			}
		}
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
