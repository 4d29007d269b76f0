package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// upload delivers the artifact through its upload type's target. A
// target that reads the image from disk gets it downloaded from the
// service first, checked against the build's size and SHA-256, into a
// directory of the compose's own under the cache: a retried job on this
// worker goes on from the bytes it has. The upload is bounded by the
// upload timeout, and a canceled compose cancels it (the target cleans
// up what it started). Its steps go to the compose's log and, as
// progress, to the image's status (uploading, registering).
func (w *Worker) upload(ctx context.Context, j *workerproto.Job) (any, *jobFailure) {
	var args workerproto.UploadArgs
	if err := json.Unmarshal(j.Args, &args); err != nil {
		return nil, &jobFailure{Reason: "the job's arguments are malformed", Details: err.Error()}
	}
	var built workerproto.BuildResult
	if err := json.Unmarshal(j.DepResults[workerproto.KindBuild], &built); err != nil {
		return nil, &jobFailure{Reason: "the build result is missing", Details: err.Error()}
	}
	tg, err := w.cfg.Targets.Lookup(args.Type)
	if err != nil {
		// Another worker may have the target configured.
		return nil, &jobFailure{Reason: err.Error(), Retry: true}
	}
	if err := tg.Check(args.Image, args.Options); err != nil {
		return nil, &jobFailure{Reason: fmt.Sprintf("the %s upload's options are refused", args.Type), Details: err.Error()}
	}
	timeout := w.cfg.UploadTimeout
	if timeout <= 0 {
		timeout = target.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	logf := func(format string, a ...any) {
		_ = w.cfg.Client.Log(ctx, j, fmt.Appendf(nil, "upload: "+format+"\n", a...))
	}
	a := target.Artifact{ComposeID: j.ComposeID, Name: args.Name, Filename: built.Filename, Size: built.Size, SHA256: built.SHA256, Image: args.Image}
	if a.Name == "" {
		a.Name = "kiln-" + j.ComposeID
	}
	if target.WantsFile(tg) {
		dir := filepath.Join(w.cfg.CacheDir, "uploads", "compose-"+j.ComposeID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, &jobFailure{Reason: "the upload could not start", Details: err.Error(), Retry: true}
		}
		a.Path = filepath.Join(dir, filepath.Base(built.Filename))
		logf("fetching %s (%d bytes) from the service", built.Filename, built.Size)
		start := time.Now()
		fctx, span := telemetry.Tracer().Start(ctx, "fetch image", trace.WithAttributes(attribute.Int64("kiln.size", built.Size)))
		err := w.cfg.Client.GetFile(fctx, j, built.Filename, a.Path, built.Size, built.SHA256, nil)
		telemetry.Fail(span, err)
		span.End()
		if err != nil {
			// A copy cut short (the lease or the context ended) is gone
			// on from by the next try here; anything else starts anew.
			if !errors.Is(err, workerproto.ErrLeaseLost) && ctx.Err() == nil {
				os.RemoveAll(dir)
			}
			return nil, &jobFailure{Reason: "the upload could not fetch the image", Details: err.Error(), Retry: true}
		}
		logf("fetched in %s, checked against the build's SHA-256", time.Since(start).Round(time.Millisecond))
		defer os.RemoveAll(dir)
	}
	logf("delivering %s to %s", built.Filename, args.Type)
	start := time.Now()
	uctx, span := telemetry.Tracer().Start(ctx, "upload "+args.Type, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("kiln.upload_type", args.Type), attribute.Int64("kiln.size", built.Size)))
	rep := &jobReporter{ctx: uctx, client: w.cfg.Client, job: j}
	res, err := tg.Upload(uctx, a, args.Options, rep)
	telemetry.Fail(span, err)
	span.End()
	if err != nil {
		logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		reason := "the upload failed: " + err.Error()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			reason = fmt.Sprintf("the upload failed: it took longer than the upload timeout (%s): %v", timeout, err)
		}
		return nil, &jobFailure{Reason: reason, Details: err.Error(), Retry: true}
	}
	logf("delivered in %s: %s", time.Since(start).Round(time.Millisecond), describeResult(res))
	return workerproto.UploadResult{Type: args.Type, Result: res}, nil
}

// describeResult says in words where the image went.
func describeResult(r target.Result) string {
	switch {
	case r.AMI != "":
		return fmt.Sprintf("AMI %s in %s", r.AMI, r.Region)
	case r.ImageName != "" && r.ProjectID != "":
		return fmt.Sprintf("image %s in project %s", r.ImageName, r.ProjectID)
	case r.ImageName != "":
		return "image " + r.ImageName
	case r.Digest != "":
		return fmt.Sprintf("%s (%s)", r.URL, r.Digest)
	case r.URL != "":
		return "download link ready"
	}
	return "done"
}

// jobReporter sends an upload's progress to the service: a new step at
// once, bytes at most once a second (in MiB, as the progress count is).
type jobReporter struct {
	ctx    context.Context
	client *workerproto.Client
	job    *workerproto.Job

	mu          sync.Mutex
	step        string
	done, total int64
	sent        time.Time
}

// Step implements target.Reporter.
func (r *jobReporter) Step(step string) {
	r.mu.Lock()
	changed := step != r.step
	r.step = step
	p := r.progress()
	r.mu.Unlock()
	if changed {
		trace.SpanFromContext(r.ctx).AddEvent(step)
		_ = r.client.ProgressStep(r.ctx, r.job, p)
	}
}

// Bytes implements target.Reporter.
func (r *jobReporter) Bytes(done, total int64) {
	r.mu.Lock()
	r.done, r.total = done, total
	send := time.Since(r.sent) >= time.Second || done == total
	if send {
		r.sent = time.Now()
	}
	p := r.progress()
	r.mu.Unlock()
	if send {
		_ = r.client.ProgressStep(r.ctx, r.job, p)
	}
}

func (r *jobReporter) progress() workerproto.Progress {
	const mib = 1 << 20
	total := int((r.total + mib - 1) / mib)
	done := min(int(r.done/mib), total)
	return workerproto.Progress{Done: done, Total: total, Step: r.step}
}
