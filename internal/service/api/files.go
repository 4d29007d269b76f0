package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// composeJobs returns the caller's compose's jobs, or 404.
func (s *Server) composeJobs(r *http.Request, id string) ([]store.Job, error) {
	org := orgOf(r.Context())
	if _, err := s.cfg.Store.GetCompose(r.Context(), org, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound
		}
		return nil, err
	}
	return s.cfg.Store.ComposeJobs(r.Context(), org, id)
}

func finished(js []store.Job) bool {
	for _, j := range js {
		if j.State == store.JobPending || j.State == store.JobRunning {
			return false
		}
	}
	return true
}

// getComposeLogs sends the build log; while the compose runs, it keeps
// sending what is appended until the compose ends or the client leaves.
// The streams of one compose share one watcher (see follow), which wakes
// them when the log grows or the compose ends. The query's offset (a kiln
// extension) skips that many bytes of the log: a client whose stream was
// cut off asks again from what it already has.
func (s *Server) getComposeLogs(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	id := params["composeId"]
	js, err := s.composeJobs(r, id)
	if err != nil {
		return err
	}
	var watch *watcher
	if org := orgOf(r.Context()); !finished(js) {
		if !s.streams.acquire(org, s.cfg.LogStreams.PerOrg) {
			return tooManyLogStreams(s.cfg.LogStreams.PerOrg)
		}
		defer s.streams.release(org)
		var release func()
		watch, release = s.follow(org, id)
		defer release()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	off, err := logOffset(r)
	if err != nil {
		return err
	}
	send := func() {
		f, err := s.cfg.Artifacts.Open(r.Context(), id, artifacts.BuildLog)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := f.Seek(off, io.SeekStart); err == nil {
			n, _ := io.Copy(w, f)
			off += n
		}
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	w.WriteHeader(http.StatusOK)
	// The answer starts now, even while the compose waits for a worker
	// and has no log yet.
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if watch == nil {
		send()
		return nil
	}
	for {
		// The state comes before the read: a change after it closes
		// changed, and once done, all of the log is written.
		changed, done := watch.state()
		send()
		if done {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-changed:
		}
	}
}

// logOffset is the log query's offset: the bytes of the log the client
// already has; 0 when it gives none.
func logOffset(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("offset")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, newError(http.StatusBadRequest, fmt.Sprintf("query parameter offset: %q is not a number of bytes: give how many bytes of the log you already have (0 or more)", v))
	}
	return n, nil
}

// sendJSONFile sends the compose's stored JSON file as a one-element list.
func (s *Server) sendJSONFile(w http.ResponseWriter, r *http.Request, id, name string) error {
	if _, err := s.composeJobs(r, id); err != nil {
		return err
	}
	f, err := s.cfg.Artifacts.Open(r.Context(), id, name)
	if errors.Is(err, artifacts.ErrNotFound) {
		return newError(http.StatusNotFound, fmt.Sprintf("the compose has no %s yet: it is written when the build finishes", name))
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "[")
	_, _ = io.Copy(w, f)
	_, _ = io.WriteString(w, "]")
	return nil
}

func (s *Server) getComposeManifests(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	return s.sendJSONFile(w, r, params["composeId"], artifacts.Manifest)
}

func (s *Server) getComposeSBOMs(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	return s.sendJSONFile(w, r, params["composeId"], artifacts.SBOM)
}

type packageMetadata struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	SHA256  string `json:"sha256"`
}

// getComposeMetadata lists the packages the image was built from.
func (s *Server) getComposeMetadata(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	id := params["composeId"]
	if _, err := s.composeJobs(r, id); err != nil {
		return err
	}
	f, err := s.cfg.Artifacts.Open(r.Context(), id, artifacts.Manifest)
	if errors.Is(err, artifacts.ErrNotFound) {
		return newError(http.StatusNotFound, "the compose has no package list yet: it is known when the build finishes")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return err
	}
	pkgs := make([]packageMetadata, 0, len(m.Sources.Debs))
	for _, d := range m.Sources.Debs {
		pkgs = append(pkgs, packageMetadata{Name: d.Name, Version: d.Version, Arch: d.Arch, SHA256: d.SHA256})
	}
	writeJSON(w, http.StatusOK, map[string]any{"packages": pkgs})
	return nil
}

// imageResult is the compose's build result: its image's file name and
// checksum (empty until the build succeeded).
func imageResult(js []store.Job) workerproto.BuildResult {
	var res workerproto.BuildResult
	for _, j := range js {
		if j.Type == workerproto.KindBuild && j.State == store.JobSuccess {
			_ = json.Unmarshal(j.Result, &res)
		}
	}
	return res
}

// downloadCompose serves the image, with Range support; when the artifact
// store can presign, it redirects to a URL that downloads the image
// straight from the store instead.
func (s *Server) downloadCompose(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	id := params["composeId"]
	js, err := s.composeJobs(r, id)
	if err != nil {
		return err
	}
	res := imageResult(js)
	if res.Filename == "" {
		return newError(http.StatusNotFound, "the compose has no image (yet): download it once its status is success")
	}
	f, err := s.cfg.Artifacts.Open(r.Context(), id, res.Filename)
	if errors.Is(err, artifacts.ErrNotFound) {
		return newError(http.StatusNotFound, "the image has expired or was removed")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("X-Checksum-Sha256", res.SHA256)
	if p, ok := s.cfg.Artifacts.(artifacts.Presigner); ok {
		u, err := p.PresignGet(r.Context(), id, res.Filename, res.Filename, s.cfg.DownloadExpiry)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", res.Filename))
	http.ServeContent(w, r, res.Filename, fi.ModTime(), f)
	return nil
}
