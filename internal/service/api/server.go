// Package api is the image-builder HTTP API under /api/image-builder/v1.
// The OpenAPI document (openapi.yaml, embedded and served) is the source of
// truth: it routes each request to its operation and validates it before a
// handler runs, so handlers only translate, act and reply.
//
// Middleware order: request ID → logging → recovery → body limit and
// body deadline → route
// → authentication (tenant) → validation → handler.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/bodydeadline"
	"github.com/kiln-project/kiln/internal/service/metrics"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/telemetry"
)

// Config configures the API. The zero value of each field means its
// default.
type Config struct {
	Store   store.Backend
	Distros *distro.Registry
	// Artifacts holds the composes' files. Default: a local store in the
	// working directory.
	Artifacts artifacts.Store
	// DownloadExpiry is how long a presigned download URL lasts, when the
	// artifact store can presign (S3). Default 7 days, which is also the
	// most a presigned URL can last.
	DownloadExpiry time.Duration
	// DownloadKey, when set, signs download links for artifact stores
	// that cannot presign (a local directory): the status's download URL
	// then works without an API token until it expires, like a presigned
	// bucket URL. It must stay the same across restarts for links to
	// outlive them.
	DownloadKey []byte
	// RetentionMaxAge, when known, is how long after its creation a
	// compose's files are removed: a local download's expires_at.
	RetentionMaxAge time.Duration
	// TrustIdentityHeader honours x-rh-identity: only behind a gateway
	// that sets it (and strips it from clients).
	TrustIdentityHeader bool
	// MaxBodyBytes bounds request bodies. Default: 1 MiB.
	MaxBodyBytes int64
	// BodyTimeout bounds how long a client may take to send a request's
	// body, from when its headers arrived. Default 30s.
	BodyTimeout time.Duration
	Quota       Quota
	RateLimit   RateLimit
	LogStreams  LogStreams
	// Targets are the upload types composes may ask for. Default: local.
	Targets target.Registry
	// Packages answers GET /packages (nil: 503).
	Packages PackageSearcher
	// Metrics, when set, records requests by route and code.
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Version string
	Now     func() time.Time
}

func (c *Config) withDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Version == "" {
		c.Version = "devel"
	}
	if c.Artifacts == nil {
		c.Artifacts = artifacts.Local{}
	}
	if c.DownloadExpiry <= 0 {
		c.DownloadExpiry = 7 * 24 * time.Hour
	}
	if c.Targets == nil {
		c.Targets = target.New(target.Local{}, target.StoreLink{})
	}
	c.Quota.withDefaults()
	c.RateLimit.withDefaults()
	c.LogStreams.withDefaults()
}

// Server serves the API.
type Server struct {
	cfg      Config
	spec     *spec
	handlers map[string]handler
	limits   *limiters
	streams  streamCounts
	watchers watchers
}

// handler serves one operation; params are the path parameters.
type handler func(w http.ResponseWriter, r *http.Request, params map[string]string) error

// New returns the API server.
func New(cfg Config) (*Server, error) {
	cfg.withDefaults()
	if cfg.Store == nil || cfg.Distros == nil {
		return nil, errors.New("api: a store and the distributions are required")
	}
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, spec: sp, limits: &limiters{cfg: cfg.RateLimit}}
	s.handlers = map[string]handler{
		"composeImage":         s.composeImage,
		"getComposes":          s.getComposes,
		"getComposeStatus":     s.getComposeStatus,
		"deleteCompose":        s.deleteCompose,
		"cancelCompose":        s.cancelCompose,
		"getComposeLogs":       s.getComposeLogs,
		"getComposeManifests":  s.getComposeManifests,
		"getComposeSBOMs":      s.getComposeSBOMs,
		"getComposeMetadata":   s.getComposeMetadata,
		"downloadCompose":      s.downloadCompose,
		"headComposeDownload":  s.downloadCompose,
		"createBlueprint":      s.createBlueprint,
		"updateBlueprint":      s.updateBlueprint,
		"getBlueprint":         s.getBlueprint,
		"getBlueprints":        s.getBlueprints,
		"deleteBlueprint":      s.deleteBlueprint,
		"composeBlueprint":     s.composeBlueprint,
		"getBlueprintComposes": s.getBlueprintComposes,
		"exportBlueprint":      s.exportBlueprint,
		"getBlueprintVersions": s.getBlueprintVersions,
		"renderBlueprint":      s.renderBlueprint,
		"importBlueprint":      s.importBlueprint,
		"getPackages":          s.getPackages,
		"getDistributions":     s.getDistributions,
		"getDistribution":      s.getDistribution,
		"getArchitectures":     s.getArchitectures,
		"getUploadTypes":       s.getUploadTypes,
		"getIdentity":          s.getIdentity,
		"getVersion":           s.getVersion,
		"getReadiness":         s.getReadiness,
		"getOpenapi":           s.getOpenapi,
	}
	return s, nil
}

// Handler returns the HTTP handler: the API under Prefix, and /livez and
// /readyz beside it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { _ = s.getReadiness(w, r, nil) })
	mux.Handle(Prefix+"/", http.HandlerFunc(s.serveAPI))
	return s.withRequestID(s.withTracing(s.withLogging(s.withRecovery(mux))))
}

// withTracing makes each API request a server span (named by its
// operation once routed, see serveAPI), the child of the trace context
// the request carries if any: the access log and every log line and span
// of the request are in it. Probes (/livez, /readyz) are not traced.
func (s *Server) withTracing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, Prefix+"/") {
			next.ServeHTTP(w, r)
			return
		}
		// A caller's traceparent is a tenant's input: it may not choose
		// the trace (or its sampling) that the compose's jobs continue.
		// Each request starts a trace of its own, linked to the caller's.
		caller := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		ctx, span := telemetry.Tracer().Start(r.Context(), r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithNewRoot(),
			trace.WithLinks(trace.Link{SpanContext: caller}),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
				attribute.String("kiln.request_id", requestID(r.Context()))))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) withLogging(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.cfg.Log.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration_ms", float64(s.cfg.Now().Sub(start).Microseconds())/1000, "request_id", requestID(r.Context()))
	})
}

func (s *Server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Log.ErrorContext(r.Context(), "panic serving a request", "panic", fmt.Sprint(v), "request_id", requestID(r.Context()))
				writeError(w, r, newError(http.StatusInternalServerError))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// serveAPI routes a request through the OpenAPI document, authenticates
// it, validates it and runs its operation's handler.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	routeName := "unmatched"
	if s.cfg.Metrics != nil {
		start := time.Now()
		defer func() {
			code := 0
			if sw, ok := w.(*statusWriter); ok {
				code = sw.status
			}
			s.cfg.Metrics.HTTPDuration.WithLabelValues(routeName, r.Method, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		}()
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, r, newError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes)))
		return
	}
	bodydeadline.Set(w, r, s.cfg.BodyTimeout, false)
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	route, params, err := s.spec.router.FindRoute(r)
	if err != nil {
		if allowed := s.allowedMethods(r); len(allowed) > 0 {
			e := newError(http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s: it takes %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			e.Header = http.Header{"Allow": []string{strings.Join(allowed, ", ")}}
			writeError(w, r, e)
			return
		}
		writeError(w, r, newError(http.StatusNotFound, fmt.Sprintf("no API operation at %s", r.URL.Path)))
		return
	}
	op := route.Operation
	routeName = op.OperationID
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetName(op.OperationID)
		span.SetAttributes(attribute.String("http.route", route.Path))
	}
	public := op.Security != nil && len(*op.Security) == 0
	if !public {
		var org string
		var aerr *apiError
		if (op.OperationID == "downloadCompose" || op.OperationID == "headComposeDownload") && r.URL.Query().Has("signature") {
			org, aerr = s.signedDownloadOrg(r, params["composeId"])
		} else {
			org, aerr = s.authenticate(r)
		}
		if aerr != nil {
			writeError(w, r, aerr)
			return
		}
		if ok, wait := s.limits.allow(org, s.cfg.Now()); !ok {
			writeError(w, r, tooManyRequests(wait))
			return
		}
		r = withOrg(r, org)
	}
	if e := unsupportedMediaType(r, op); e != nil {
		writeError(w, r, e)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		if e := s.bodyReadError(err); e != nil {
			writeError(w, r, e)
			return
		}
		schema := validationProblems(err)
		writeError(w, r, problemsError(http.StatusBadRequest, append(schema, s.furtherProblems(r, op.OperationID, err, schema)...)))
		return
	}
	h := s.handlers[op.OperationID]
	if h == nil {
		writeError(w, r, newError(http.StatusNotImplemented, fmt.Sprintf("%s is not implemented yet", op.OperationID)))
		return
	}
	if err := h(w, r, params); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.cfg.Log.ErrorContext(r.Context(), "handler failed", "operation", op.OperationID, "err", err, "request_id", requestID(r.Context()), "org_id", orgOf(r.Context()))
			ae = newError(http.StatusInternalServerError)
		}
		writeError(w, r, ae)
	}
}

// validationProblems turns the validator's errors into one problem each;
// a problem with the request body names its field. The validator nests
// its lists: a MultiError of RequestErrors, each of which may hold a
// MultiError of the body's SchemaErrors; every leaf is one problem.
func validationProblems(err error) []problem {
	var out []problem
	for _, e := range validationLeaves(err) {
		out = append(out, describeValidation(e))
	}
	return out
}

// validationLeaves flattens the validator's nested lists into one error
// per problem, each a RequestError when it came in one (so the problem
// keeps knowing whether it is about a parameter or the body).
func validationLeaves(err error) []error {
	if me, ok := err.(openapi3.MultiError); ok {
		var out []error
		for _, e := range me {
			out = append(out, validationLeaves(e)...)
		}
		return out
	}
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		if me, ok := re.Err.(openapi3.MultiError); ok {
			var out []error
			for _, e := range me {
				for _, leaf := range validationLeaves(e) {
					if errors.As(leaf, new(*openapi3filter.RequestError)) {
						out = append(out, leaf)
						continue
					}
					out = append(out, &openapi3filter.RequestError{Input: re.Input, Parameter: re.Parameter, RequestBody: re.RequestBody, Err: leaf})
				}
			}
			return out
		}
	}
	return []error{err}
}

// unsupportedProperty matches the validator's reason for a property that
// additionalProperties: false refuses.
var unsupportedProperty = regexp.MustCompile(`^property "([^"]+)" is unsupported$`)

// schemaField is the body field a schema error is about: the value's
// path, and for a property the schema does not know, that property.
func schemaField(se *openapi3.SchemaError) string {
	field := fieldPath(se.JSONPointer())
	if m := unsupportedProperty.FindStringSubmatch(se.Reason); m != nil {
		field = fieldPath(append(se.JSONPointer(), m[1]))
	}
	return field
}

func describeValidation(err error) problem {
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		var se *openapi3.SchemaError
		if errors.As(re.Err, &se) {
			if re.Parameter != nil {
				where := re.Parameter.In + " parameter " + re.Parameter.Name
				if p := fieldPath(se.JSONPointer()); p != "" {
					where += "." + p
				}
				return problem{Message: where + ": " + schemaReason(se)}
			}
			field := schemaField(se)
			if field == "" {
				return problem{Message: "the request body: " + schemaReason(se)}
			}
			return problem{Field: field, Message: schemaReason(se)}
		}
		if re.Parameter != nil {
			return problem{Message: fmt.Sprintf("%s parameter %s: %v", re.Parameter.In, re.Parameter.Name, re.Err)}
		}
		if re.RequestBody != nil {
			return problem{Message: fmt.Sprintf("the request body: %v", re.Err)}
		}
		return problem{Message: re.Err.Error()}
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		return problem{Field: schemaField(se), Message: schemaReason(se)}
	}
	return problem{Message: err.Error()}
}

// schemaReason is what a schema error tells the user. A value that fits
// none of a oneOf's forms gets the field's description, which says what
// it takes, rather than the validator's bare "doesn't match any schema".
func schemaReason(se *openapi3.SchemaError) string {
	if se.SchemaField == "oneOf" && se.Schema != nil && se.Schema.Description != "" && !errors.Is(se, openapi3.ErrOneOfConflict) {
		return "the value has none of the forms this field takes: " + strings.TrimSuffix(se.Schema.Description, ".")
	}
	return se.Reason
}

// fieldPath writes a JSON pointer as a.b[0].c.
func fieldPath(ptr []string) string {
	var b strings.Builder
	for _, p := range ptr {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}
