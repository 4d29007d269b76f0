// Package worker takes jobs from the service through the worker API and
// runs them: depsolve (blueprint → manifest), build (manifest → image,
// with its SBOM and build log streamed back) and upload. It holds no
// database credentials; everything it does to a job it does with that
// job's lease token. Heartbeats keep the lease; a cancellation heard in a
// heartbeat stops the build, and a worker shutting down hands its job back.
package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// Config configures a worker. Zero values mean the defaults.
type Config struct {
	Client *workerproto.Client
	// Name identifies the worker in the service's records.
	Name string
	// Arches are the architectures it builds. Default x86_64.
	Arches []string
	// Jobs is how many jobs it runs at once; it asks for as many as it
	// has room for in one request (workerproto.JobRequest.Max). Default 1:
	// one job at a time, asked for as workers always did. More suits
	// depsolve and upload workers, whose jobs mostly wait on the network;
	// builds at once share the cache directory and the host's cores.
	Jobs int
	// Grace is how long a running job may go on after Run's context ends
	// before it is handed back to the queue. Zero: at once.
	Grace time.Duration
	// Types are the job kinds it takes. Default: all.
	Types []string
	// CacheDir is the engine's and the package solver's cache.
	CacheDir string
	// Mirrors maps mirror roles to URIs (see distro.Options).
	Mirrors  map[string]string
	Resolver depsolve.Resolver
	Distros  *distro.Registry
	// Targets are the upload types it delivers to. Default: local and
	// aws.s3 (the artifact store's download link).
	Targets target.Registry
	// UploadTimeout bounds one upload job. Default target.DefaultTimeout.
	UploadTimeout time.Duration
	// Health, when set, records the worker's jobs and server contact.
	Health *Health
	// Builder builds the images of build jobs. Default: the engine
	// (compose.Engine) in CacheDir, dating each image by its manifest.
	Builder Builder
	Log     *slog.Logger
}

// Builder builds a manifest's image into files in dir, writing the build
// log to log and reporting its steps to progress as the engine does
// (compose.Engine is the real one).
type Builder interface {
	Build(ctx context.Context, m *manifest.Manifest, dir string, log io.Writer, progress engine.Reporter) (*compose.Built, error)
}

// Worker runs jobs.
type Worker struct {
	cfg Config
	// scrub takes this host's directories out of what tenants read.
	scrub *strings.Replacer
}

// hostPaths replaces the worker's own directories (the cache and the
// build trees under it), as given and as the kernel resolves them, by
// placeholders: build logs and errors go to tenants, who have no business
// knowing this host's layout.
func hostPaths(cacheDir string) *strings.Replacer {
	var pairs []string
	dirs := []string{filepath.Clean(cacheDir)}
	if abs, err := filepath.Abs(cacheDir); err == nil {
		dirs = append(dirs, abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			dirs = append(dirs, real)
		}
	}
	// The longer of overlapping names first: the replacer tries them in
	// this order at each position.
	for _, d := range dirs {
		if d != "/" && d != "." {
			pairs = append(pairs, filepath.Join(d, "work"), "<work>")
		}
	}
	for _, d := range dirs {
		if d != "/" && d != "." {
			pairs = append(pairs, d, "<cache>")
		}
	}
	return strings.NewReplacer(pairs...)
}

// New returns a worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Client == nil || cfg.Resolver == nil || cfg.Distros == nil || cfg.CacheDir == "" {
		return nil, errors.New("worker: a client, a resolver, the distributions and a cache directory are required")
	}
	if len(cfg.Arches) == 0 {
		cfg.Arches = []string{"x86_64"}
	}
	if len(cfg.Types) == 0 {
		cfg.Types = []string{workerproto.KindDepsolve, workerproto.KindBuild, workerproto.KindUpload}
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Targets == nil {
		cfg.Targets = target.New(target.Local{}, target.StoreLink{})
	}
	if cfg.Builder == nil {
		// No SOURCE_DATE_EPOCH from the worker's environment: an image
		// the service builds is dated by its manifest alone, whichever
		// worker builds it.
		cfg.Builder = compose.Engine{CacheDir: cfg.CacheDir, Logger: cfg.Log}
	}
	return &Worker{cfg: cfg, scrub: hostPaths(cfg.CacheDir)}, nil
}

// Run takes and runs jobs until ctx ends. A job running then may finish
// within the grace period; after it, the job is handed back to the queue
// for another worker.
func (w *Worker) Run(ctx context.Context) error {
	// jobsCtx ends Grace after ctx: what running jobs live under.
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	stop := context.AfterFunc(ctx, func() {
		if w.cfg.Grace <= 0 {
			stopJobs()
			return
		}
		w.cfg.Log.Info("shutting down: taking no more jobs; a running one may finish", "grace", w.cfg.Grace)
		t := time.AfterFunc(w.cfg.Grace, stopJobs)
		context.AfterFunc(jobsCtx, func() { t.Stop() })
	})
	defer stop()

	jobs := max(w.cfg.Jobs, 1)
	// A slot is taken for each job asked for and given back when it ends.
	slots := make(chan struct{}, jobs)
	var running sync.WaitGroup
	defer running.Wait()
	backoff := time.Second
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		free := 1
	more:
		for free < jobs {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		req := workerproto.JobRequest{Types: w.cfg.Types, Arches: w.cfg.Arches, Worker: w.cfg.Name}
		if jobs > 1 {
			req.Max = free
		}
		js, err := w.cfg.Client.RequestJobs(ctx, req)
		// Give back the slots no job took.
		for range free - len(js) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.cfg.Log.Warn("requesting a job failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = time.Second
		w.cfg.Health.contacted(time.Now())
		for i := range js {
			running.Add(1)
			go func() {
				defer running.Done()
				defer func() { <-slots }()
				w.runJob(jobsCtx, &js[i])
			}()
		}
	}
	return nil
}

// jobFailure is a failed job's reason; Retry marks transient ones.
type jobFailure = workerproto.FinishError

func (w *Worker) runJob(ctx context.Context, j *workerproto.Job) {
	// The job is a span of its compose's trace, and the job's log lines,
	// made with ctx, carry the trace's ID.
	ctx, span := telemetry.Tracer().Start(telemetry.Extract(ctx, j.TraceParent), "job "+j.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(telemetry.ComposeID.String(j.ComposeID), telemetry.JobID.String(j.ID), telemetry.JobType.String(j.Type),
			telemetry.Arch.String(j.Arch), telemetry.Worker.String(w.cfg.Name)))
	defer span.End()
	log := w.cfg.Log.With("job_id", j.ID, "compose_id", j.ComposeID, "type", j.Type)
	log.InfoContext(ctx, "job started")
	w.cfg.Health.started()
	outcome := "lost"
	defer func() { w.cfg.Health.ended(j.Type, outcome) }()
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errCanceled := errors.New("the compose was canceled")

	// Heartbeats keep the lease and hear of cancellation.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Often enough that a cancellation arrives within seconds.
		every := min(time.Duration(j.LeaseSeconds)*time.Second/4, 5*time.Second)
		if every <= 0 {
			every = 5 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
				canceled, err := w.cfg.Client.Heartbeat(jobCtx, j)
				if err == nil {
					w.cfg.Health.contacted(time.Now())
				}
				switch {
				case canceled:
					cancel(errCanceled)
					return
				case errors.Is(err, workerproto.ErrLeaseLost):
					cancel(err)
					return
				case err != nil && jobCtx.Err() == nil:
					log.WarnContext(ctx, "heartbeat failed", "err", err)
				}
			}
		}
	}()

	result, failure := w.execute(jobCtx, j)
	cause := context.Cause(jobCtx)
	cancel(nil)
	wg.Wait()

	// Finishing must outlive a shutting-down worker, and a server that is
	// away for a while: until then the job's lease would run out anyway.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), max(time.Duration(j.LeaseSeconds)*time.Second, 30*time.Second))
	defer fcancel()
	switch {
	case errors.Is(cause, workerproto.ErrLeaseLost):
		log.WarnContext(ctx, "the job's lease was lost; dropping it")
		telemetry.FailReason(span, "the job's lease was lost")
		return
	case errors.Is(cause, errCanceled):
		failure = &jobFailure{Reason: "canceled"}
	case ctx.Err() != nil:
		failure = &jobFailure{Reason: "the worker shut down", Retry: true}
	}
	if failure != nil {
		// Problems are about the blueprint, so always the user's doing.
		failure.UserError = failure.UserError || len(failure.Problems) > 0
		failure.Reason, failure.Details = w.scrub.Replace(failure.Reason), w.scrub.Replace(failure.Details)
		for i := range failure.Problems {
			failure.Problems[i].Message = w.scrub.Replace(failure.Problems[i].Message)
		}
	}
	if err := w.cfg.Client.Finish(fctx, j, result, failure); err != nil {
		log.ErrorContext(ctx, "finishing the job failed", "err", err)
		telemetry.Fail(span, err)
		return
	}
	switch {
	case failure == nil:
		outcome = "success"
	case failure.Retry && ctx.Err() != nil:
		outcome = "handed_back"
	default:
		outcome = "failure"
	}
	span.SetAttributes(attribute.String("kiln.outcome", outcome))
	if failure != nil {
		telemetry.FailReason(span, failure.Reason)
		log.InfoContext(ctx, "job failed", "reason", failure.Reason, "retry", failure.Retry)
	} else {
		log.InfoContext(ctx, "job done")
	}
}

func (w *Worker) execute(ctx context.Context, j *workerproto.Job) (any, *jobFailure) {
	switch j.Type {
	case workerproto.KindDepsolve:
		return w.depsolve(ctx, j)
	case workerproto.KindBuild:
		return w.build(ctx, j)
	case workerproto.KindUpload:
		return w.upload(ctx, j)
	}
	return nil, &jobFailure{Reason: fmt.Sprintf("this worker does not run %q jobs", j.Type)}
}

func (w *Worker) depsolve(ctx context.Context, j *workerproto.Job) (any, *jobFailure) {
	var args workerproto.DepsolveArgs
	if err := json.Unmarshal(j.Args, &args); err != nil {
		// The service wrote the arguments: malformed ones are its bug
		// (or a worker of another version), never the user's.
		return nil, &jobFailure{Reason: "the job's arguments are malformed", Details: err.Error()}
	}
	bp, err := blueprint.Parse(args.Blueprint, blueprint.FormatJSON)
	if err != nil {
		return nil, &jobFailure{Reason: "the blueprint is invalid", Details: err.Error(), Problems: workerproto.ProblemsOf(err), UserError: true}
	}
	trace.SpanFromContext(ctx).SetAttributes(telemetry.ImageType.String(args.ImageType), telemetry.Arch.String(args.Arch))
	it, err := compose.ImageType(w.cfg.Distros, bp, compose.Request{Distro: args.Distro, Arch: args.Arch, ImageType: args.ImageType}, compose.Defaults{})
	if err != nil {
		// The API checked the image type and its customizations when the
		// compose was submitted: a failure here is a worker whose
		// distributions differ from the service's, unless it names
		// problems of the blueprint.
		problems := workerproto.ProblemsOf(err)
		return nil, &jobFailure{Reason: "the image type is unknown", Details: err.Error(), Problems: problems, UserError: len(problems) > 0}
	}
	res, err := compose.Manifest(ctx, it, bp, distro.Options{Mirrors: w.cfg.Mirrors}, w.cfg.Resolver)
	if err != nil {
		var mirror *depsolve.MirrorError
		return nil, &jobFailure{Reason: "the packages could not be resolved", Details: err.Error(), Retry: errors.As(err, &mirror), Problems: workerproto.ProblemsOf(err),
			UserError: userDepsolveError(err)}
	}
	data, err := res.Manifest.Marshal()
	if err != nil {
		return nil, &jobFailure{Reason: "writing the manifest", Details: err.Error()}
	}
	return workerproto.DepsolveResult{Manifest: data}, nil
}

// userDepsolveError tells whether a failed package resolution is the
// user's doing: a package that does not exist, a request apt cannot
// satisfy, or blueprint problems. An unreadable mirror, or anything else,
// is the service's.
func userDepsolveError(err error) bool {
	var mirror *depsolve.MirrorError
	if errors.As(err, &mirror) {
		return false
	}
	var missing *depsolve.MissingPackagesError
	var unsat *depsolve.UnsatisfiableError
	return errors.As(err, &missing) || errors.As(err, &unsat) || len(workerproto.ProblemsOf(err)) > 0
}

// logStream sends the build log to the service in pieces, whole lines
// at a time so that scrub sees every path in one piece.
type logStream struct {
	ctx    context.Context
	client *workerproto.Client
	job    *workerproto.Job
	scrub  *strings.Replacer
	mu     sync.Mutex
	buf    []byte
	last   time.Time
}

func (l *logStream) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) >= 64<<10 || time.Since(l.last) > 2*time.Second {
		l.flushLocked(false)
	}
	return len(p), nil
}

// flushLocked sends the complete lines buffered, or everything when all
// is set or a line grew past 64 KiB.
func (l *logStream) flushLocked(all bool) {
	n := len(l.buf)
	if !all && n < 64<<10 {
		n = bytes.LastIndexByte(l.buf, '\n') + 1
	}
	out := []byte(l.scrub.Replace(string(l.buf[:n])))
	l.buf = append(l.buf[:0], l.buf[n:]...)
	for len(out) > 0 {
		m := min(len(out), 512<<10)
		if err := l.client.Log(l.ctx, l.job, out[:m]); err != nil {
			break // the log is best effort; the build goes on
		}
		out = out[m:]
	}
	l.last = time.Now()
}

func (l *logStream) Flush() {
	l.mu.Lock()
	l.flushLocked(true)
	l.mu.Unlock()
}

func (w *Worker) build(ctx context.Context, j *workerproto.Job) (any, *jobFailure) {
	var dep workerproto.DepsolveResult
	if err := json.Unmarshal(j.DepResults[workerproto.KindDepsolve], &dep); err != nil {
		return nil, &jobFailure{Reason: "the depsolve result is missing", Details: err.Error()}
	}
	m, err := manifest.Parse(dep.Manifest)
	if err != nil {
		return nil, &jobFailure{Reason: "the manifest is invalid", Details: err.Error()}
	}
	trace.SpanFromContext(ctx).SetAttributes(telemetry.ImageType.String(m.Target.ImageType), telemetry.Arch.String(m.Target.Arch))
	logs := &logStream{ctx: context.WithoutCancel(ctx), client: w.cfg.Client, job: j, scrub: w.scrub, last: time.Now()}
	defer logs.Flush()
	var failedMu sync.Mutex
	var failed engine.Event // the stage that failed, as the engine reports it
	stages := &stageSpans{ctx: ctx, open: map[int]trace.Span{}}
	reporter := engine.ReporterFunc(func(ev engine.Event) {
		stages.report(ev)
		if ev.Kind == engine.BuildFailed {
			failedMu.Lock()
			failed = ev
			failedMu.Unlock()
		}
		switch ev.Kind {
		case engine.StageDone, engine.StageCached:
			_ = w.cfg.Client.Progress(ctx, j, ev.Index, ev.Total)
		}
		if ev.Kind == engine.StageDone {
			fmt.Fprintf(logs, "== [%d/%d] %s: %s done in %.1fs\n", ev.Index, ev.Total, ev.Pipeline, ev.Stage, ev.Elapsed.Seconds())
		}
	})
	out, err := w.buildAndUpload(ctx, j, m, dep.Manifest, logs, reporter)
	stages.end(err)
	if err != nil {
		failedMu.Lock()
		defer failedMu.Unlock()
		return nil, buildFailure(failed, err)
	}
	fmt.Fprintf(logs, "built %s (%d bytes, sha256 %s)\n", out.Filename, out.Size, out.SHA256)
	return out, nil
}

// buildAndUpload builds m with the worker's builder in a directory of its
// own under the cache and puts the SBOM, the manifest as the depsolve job
// wrote it, and the artifact into the job's files. A failed build has
// written its error to the log already.
func (w *Worker) buildAndUpload(ctx context.Context, j *workerproto.Job, m *manifest.Manifest, manifestData []byte, log io.Writer, progress engine.Reporter) (workerproto.BuildResult, error) {
	parent := filepath.Join(w.cfg.CacheDir, "uploads")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return workerproto.BuildResult{}, err
	}
	dir, err := os.MkdirTemp(parent, "job-")
	if err != nil {
		return workerproto.BuildResult{}, err
	}
	defer os.RemoveAll(dir)
	built, err := w.cfg.Builder.Build(ctx, m, dir, log, progress)
	if err != nil {
		return workerproto.BuildResult{}, err
	}
	ctx, span := telemetry.Tracer().Start(ctx, "store files")
	defer span.End()
	fail := func(err error) (workerproto.BuildResult, error) {
		telemetry.Fail(span, err)
		fmt.Fprintf(log, "build failed: %v\n", err)
		return workerproto.BuildResult{}, err
	}
	if err := os.WriteFile(built.Manifest, manifestData, 0o600); err != nil {
		return fail(err)
	}
	for name, p := range map[string]string{workerproto.SBOM: built.SBOM, workerproto.Manifest: built.Manifest} {
		if err := w.cfg.Client.PutFile(ctx, j, name, p); err != nil {
			return fail(err)
		}
	}
	sum, size, err := hashFile(built.Artifact)
	if err != nil {
		return fail(err)
	}
	if err := w.cfg.Client.PutFile(ctx, j, built.Filename, built.Artifact); err != nil {
		return fail(err)
	}
	return workerproto.BuildResult{Filename: built.Filename, Size: size, SHA256: sum}, nil
}

// buildFailure is a failed build's reason: the stage that failed, from
// the engine's build-failed event, and its tool's last error line; the
// whole error is in the details. A build that failed outside any stage
// (fetching packages) says only that it failed. A build that failed on
// what the blueprint asks for (the check after package installation
// found no unit, group or shell it names) carries those problems, each
// with its blueprint field, for the service to show at its field.
func buildFailure(ev engine.Event, err error) *jobFailure {
	problems := workerproto.ProblemsOf(err)
	if ev.Stage == "" {
		return &jobFailure{Reason: "the build failed", Details: err.Error(), Problems: problems}
	}
	why := lastErrorLine(ev.Message)
	if len(problems) > 0 {
		why = fmt.Sprintf("the image does not have what the blueprint asks for (%d %s, each under its field)", len(problems), plural(len(problems), "problem", "problems"))
	}
	return &jobFailure{Reason: fmt.Sprintf("stage %s of pipeline %s: %s", ev.Stage, ev.Pipeline, why), Details: err.Error(), Problems: problems}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// lastErrorLine shortens a stage's error to its tool's last words. Host
// tools fail as "tool: exit status N: <the end of their output>": the
// tool's name and the last line of that output. A one-line error is
// kept whole.
func lastErrorLine(msg string) string {
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	switch len(lines) {
	case 0:
		return msg
	case 1:
		return lines[0]
	}
	last := lines[len(lines)-1]
	if tool, _, ok := strings.Cut(lines[0], ": "); ok && !strings.Contains(tool, " ") && !strings.HasPrefix(last, tool+":") {
		return tool + ": " + last
	}
	return last
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
