// Package workerapi serves the HTTP API workers take jobs through, under
// workerproto.Prefix, over the queue and the artifact store. Its routes
// and wire types are the contract in internal/workerproto, which the
// workers' client speaks too. The in-process workers of `kiln serve` use
// the same API over loopback.
package workerapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/bodydeadline"
	"github.com/kiln-project/kiln/internal/service/metrics"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// Config configures the worker API. Zero values mean the defaults.
type Config struct {
	Queue     store.Queue
	Artifacts artifacts.Store
	// WorkerKey is a secret workers request jobs with (the in-process
	// workers' one, or one given to the service).
	WorkerKey string
	// Tokens, when set, are further secrets remote workers may request
	// jobs with (kiln worker-token create).
	Tokens store.WorkerTokens
	// Lease is how long a job stays leased without a heartbeat. Default 2m.
	Lease time.Duration
	// PollTimeout bounds a request for a job when none is ready. Default 25s.
	PollTimeout time.Duration
	// BodyTimeout bounds how long a request's body may stall: the
	// deadline moves on with each piece that arrives, so a slow upload
	// that keeps sending goes on. Default 30s.
	BodyTimeout time.Duration
	// MaxFileBytes bounds an uploaded file. Default 64 GiB.
	MaxFileBytes int64
	// UploadExpiry is how long the presigned part URLs of an upload last,
	// when the artifact store can presign. Default 6h.
	UploadExpiry time.Duration
	// Changed, when set, is told the compose whose log grew or whose job
	// finished, so that this replica's log streams send it at once.
	Changed func(composeID string)
	Log     *slog.Logger
	// Metrics, when set, records queue waits, job durations and workers.
	Metrics *metrics.Metrics
	// Workers, when set, records the workers that ask for jobs, the
	// architectures they declare and when they were last heard from
	// (their requests for jobs and their heartbeats).
	Workers store.Workers
	// SeenEvery is the least time between two records of one worker
	// that declares the same architectures: a worker polls and
	// heartbeats often, and a write each time would cost more than
	// knowing it to the second is worth. Default 15s, well within
	// store.ConnectedWindow.
	SeenEvery time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler returns the worker API's handler, to mount at
// workerproto.Prefix.
func Handler(cfg Config) http.Handler {
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 25 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 64 << 30
	}
	if cfg.UploadExpiry <= 0 {
		cfg.UploadExpiry = 6 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SeenEvery <= 0 {
		cfg.SeenEvery = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &api{cfg: cfg, seen: map[string]seenRecord{}}
	mux := http.NewServeMux()
	const p = workerproto.Prefix
	mux.HandleFunc("POST "+p+workerproto.RouteJobs, a.requestJob)
	mux.HandleFunc("POST "+p+workerproto.RouteHeartbeat, a.leased(a.heartbeat))
	mux.HandleFunc("POST "+p+workerproto.RouteProgress, a.leased(a.progress))
	mux.HandleFunc("POST "+p+workerproto.RouteLog, a.leased(a.appendLog))
	mux.HandleFunc("PUT "+p+workerproto.RouteFile, a.leased(a.putFile))
	mux.HandleFunc("GET "+p+workerproto.RouteFile, a.leased(a.getFile))
	mux.HandleFunc("POST "+p+workerproto.RouteUploads, a.leased(a.createUpload))
	mux.HandleFunc("POST "+p+workerproto.RouteCompleteUpload, a.leased(a.completeUpload))
	mux.HandleFunc("DELETE "+p+workerproto.RouteUpload, a.leased(a.abortUpload))
	mux.HandleFunc("POST "+p+workerproto.RouteFinish, a.leased(a.finish))
	return a.withBodyDeadline(routed(mux))
}

// changed tells this replica's log streams that the compose's log grew or
// one of its jobs ended.
func (a *api) changed(composeID string) {
	if a.cfg.Changed != nil {
		a.cfg.Changed(composeID)
	}
}

// withBodyDeadline cuts off a request whose body stalls for the body
// timeout; a body that keeps arriving, however slowly, goes on.
func (a *api) withBodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bodydeadline.Set(w, r, a.cfg.BodyTimeout, true)
		next.ServeHTTP(w, r)
	})
}

// bodyStalled answers a request whose body stopped arriving.
func (a *api) bodyStalled(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	fail(w, http.StatusRequestTimeout, "the request body stopped arriving for %s: send it without pausing", a.cfg.BodyTimeout)
}

// routed answers a path the API does not know, or a method it does not
// take there (with Allow), in the API's error shape.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allowed []string
		for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodPost, http.MethodPut} {
			try := r.Clone(r.Context())
			try.Method = m
			if _, pattern := mux.Handler(try); pattern != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) == 0 {
			fail(w, http.StatusNotFound, "no worker API operation at %s", r.URL.Path)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		fail(w, http.StatusMethodNotAllowed, "%s is not allowed on %s: it takes %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))
	})
}

type api struct {
	cfg Config

	mu sync.Mutex
	// seen is what this replica last recorded of each worker.
	seen map[string]seenRecord
}

// seenRecord is what was last recorded of a worker: its arches (joined)
// and when.
type seenRecord struct {
	arches string
	at     time.Time
}

// sawWorker records that the worker name asked for jobs of arches, unless
// this replica recorded the same within SeenEvery. A failed write is
// logged, never the worker's problem.
func (a *api) sawWorker(ctx context.Context, name string, arches []string) {
	if a.cfg.Workers == nil || name == "" {
		return
	}
	now, joined := a.cfg.Now(), strings.Join(arches, ",")
	if !a.due(name, joined, now) {
		return
	}
	if err := a.cfg.Workers.SeeWorker(ctx, store.SeenWorker{Name: name, Arches: arches, LastSeen: now}); err != nil {
		a.cfg.Log.Error("recording a worker", "worker", name, "err", err)
		a.forget(name)
	}
}

// heardWorker records that the worker name, busy with a job, was heard
// from, at most once per SeenEvery.
func (a *api) heardWorker(ctx context.Context, name string) {
	if a.cfg.Workers == nil || name == "" {
		return
	}
	now := a.cfg.Now()
	a.mu.Lock()
	arches := a.seen[name].arches
	a.mu.Unlock()
	if !a.due(name, arches, now) {
		return
	}
	if err := a.cfg.Workers.TouchWorker(ctx, name, now); err != nil {
		a.cfg.Log.Error("recording a worker's heartbeat", "worker", name, "err", err)
		a.forget(name)
	}
}

// due tells whether a record of the worker with arches at now is due,
// and if so notes it as made.
func (a *api) due(name, arches string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if last, ok := a.seen[name]; ok && last.arches == arches && now.Sub(last.at) < a.cfg.SeenEvery {
		return false
	}
	if len(a.seen) >= maxSeen {
		clear(a.seen) // many names, most of them gone: start over
	}
	a.seen[name] = seenRecord{arches: arches, at: now}
	return true
}

// forget drops what was noted of a worker whose record failed, so that
// the next request tries again.
func (a *api) forget(name string) {
	a.mu.Lock()
	delete(a.seen, name)
	a.mu.Unlock()
}

// maxSeen bounds the workers a replica remembers having recorded.
const maxSeen = 10000

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decodeJSON reads exactly one JSON value into v: anything after it but
// white space is refused.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON value at byte %d", dec.InputOffset())
	}
	return nil
}

// fail answers an error in the API's error shape; a 401 says how to
// authenticate.
func fail(w http.ResponseWriter, status int, format string, args ...any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kiln-worker"`)
	}
	reply(w, status, map[string]any{"errors": []map[string]string{{"title": http.StatusText(status), "detail": fmt.Sprintf(format, args...)}}})
}

func bearer(r *http.Request) string {
	s, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(s)
}

// requestJob long-polls for a job: it answers 204 when none became ready
// within the poll timeout.
func (a *api) requestJob(w http.ResponseWriter, r *http.Request) {
	tokenID, ok := a.workerAuthorized(r)
	if !ok {
		fail(w, http.StatusUnauthorized, "request jobs with a worker token (kiln worker-token create)")
		return
	}
	var req workerproto.JobRequest
	if err := decodeJSON(io.LimitReader(r.Body, 64<<10), &req); err != nil || len(req.Types) == 0 || len(req.Types) > 16 || len(req.Arches) > 16 || req.Max < 0 {
		fail(w, http.StatusBadRequest, "expected {types: [...], arches: [...], worker, max (optional, 0 or more)}")
		return
	}
	take := min(max(req.Max, 1), workerproto.MaxJobsPerRequest)
	if a.cfg.Metrics != nil {
		a.cfg.Metrics.WorkerSeen(req.Worker, time.Now(), req.Arches...)
	}
	a.sawWorker(r.Context(), req.Worker, req.Arches)
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PollTimeout)
	defer cancel()
	for {
		wake := a.cfg.Queue.Wait()
		ls, err := a.cfg.Queue.DequeueBatch(ctx, req.Types, req.Arches, store.Worker{Name: req.Worker, TokenID: tokenID}, a.cfg.Lease, take)
		if err == nil {
			jobs := make([]workerproto.Job, len(ls))
			for i, l := range ls {
				if a.cfg.Metrics != nil && l.Job.StartedAt != nil {
					a.cfg.Metrics.QueueWait.WithLabelValues(l.Job.Type, l.Job.Arch).Observe(l.Job.StartedAt.Sub(l.Job.QueuedAt).Seconds())
				}
				lctx := queueWaitSpan(r.Context(), l.Job, req.Worker)
				a.cfg.Log.InfoContext(lctx, "job leased", "job_id", l.Job.ID, "compose_id", l.Job.ComposeID, "org_id", l.Job.OrgID, "type", l.Job.Type, "worker", req.Worker)
				jobs[i] = workerproto.Job{ID: l.Job.ID, Token: l.Token, ComposeID: l.Job.ComposeID, Type: l.Job.Type, Arch: l.Job.Arch,
					Args: l.Job.Args, DepResults: l.DepResults, LeaseSeconds: int(a.cfg.Lease / time.Second), TraceParent: l.Job.TraceParent}
			}
			if req.Max <= 1 {
				// The answer every worker read before Max existed.
				reply(w, http.StatusCreated, jobs[0])
				return
			}
			reply(w, http.StatusCreated, workerproto.JobBatch{Jobs: jobs})
			return
		}
		if !errors.Is(err, store.ErrNoJob) {
			if ctx.Err() != nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			a.cfg.Log.Error("dequeueing a job", "err", err)
			fail(w, http.StatusInternalServerError, "the queue failed")
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

// workerAuthorized tells whether the request carries the worker key or a
// worker token that is not revoked, and which token ("" for the key).
func (a *api) workerAuthorized(r *http.Request) (string, bool) {
	secret := bearer(r)
	if secret == "" {
		return "", false
	}
	if a.cfg.WorkerKey != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(a.cfg.WorkerKey)) == 1 {
		return "", true
	}
	if a.cfg.Tokens == nil {
		return "", false
	}
	tok, err := a.cfg.Tokens.WorkerTokenByHash(r.Context(), store.HashSecret(secret))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.cfg.Log.Error("checking a worker token", "err", err)
	}
	return tok.ID, err == nil
}

// leaseError answers a lease call the queue refused: 401 when the
// worker's token was revoked (it is no longer trusted), 404 when the
// lease was lost (requeued, canceled or finished).
func (a *api) leaseError(w http.ResponseWriter, id string, err error) {
	switch {
	case errors.Is(err, store.ErrLeaseRevoked):
		fail(w, http.StatusUnauthorized, "job %s was leased with a worker token that has been revoked: the job went back to the queue", id)
	case errors.Is(err, store.ErrLeaseLost):
		fail(w, http.StatusNotFound, "job %s is not leased with this token (it was requeued, canceled or finished)", id)
	default:
		a.cfg.Log.Error("checking a lease", "job_id", id, "err", err)
		fail(w, http.StatusInternalServerError, "the queue failed")
	}
}

// leased runs h for a request made with the job's lease token.
func (a *api) leased(h func(http.ResponseWriter, *http.Request, store.Job, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, token := r.PathValue("id"), bearer(r)
		j, err := a.cfg.Queue.Leased(r.Context(), id, token)
		if err != nil {
			a.leaseError(w, id, err)
			return
		}
		h(w, r, j, token)
	}
}

func (a *api) heartbeat(w http.ResponseWriter, r *http.Request, j store.Job, token string) {
	a.heardWorker(r.Context(), j.Worker)
	switch err := a.cfg.Queue.Heartbeat(r.Context(), j.ID, token, a.cfg.Lease); {
	case errors.Is(err, store.ErrCanceled):
		reply(w, http.StatusConflict, workerproto.Heartbeat{Canceled: true})
	case err != nil:
		a.leaseError(w, j.ID, err)
	default:
		reply(w, http.StatusOK, workerproto.Heartbeat{Canceled: false})
	}
}

func (a *api) progress(w http.ResponseWriter, r *http.Request, j store.Job, token string) {
	var p workerproto.Progress
	if err := decodeJSON(io.LimitReader(r.Body, 4<<10), &p); err != nil || p.Done < 0 || p.Total < p.Done {
		fail(w, http.StatusBadRequest, "expected {done, total} with 0 <= done <= total")
		return
	}
	if err := a.cfg.Queue.SetProgress(r.Context(), j.ID, token, store.Progress{Done: p.Done, Total: p.Total, Step: p.Step}); err != nil {
		a.leaseError(w, j.ID, err)
		return
	}
	reply(w, http.StatusOK, nil)
}

func (a *api) appendLog(w http.ResponseWriter, r *http.Request, j store.Job, _ string) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if bodydeadline.Exceeded(err) {
		a.bodyStalled(w)
		return
	}
	if err != nil || len(data) > 1<<20 {
		fail(w, http.StatusRequestEntityTooLarge, "send the log in pieces of at most 1 MiB")
		return
	}
	if err := a.cfg.Artifacts.Append(r.Context(), j.ComposeID, artifacts.BuildLog, data); err != nil {
		a.cfg.Log.ErrorContext(traced(r.Context(), j), "appending to a build log", "compose_id", j.ComposeID, "err", err)
		fail(w, http.StatusInternalServerError, "could not store the log")
		return
	}
	a.changed(j.ComposeID)
	reply(w, http.StatusOK, nil)
}

func (a *api) putFile(w http.ResponseWriter, r *http.Request, j store.Job, _ string) {
	name := r.PathValue("name")
	n, err := a.cfg.Artifacts.Put(r.Context(), j.ComposeID, name, http.MaxBytesReader(w, r.Body, a.cfg.MaxFileBytes))
	if bodydeadline.Exceeded(err) {
		a.bodyStalled(w)
		return
	}
	if err != nil {
		a.cfg.Log.ErrorContext(traced(r.Context(), j), "storing a file", "compose_id", j.ComposeID, "name", name, "err", err)
		fail(w, http.StatusBadRequest, "could not store %s: %v", name, err)
		return
	}
	reply(w, http.StatusOK, workerproto.StoredFile{Size: n})
}

// getFile serves a file of the job's compose (the built image, to the
// upload job that delivers it), with ranges so that a broken download
// goes on where it stopped. A store that presigns sends the worker to it.
func (a *api) getFile(w http.ResponseWriter, r *http.Request, j store.Job, _ string) {
	name := r.PathValue("name")
	if p, ok := a.cfg.Artifacts.(artifacts.Presigner); ok {
		u, err := p.PresignGet(r.Context(), j.ComposeID, name, name, time.Hour)
		if err != nil {
			a.cfg.Log.ErrorContext(traced(r.Context(), j), "presigning a file for a worker", "compose_id", j.ComposeID, "name", name, "err", err)
			fail(w, http.StatusInternalServerError, "could not presign %s", name)
			return
		}
		http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
		return
	}
	f, err := a.cfg.Artifacts.Open(r.Context(), j.ComposeID, name)
	if errors.Is(err, artifacts.ErrNotFound) {
		fail(w, http.StatusGone, "the compose has no file %s (retention may have removed it)", name)
		return
	}
	if err != nil {
		a.cfg.Log.ErrorContext(traced(r.Context(), j), "opening a file for a worker", "compose_id", j.ComposeID, "name", name, "err", err)
		fail(w, http.StatusInternalServerError, "could not open %s", name)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not open %s", name)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// createUpload starts an upload of a file straight to the artifact store,
// when the store can presign.
func (a *api) createUpload(w http.ResponseWriter, r *http.Request, j store.Job, _ string) {
	var req workerproto.UploadRequest
	if err := decodeJSON(io.LimitReader(r.Body, 64<<10), &req); err != nil || req.Name == "" || req.Size < 0 {
		fail(w, http.StatusBadRequest, "expected {name, size}")
		return
	}
	if req.Size > a.cfg.MaxFileBytes {
		fail(w, http.StatusRequestEntityTooLarge, "%s is %d bytes; files may have at most %d", req.Name, req.Size, a.cfg.MaxFileBytes)
		return
	}
	p, ok := a.cfg.Artifacts.(artifacts.Presigner)
	if !ok {
		reply(w, http.StatusOK, workerproto.UploadOffer{})
		return
	}
	up, err := p.CreateUpload(r.Context(), j.ComposeID, req.Name, req.Size, a.cfg.UploadExpiry)
	if err != nil {
		a.cfg.Log.ErrorContext(traced(r.Context(), j), "starting an upload", "compose_id", j.ComposeID, "name", req.Name, "err", err)
		fail(w, http.StatusBadRequest, "could not start the upload of %s: %v", req.Name, err)
		return
	}
	a.cfg.Log.InfoContext(traced(r.Context(), j), "upload started", "job_id", j.ID, "compose_id", j.ComposeID, "name", req.Name, "size", req.Size, "parts", len(up.Parts))
	reply(w, http.StatusOK, workerproto.UploadOffer{Presigned: true, Upload: up})
}

// completeUpload assembles an upload's parts into the file and checks its
// size.
func (a *api) completeUpload(w http.ResponseWriter, r *http.Request, j store.Job, _ string) {
	p, ok := a.cfg.Artifacts.(artifacts.Presigner)
	if !ok {
		fail(w, http.StatusBadRequest, "the artifact store takes no direct uploads")
		return
	}
	var c workerproto.UploadCompletion
	if err := decodeJSON(io.LimitReader(r.Body, 4<<20), &c); err != nil || c.Name == "" || len(c.Parts) == 0 {
		fail(w, http.StatusBadRequest, "expected {name, size, parts: [{number, etag}]}")
		return
	}
	if c.Size > a.cfg.MaxFileBytes {
		fail(w, http.StatusRequestEntityTooLarge, "files may have at most %d bytes", a.cfg.MaxFileBytes)
		return
	}
	if err := p.CompleteUpload(r.Context(), j.ComposeID, c.Name, r.PathValue("upload"), c.Parts, c.Size); err != nil {
		a.cfg.Log.ErrorContext(traced(r.Context(), j), "completing an upload", "compose_id", j.ComposeID, "name", c.Name, "err", err)
		fail(w, http.StatusBadRequest, "could not complete the upload of %s: %v", c.Name, err)
		return
	}
	reply(w, http.StatusOK, workerproto.StoredFile{Size: c.Size})
}

// abortUpload drops an upload the worker gave up on.
func (a *api) abortUpload(w http.ResponseWriter, r *http.Request, j store.Job, _ string) {
	p, ok := a.cfg.Artifacts.(artifacts.Presigner)
	if !ok {
		reply(w, http.StatusOK, nil)
		return
	}
	if err := p.AbortUpload(r.Context(), j.ComposeID, r.URL.Query().Get("name"), r.PathValue("upload")); err != nil {
		fail(w, http.StatusBadRequest, "could not abort the upload: %v", err)
		return
	}
	reply(w, http.StatusOK, nil)
}

func (a *api) finish(w http.ResponseWriter, r *http.Request, j store.Job, token string) {
	var f workerproto.Finish
	if err := decodeJSON(io.LimitReader(r.Body, 16<<20), &f); err != nil {
		fail(w, http.StatusBadRequest, "expected {result} or {error: {reason, details, retry}}")
		return
	}
	var jerr *store.JobError
	if f.Error != nil {
		jerr = &store.JobError{Reason: f.Error.Reason, Details: workerproto.EncodeDetails(f.Error.Details, f.Error.Problems), Retry: f.Error.Retry}
	}
	if err := a.cfg.Queue.Finish(r.Context(), j.ID, token, f.Result, jerr); err != nil {
		a.leaseError(w, j.ID, err)
		return
	}
	if a.cfg.Metrics != nil {
		// One read of the compose's jobs serves both metrics: the image
		// type is in its depsolve job's arguments, and whether it is over
		// in their states.
		jobs, err := a.cfg.Queue.ComposeJobs(r.Context(), j.OrgID, j.ComposeID)
		if err != nil {
			a.cfg.Log.WarnContext(traced(r.Context(), j), "reading a compose's jobs for its metrics", "compose_id", j.ComposeID, "err", err)
		}
		if j.StartedAt != nil {
			outcome := "success"
			if jerr != nil {
				outcome = "failure"
			}
			a.cfg.Metrics.JobDuration.WithLabelValues(j.Type, j.Arch, imageTypeOf(jobs), outcome).Observe(time.Since(*j.StartedAt).Seconds())
		}
		if err == nil {
			a.countCompose(j, f.Error, jobs)
		}
	}
	a.changed(j.ComposeID)
	a.cfg.Log.InfoContext(traced(r.Context(), j), "job finished", "job_id", j.ID, "compose_id", j.ComposeID, "org_id", j.OrgID, "type", j.Type, "failed", jerr != nil)
	reply(w, http.StatusOK, nil)
}

// imageTypeOf is the image type a compose's jobs build, from its depsolve
// job's arguments; "" when they do not say (jobs could not be read).
func imageTypeOf(jobs []store.Job) string {
	for _, o := range jobs {
		if o.Type != workerproto.KindDepsolve {
			continue
		}
		var args workerproto.DepsolveArgs
		if json.Unmarshal(o.Args, &args) == nil {
			return args.ImageType
		}
	}
	return ""
}

// countCompose counts j's compose in kiln_composes_finished_total when the
// finish of j, which failed with failure (nil: succeeded), ended the
// compose's last unfinished job: success, failure, or user_error when the
// failure was what the user submitted. A canceled compose is not counted.
// A failure is the user's when its worker says so (UserError) or when it
// carries blueprint problems; a worker older than the UserError flag
// sends only the problems, so its other failures count as the service's.
// Two jobs of one compose finished at the same instant on two replicas
// may both count it; jobs given up by the queue (their worker vanished)
// never pass here: the service's rescue loop counts those.
func (a *api) countCompose(j store.Job, failure *workerproto.FinishError, jobs []store.Job) {
	userError := failure != nil && (failure.UserError || len(failure.Problems) > 0)
	for _, o := range jobs {
		switch o.State {
		case store.JobPending, store.JobRunning:
			return // not over yet; this job may have been requeued, too
		case store.JobFailure:
			if o.ID != j.ID && o.Error != nil {
				if _, problems := workerproto.DecodeDetails(o.Error.Details); len(problems) > 0 {
					userError = true
				}
			}
		}
	}
	if store.ComposeCancelled(jobs) {
		return
	}
	outcome := composeOutcome(store.ComposeStatus(jobs, workerproto.KindUpload), userError)
	if outcome == "" {
		return
	}
	a.cfg.Metrics.ComposeFinished(outcome)
}

// composeOutcome is the kiln_composes_finished_total outcome of a compose
// that ended with status, or "" for a status that is not final.
func composeOutcome(status string, userError bool) string {
	switch {
	case status == store.ComposeSuccess:
		return metrics.OutcomeSuccess
	case status != store.ComposeFailure:
		return ""
	case userError:
		return metrics.OutcomeUserError
	default:
		return metrics.OutcomeFailure
	}
}

// traced is ctx in the trace of j's compose (when its request carried
// one): log lines about the job made with it carry the trace's ID.
func traced(ctx context.Context, j store.Job) context.Context {
	return telemetry.Extract(ctx, j.TraceParent)
}

// queueWaitSpan records the time j waited in the queue, from when it was
// queued until worker leased it, as a span of its compose's trace, and
// returns a context in it. A job that came with no trace context (created
// while tracing was off) gets none: a trace of its queue wait alone would
// tell nothing.
func queueWaitSpan(ctx context.Context, j store.Job, worker string) context.Context {
	ctx = traced(ctx, j)
	if j.StartedAt == nil || j.TraceParent == "" {
		return ctx
	}
	ctx, span := telemetry.Tracer().Start(ctx, "queue wait", trace.WithTimestamp(j.QueuedAt), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(telemetry.ComposeID.String(j.ComposeID), telemetry.JobID.String(j.ID), telemetry.JobType.String(j.Type),
			telemetry.Arch.String(j.Arch), telemetry.Worker.String(worker)))
	span.AddEvent("leased", trace.WithTimestamp(*j.StartedAt), trace.WithAttributes(telemetry.Worker.String(worker)))
	span.End(trace.WithTimestamp(*j.StartedAt))
	return ctx
}
