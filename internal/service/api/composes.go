package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apimodel"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/workerproto"
)

// The request types live in apimodel, which clients import too.
type (
	composeRequest = apimodel.ComposeRequest
	imageRequest   = apimodel.ImageRequest
	uploadRequest  = apimodel.UploadRequest
)

// composeImage accepts a compose: the request is checked as a blueprint
// against its distribution, architecture and image type, then stored with
// its jobs (depsolve → build → upload) in one transaction.
func (s *Server) composeImage(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req composeRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return s.bodyError(err, "the request body is not a compose request: ")
	}
	nc, err := s.newCompose(r, req, "", 0)
	if err != nil {
		return err
	}
	if err := s.storeComposes(r, []store.NewCompose{nc}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": nc.Compose.ID})
	return nil
}

// checkedRequest is a compose or blueprint request that passed every
// check: its blueprint and, per image request, the image type.
type checkedRequest struct {
	bp    *blueprint.Blueprint
	types []*distro.ImageType
}

// checkRequest checks customizations and image requests as a blueprint
// against each image request's distribution, architecture and image type.
// Every problem comes back in one error: those of the customizations and
// those of the image requests together.
func (s *Server) checkRequest(ctx context.Context, name, distribution string, irs []imageRequest, cust map[string]any) (*checkedRequest, error) {
	cust, repoErr := s.imageBuilderFields(distribution, cust)
	bp, reported := blueprintFromRequestAll(blueprintName(name), cust)
	var bpErr error
	if len(reported) > 0 {
		bpErr = requestProblems(reported)
	}
	// The image types check what decoded, past the customizations'
	// own problems, leaving out the fields those already name.
	types, irErr := s.checkImageRequests(bp, distribution, irs, func(err error) error {
		rest := uncovered(err, reported)
		if errs, ok := rest.(blueprint.Errors); ok && len(errs) == 0 {
			return nil
		}
		return requestProblems(rest)
	})
	pkgErr := s.missingPackages(ctx, bp, distribution, irs, reported)
	if err := joinProblems(bpErr, repoErr, irErr, pkgErr); err != nil {
		return nil, err
	}
	return &checkedRequest{bp: bp, types: types}, nil
}

// uncovered drops from err's blueprint problems those at a field (or
// below one) that reported already names.
func uncovered(err error, reported blueprint.Errors) error {
	var errs blueprint.Errors
	if len(reported) == 0 || !errors.As(err, &errs) {
		return err
	}
	var out blueprint.Errors
	for _, p := range errs {
		if p.Path == "" || !reported.Covers(p.Path) {
			out = append(out, p)
		}
	}
	return out
}

// checkImageRequests looks up each image request's image type and checks
// the blueprint against it; relabel turns the blueprint's problems into
// the API's error. It goes on past a bad image request so that every
// problem of every one comes back together. A nil blueprint (one that
// did not parse) is not checked against the image types.
func (s *Server) checkImageRequests(bp *blueprint.Blueprint, distribution string, irs []imageRequest, relabel func(error) error) ([]*distro.ImageType, error) {
	d, err := s.cfg.Distros.Distro(distribution)
	if err != nil {
		return nil, fieldError(http.StatusBadRequest, "distribution", err.Error())
	}
	lookup := bp
	if lookup == nil {
		lookup = &blueprint.Blueprint{}
	}
	var types []*distro.ImageType
	var errs []error
	for i, ir := range irs {
		where := fmt.Sprintf("image_requests[%d]", i)
		a, err := d.Arch(ir.Architecture)
		if err != nil {
			errs = append(errs, fieldError(http.StatusBadRequest, where+".architecture", err.Error()))
			continue
		}
		if a.NotBuildable != "" {
			errs = append(errs, fieldError(http.StatusBadRequest, where+".architecture", fmt.Sprintf("%s images cannot be built yet: %s", ir.Architecture, a.NotBuildable)))
			continue
		}
		it, err := compose.ImageType(s.cfg.Distros, lookup, compose.Request{Distro: distribution, Arch: ir.Architecture, ImageType: ir.ImageType}, compose.Defaults{})
		if _, unbuilt := apimodel.UnbuiltImageTypes[ir.ImageType]; err != nil && unbuilt {
			errs = append(errs, fieldError(http.StatusBadRequest, where+".image_type", unknownImageType(distribution, ir.ImageType)))
		} else if err != nil {
			errs = append(errs, fieldError(http.StatusBadRequest, where+".image_type", err.Error()))
		} else if bp != nil {
			if err := it.CheckBlueprint(bp); err != nil {
				if err := relabel(err); err != nil {
					errs = append(errs, err)
				}
			}
		}
		tg, err := s.cfg.Targets.Lookup(ir.UploadRequest.Type)
		if err != nil {
			errs = append(errs, fieldError(http.StatusBadRequest, where+".upload_request.type", err.Error()))
		} else if it != nil {
			if err := tg.Check(targetImage(it, ir.Architecture), ir.UploadRequest.Options); err != nil {
				errs = append(errs, optionsErrors(where+".upload_request", err)...)
			}
		}
		types = append(types, it)
	}
	if err := joinProblems(errs...); err != nil {
		return nil, err
	}
	return types, nil
}

// optionsErrors are a target's refusals of its options, one per problem
// when it joined several (errors.Join), each under its field.
func optionsErrors(where string, err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, optionsErrors(where, e)...)
		}
		return out
	}
	return []error{optionsError(where, err)}
}

// optionsError is a target's refusal of its options, which it words as
// "options.field: message", under the request's path to them.
func optionsError(where string, err error) error {
	field, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(field, " \t") {
		return fieldError(http.StatusBadRequest, where+".options", err.Error())
	}
	return fieldError(http.StatusBadRequest, where+"."+field, msg)
}

// newCompose checks a compose request and makes the compose and its jobs
// to store.
func (s *Server) newCompose(r *http.Request, req composeRequest, bpID string, bpVersion int) (store.NewCompose, error) {
	checked, err := s.checkRequest(r.Context(), req.ImageName, req.Distribution, req.ImageRequests, req.Customizations)
	if err != nil {
		return store.NewCompose{}, err
	}
	ir, it := req.ImageRequests[0], checked.types[0]
	bpJSON, err := json.Marshal(checked.bp)
	if err != nil {
		return store.NewCompose{}, err
	}
	redactPasswords(req.Customizations)
	stored, err := json.Marshal(req)
	if err != nil {
		return store.NewCompose{}, err
	}
	c := store.Compose{ID: store.NewID(), OrgID: orgOf(r.Context()), CreatedAt: s.cfg.Now().UTC(), ImageName: req.ImageName, ImageType: it.Name,
		Request: stored, BlueprintID: bpID, BlueprintVersion: bpVersion}
	depsolve, build, upload := store.NewID(), store.NewID(), store.NewID()
	args := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	js := []store.Job{
		{ID: depsolve, Type: workerproto.KindDepsolve, Args: args(workerproto.DepsolveArgs{Distro: it.Arch().Distro().Name, Arch: it.Arch().Name, ImageType: it.Name, Blueprint: bpJSON, Size: ir.Size})},
		{ID: build, Type: workerproto.KindBuild, Arch: it.Arch().Name, Args: args(workerproto.BuildArgs{}), Deps: []string{depsolve}},
		{ID: upload, Type: workerproto.KindUpload, Args: args(workerproto.UploadArgs{Type: ir.UploadRequest.Type, Options: ir.UploadRequest.Options,
			Name: uploadName(req.ImageName, c.ID), Image: targetImage(it, ir.Architecture)}), Deps: []string{build}},
	}
	return store.NewCompose{Compose: c, Jobs: js}, nil
}

// storeComposes stores composes of the request's org with their jobs,
// all of them or, past the org's quota, none.
func (s *Server) storeComposes(r *http.Request, cs []store.NewCompose) error {
	org := orgOf(r.Context())
	// Each compose's trace goes on from here, through its jobs, to the
	// workers that run them.
	ctxs, spans := make([]context.Context, len(cs)), make([]trace.Span, len(cs))
	for i := range cs {
		c := &cs[i].Compose
		ctx, span := telemetry.Tracer().Start(r.Context(), "create compose", trace.WithAttributes(
			telemetry.ComposeID.String(c.ID), telemetry.ImageType.String(c.ImageType)))
		defer span.End()
		ctxs[i], spans[i] = ctx, span
		tp := telemetry.Inject(ctx)
		for k := range cs[i].Jobs {
			cs[i].Jobs[k].TraceParent = tp
			if a := cs[i].Jobs[k].Arch; a != "" {
				span.SetAttributes(telemetry.Arch.String(a))
			}
		}
	}
	err := s.cfg.Store.CreateComposes(r.Context(), org, cs, s.cfg.Quota.of(org, s.cfg.Now().UTC()))
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		for _, span := range spans {
			span.SetAttributes(attribute.Bool("kiln.quota_exceeded", true))
		}
		return s.cfg.Quota.exceeded(org, qe, len(cs))
	}
	if err != nil {
		for _, span := range spans {
			telemetry.Fail(span, err)
		}
		return err
	}
	for i, nc := range cs {
		c := nc.Compose
		s.cfg.Log.InfoContext(ctxs[i], "compose accepted", "compose_id", c.ID, "org_id", c.OrgID, "request_id", requestID(r.Context()),
			"image_type", c.ImageType, "blueprint_id", c.BlueprintID)
	}
	return nil
}

// pageOf reads limit and offset (already validated against the document).
func pageOf(r *http.Request) store.Page {
	p := store.Page{Limit: 100}
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil {
		p.Limit = v
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("offset")); err == nil {
		p.Offset = v
	}
	return p
}

type listMeta struct {
	Count int `json:"count"`
}

type listLinks struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

func links(r *http.Request, p store.Page, total int) listLinks {
	link := func(off int) string {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(p.Limit))
		q.Set("offset", strconv.Itoa(off))
		return r.URL.Path + "?" + q.Encode()
	}
	last := 0
	if total > 0 {
		last = (total - 1) / p.Limit * p.Limit
	}
	return listLinks{First: link(0), Last: link(last)}
}

type composesItem struct {
	ID          string          `json:"id"`
	CreatedAt   time.Time       `json:"created_at"`
	ImageName   string          `json:"image_name,omitempty"`
	Request     json.RawMessage `json:"request"`
	ClientID    string          `json:"client_id,omitempty"`
	ImageStatus imageStatus     `json:"image_status"`
	// BlueprintID and BlueprintVersion name the stored blueprint the
	// compose was built from, when it was built from one.
	BlueprintID      string `json:"blueprint_id,omitempty"`
	BlueprintVersion int    `json:"blueprint_version,omitempty"`
}

// composeFilter reads the listing's status, image_type and
// ignoreImageTypes (by name or alias; the document has checked their
// shape). Image-builder's names of types kiln does not build (its
// frontend leaves out the edge types) match no compose, so ignoring them
// leaves the listing as it is.
func (s *Server) composeFilter(r *http.Request) (store.ComposeFilter, error) {
	q := r.URL.Query()
	f := store.ComposeFilter{Status: q.Get("status"), LastType: workerproto.KindUpload}
	if f.Status == statusCancelled {
		// A kiln extension: the failures that are cancellations, which
		// image-builder's status=failure lists among the others.
		f.Status, f.Cancelled = "", true
	}
	if name := q.Get("image_type"); name != "" {
		it := s.imageTypeName(name)
		if it == "" {
			return f, newError(http.StatusBadRequest, fmt.Sprintf("query parameter image_type: no distribution has an image type or alias %q (GET /distributions/{distribution} lists them)", name))
		}
		f.ImageType = it
	}
	for _, name := range q["ignoreImageTypes"] {
		it := s.imageTypeName(name)
		if it == "" {
			if _, unbuilt := apimodel.UnbuiltImageTypes[name]; unbuilt {
				// No compose of a type kiln does not build exists to leave out.
				continue
			}
			return f, newError(http.StatusBadRequest, fmt.Sprintf("query parameter ignoreImageTypes: no distribution has an image type or alias %q (GET /distributions/{distribution} lists them)", name))
		}
		f.IgnoreImageTypes = append(f.IgnoreImageTypes, it)
	}
	return f, nil
}

// imageTypeName is the name of the image type that name names or is an
// alias of, in any distribution; "" when none.
func (s *Server) imageTypeName(name string) string {
	for _, d := range s.cfg.Distros.Distros() {
		for _, a := range d.Arches() {
			for _, it := range a.ImageTypes() {
				if it.Name == name || slices.Contains(it.Aliases, name) {
					return it.Name
				}
			}
		}
	}
	return ""
}

func (s *Server) getComposes(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	f, err := s.composeFilter(r)
	if err != nil {
		return err
	}
	p := pageOf(r)
	list, total, err := s.cfg.Store.ListComposes(r.Context(), orgOf(r.Context()), f, p)
	if err != nil {
		return err
	}
	data, err := s.composesItems(r, list)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": listMeta{Count: total}, "links": links(r, p, total), "data": data})
	return nil
}

// composesItems are a page of composes as listings show them, each with
// its status: one query for the jobs of all of them.
func (s *Server) composesItems(r *http.Request, list []store.Compose) ([]composesItem, error) {
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	jobsOf, err := s.cfg.Store.JobsByCompose(r.Context(), orgOf(r.Context()), ids)
	if err != nil {
		return nil, err
	}
	data := make([]composesItem, 0, len(list))
	built := s.builtArches()
	for _, c := range list {
		var req struct {
			ClientID string `json:"client_id"`
		}
		_ = json.Unmarshal(c.Request, &req)
		st, err := s.imageStatus(r, c, jobsOf[c.ID], built)
		if err != nil {
			return nil, err
		}
		data = append(data, composesItem{ID: c.ID, CreatedAt: c.CreatedAt, ImageName: c.ImageName, Request: c.Request, ClientID: req.ClientID, ImageStatus: st,
			BlueprintID: c.BlueprintID, BlueprintVersion: c.BlueprintVersion})
	}
	return data, nil
}

type composeStatus struct {
	ImageStatus imageStatus     `json:"image_status"`
	Request     json.RawMessage `json:"request"`
	CreatedAt   time.Time       `json:"created_at"`
	// BlueprintID and BlueprintVersion name the stored blueprint the
	// compose was built from, as listings do.
	BlueprintID      string `json:"blueprint_id,omitempty"`
	BlueprintVersion int    `json:"blueprint_version,omitempty"`
}

type imageStatus struct {
	Status       string          `json:"status"`
	Progress     *store.Progress `json:"progress,omitempty"`
	UploadStatus *uploadStatus   `json:"upload_status,omitempty"`
	Error        *statusError    `json:"error,omitempty"`
	// Cancelled marks a failure that is a cancellation by the compose's
	// owner (a kiln extension: Status stays image-builder's failure).
	Cancelled bool           `json:"cancelled,omitempty"`
	Timeline  []timelineStep `json:"timeline"`
	// Waiting says why a compose waits: for a worker of an architecture
	// that no connected worker builds.
	Waiting *waitingStatus `json:"waiting,omitempty"`
}

// waitingStatus is what a compose waits for that may never come unless
// someone acts.
type waitingStatus struct {
	// Architecture is the architecture its next job needs a worker for.
	Architecture string `json:"architecture"`
	// Reason says so and how to start such a worker.
	Reason string `json:"reason"`
}

// noWorkerReason is the waiting reason of a compose whose job needs a
// worker for arch while no connected worker builds it.
func noWorkerReason(arch string) string {
	return fmt.Sprintf("no connected worker builds %s; start one with `kiln worker --arch %s`", arch, arch)
}

// builtArches tells which architectures some connected worker builds,
// reading the worker registry once per request, and only when a compose
// waits for a job of an architecture.
type builtArches struct {
	s    *Server
	read bool
	set  map[string]bool
}

func (s *Server) builtArches() *builtArches { return &builtArches{s: s} }

// builds tells whether some connected worker builds arch. When the
// registry cannot be read it says yes: a compose then shows no message
// rather than a wrong one.
func (b *builtArches) builds(ctx context.Context, arch string) bool {
	if !b.read {
		b.read = true
		ws, err := b.s.cfg.Store.ConnectedWorkers(ctx, b.s.cfg.Now().Add(-store.ConnectedWindow))
		if err != nil {
			b.s.cfg.Log.Error("reading the connected workers", "err", err)
			return true
		}
		b.set = map[string]bool{}
		for _, w := range ws {
			for _, a := range w.Arches {
				b.set[a] = true
			}
		}
	}
	return b.set == nil || b.set[arch]
}

// waitingFor is what a compose with jobs js waits for: a worker of the
// architecture of a job still pending that no connected worker builds.
func waitingFor(ctx context.Context, js []store.Job, status string, built *builtArches) *waitingStatus {
	if status == store.ComposeSuccess || status == store.ComposeFailure {
		return nil
	}
	for _, j := range js {
		if j.State == store.JobPending && j.Arch != "" && !built.builds(ctx, j.Arch) {
			return &waitingStatus{Architecture: j.Arch, Reason: noWorkerReason(j.Arch)}
		}
	}
	return nil
}

// timelineStep is a step a compose reached, and when.
type timelineStep struct {
	Step string    `json:"step"`
	At   time.Time `json:"at"`
}

type uploadStatus struct {
	Status  string         `json:"status"`
	Type    string         `json:"type"`
	Options map[string]any `json:"options"`
	// inStore marks an image that stayed in the artifact store, whose
	// download link the API completes.
	inStore bool
}

type statusError struct {
	ID     int    `json:"id"`
	Reason string `json:"reason"`
	// Details is the failure's free-form text, or, when the failure is
	// about fields of the request (the image lacks a service, a group or
	// a shell it asks for), an []apimodel.StatusProblem: one per problem.
	Details any `json:"details,omitempty"`
}

// failureDetails is what a failed job's stored details show: its
// problems, one item each under the request's field, when it has any,
// else its text.
func failureDetails(stored string) any {
	text, problems := workerproto.DecodeDetails(stored)
	if len(problems) == 0 {
		if text == "" {
			return nil
		}
		return text
	}
	out := make([]apimodel.StatusProblem, 0, len(problems))
	for _, p := range problems {
		ip := problem{Field: p.Field, Message: p.Message}
		if ip.Field != "" {
			ip.Field = requestField(ip.Field)
		}
		out = append(out, apimodel.StatusProblem{Field: ip.Field, Detail: ip.detail()})
	}
	return out
}

// reasonCancelled is a canceled compose's error: jobs are canceled only
// when their compose's owner cancels or deletes it.
const reasonCancelled = "cancelled by the user"

// deriveStatus is a compose's status from its jobs: the status itself
// as store.ComposeStatus decides it (the listings' status filter agrees),
// with the failure, progress and upload details the API adds.
func deriveStatus(js []store.Job, downloadURL string) imageStatus {
	byKind := map[string]store.Job{}
	for _, j := range js {
		byKind[j.Type] = j
	}
	st := imageStatus{Status: store.ComposeStatus(js, workerproto.KindUpload), Timeline: timeline(js)}
	if st.Status == store.ComposeFailure {
		st.Cancelled = store.ComposeCancelled(js)
		for _, j := range js {
			if j.State == store.JobFailure || j.State == store.JobCanceled {
				reason := reasonCancelled
				var details any
				if j.State == store.JobFailure && j.Error != nil {
					reason, details = fmt.Sprintf("%s failed: %s", j.Type, j.Error.Reason), failureDetails(j.Error.Details)
				}
				st.Error = &statusError{ID: 1, Reason: reason, Details: details}
				break
			}
		}
	}
	build, upload := byKind[workerproto.KindBuild], byKind[workerproto.KindUpload]
	if build.Progress.Total > 0 {
		p := build.Progress
		st.Progress = &p
	}
	var utype string
	var uargs workerproto.UploadArgs
	if json.Unmarshal(upload.Args, &uargs) == nil {
		utype = uargs.Type
	}
	us := &uploadStatus{Status: "pending", Type: utype, Options: map[string]any{}}
	switch upload.State {
	case store.JobRunning:
		us.Status = "running"
		if upload.Progress.Step == target.StepRegistering && st.Status == store.ComposeUploading {
			st.Status = statusRegistering
		}
	case store.JobSuccess:
		us.Status = "success"
		var res workerproto.UploadResult
		_ = json.Unmarshal(upload.Result, &res)
		if res.URL == downloadURL || res.Result == (target.Result{}) {
			// The image stayed in the artifact store: its download link
			// is completed by downloadLink.
			us.Options["url"] = downloadURL
			us.inStore = true
		} else {
			us.Options = deliveredOptions(res.Result)
		}
	case store.JobFailure, store.JobCanceled:
		us.Status = "failure"
	}
	st.UploadStatus = us
	return st
}

// statusRegistering is the image's status while a cloud imports it (the
// upload job reports the step): image-builder's "registering". Listings
// filter it as uploading, the status it refines.
const statusRegistering = "registering"

// statusCancelled is the listings' status filter for cancelled composes
// (a kiln extension): their image_status is failure, with cancelled set.
const statusCancelled = "cancelled"

// deliveredOptions is a delivered image's upload status options, image-
// builder's fields for its type.
func deliveredOptions(r target.Result) map[string]any {
	out := map[string]any{}
	b, _ := json.Marshal(r)
	_ = json.Unmarshal(b, &out)
	return out
}

// timeline is the steps a compose reached, in order, from its jobs' times:
// queued, depsolved, building, uploading, then done, failed or cancelled.
func timeline(js []store.Job) []timelineStep {
	out := []timelineStep{}
	if len(js) == 0 {
		return out
	}
	add := func(step string, at *time.Time) {
		if at != nil {
			out = append(out, timelineStep{Step: step, At: at.UTC()})
		}
	}
	queued := js[0].QueuedAt
	add("queued", &queued)
	var failed, cancelled *time.Time
	for _, j := range js {
		switch {
		case j.Type == workerproto.KindDepsolve && j.State == store.JobSuccess:
			add("depsolved", j.FinishedAt)
		case j.Type == workerproto.KindBuild && j.StartedAt != nil:
			add("building", j.StartedAt)
		case j.Type == workerproto.KindUpload && j.StartedAt != nil:
			add("uploading", j.StartedAt)
		}
		switch j.State {
		case store.JobFailure:
			failed = earliest(failed, j.FinishedAt)
		case store.JobCanceled:
			cancelled = earliest(cancelled, j.FinishedAt)
		}
	}
	last := js[len(js)-1]
	switch {
	case failed != nil:
		add("failed", failed)
	case cancelled != nil:
		add("cancelled", cancelled)
	case last.State == store.JobSuccess:
		add("done", last.FinishedAt)
	}
	return out
}

func earliest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}

// imageStatus is a compose's status as the API shows it: derived from its
// jobs, with the download's link, expiry and size once it succeeded.
func (s *Server) imageStatus(r *http.Request, c store.Compose, js []store.Job, built *builtArches) (imageStatus, error) {
	st := deriveStatus(js, Prefix+"/composes/"+c.ID+"/download")
	st.Waiting = waitingFor(r.Context(), js, st.Status, built)
	if us := st.UploadStatus; us != nil && us.Status == "success" && us.inStore {
		if err := s.downloadLink(r, c, js, us); err != nil {
			return st, err
		}
		if res := imageResult(js); res.Filename != "" && !c.Expired {
			us.Options["size"] = res.Size
		}
	}
	return st, nil
}

func (s *Server) getComposeStatus(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	org, id := orgOf(r.Context()), params["composeId"]
	c, err := s.cfg.Store.GetCompose(r.Context(), org, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	js, err := s.cfg.Store.ComposeJobs(r.Context(), org, id)
	if err != nil {
		return err
	}
	st, err := s.imageStatus(r, c, js, s.builtArches())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, composeStatus{ImageStatus: st, Request: c.Request, CreatedAt: c.CreatedAt,
		BlueprintID: c.BlueprintID, BlueprintVersion: c.BlueprintVersion})
	return nil
}

// downloadLink completes a finished upload's url with the time it expires.
// A store that presigns gives a URL that downloads the image straight from
// it, valid for the download expiry (or until retention removes the image,
// when that is sooner): expires_at is when that URL stops working. Other
// stores keep the API's download path, which lasts until retention removes
// the image: expires_at is then (creation + retention's maximum age), left
// out when the API does not know the retention.
func (s *Server) downloadLink(r *http.Request, c store.Compose, js []store.Job, us *uploadStatus) error {
	now := s.cfg.Now()
	var removal time.Time
	if s.cfg.RetentionMaxAge > 0 {
		removal = c.CreatedAt.Add(s.cfg.RetentionMaxAge)
	}
	p, ok := s.cfg.Artifacts.(artifacts.Presigner)
	res := imageResult(js)
	if !ok && res.Filename != "" && len(s.cfg.DownloadKey) > 0 {
		// A signed link, for as long as a presigned one would last.
		expiry := s.cfg.DownloadExpiry
		if !removal.IsZero() {
			expiry = min(expiry, removal.Sub(now))
		}
		if expiry >= time.Second {
			expires := now.Add(expiry).Truncate(time.Second)
			us.Options["url"] = s.signedDownloadURL(c.OrgID, c.ID, expires)
			us.Options["expires_at"] = expires.UTC().Format(time.RFC3339)
			return nil
		}
	}
	if !ok || res.Filename == "" {
		if !removal.IsZero() {
			us.Options["expires_at"] = removal.UTC().Format(time.RFC3339)
		}
		return nil
	}
	expiry := min(s.cfg.DownloadExpiry, artifacts.MaxPresignExpiry)
	if !removal.IsZero() {
		expiry = min(expiry, removal.Sub(now))
	}
	if expiry < time.Second {
		us.Options["expires_at"] = removal.UTC().Format(time.RFC3339)
		return nil // expired: the download path says so
	}
	u, err := p.PresignGet(r.Context(), c.ID, res.Filename, res.Filename, expiry)
	if err != nil {
		return err
	}
	us.Options["url"] = u.String()
	us.Options["expires_at"] = now.Add(expiry.Truncate(time.Second)).UTC().Format(time.RFC3339)
	return nil
}

// cancelCompose cancels whatever still runs; the compose stays listed
// and ends as a failure, cancelled by the user.
func (s *Server) cancelCompose(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	org, id := orgOf(r.Context()), params["composeId"]
	err := s.cfg.Store.CancelCompose(r.Context(), org, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrEnded):
		return newError(http.StatusConflict, "the compose has already ended (or is being cancelled): there is nothing left to cancel")
	case err != nil:
		return err
	}
	s.cfg.Log.InfoContext(r.Context(), "compose cancelled", "compose_id", id, "org_id", org, "request_id", requestID(r.Context()))
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
	return nil
}

// deleteCompose cancels whatever still runs, then hides the compose.
func (s *Server) deleteCompose(w http.ResponseWriter, r *http.Request, params map[string]string) error {
	org, id := orgOf(r.Context()), params["composeId"]
	if err := s.cfg.Store.CancelCompose(r.Context(), org, id); err != nil && !errors.Is(err, store.ErrEnded) {
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		return err
	}
	if err := s.cfg.Store.HideCompose(r.Context(), org, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		return err
	}
	s.cfg.Log.InfoContext(r.Context(), "compose deleted", "compose_id", id, "org_id", org, "request_id", requestID(r.Context()))
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
	return nil
}
