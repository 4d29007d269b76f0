// Package telemetry is kiln's OpenTelemetry tracing: the tracer provider
// (off unless an OTLP/HTTP endpoint is given), the W3C trace context that
// carries a compose's trace from the API through the job queue to the
// workers, and a log handler that adds the trace and span IDs to every
// log line made with a context.
//
// It depends on the OpenTelemetry API and SDK only, not on the service or
// the worker, so that both (and the worker's contract with the service)
// can use it. Code that makes spans calls Tracer(); while tracing is off
// that is OpenTelemetry's no-op tracer, which records nothing.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName is the instrumentation scope of kiln's spans.
const TracerName = "github.com/kiln-project/kiln"

// The attributes kiln's spans carry.
const (
	ComposeID = attribute.Key("kiln.compose_id")
	JobID     = attribute.Key("kiln.job_id")
	JobType   = attribute.Key("kiln.job_type")
	ImageType = attribute.Key("kiln.image_type")
	Arch      = attribute.Key("kiln.arch")
	Stage     = attribute.Key("kiln.stage")
	Pipeline  = attribute.Key("kiln.pipeline")
	Worker    = attribute.Key("kiln.worker")
	Cached    = attribute.Key("kiln.cached")
)

// TracesPath is where an OTLP/HTTP collector takes traces.
const TracesPath = "/v1/traces"

// Tracer returns kiln's tracer from the global provider: the no-op one
// until Setup installs an exporting one.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(TracerName) }

// TracesURL checks an OTLP/HTTP endpoint as given to --otlp-endpoint and
// returns the URL traces are posted to: the collector's base address,
// such as http://collector:4318, with /v1/traces added (an address that
// already ends in /v1/traces is taken as it is).
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an http:// or https:// address of an OTLP/HTTP collector, such as http://collector:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, TracesPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + TracesPath
	}
	return u.String(), nil
}

// Setup installs the W3C trace-context propagator and, when endpoint is
// set, a tracer provider that batches spans and exports them over
// OTLP/HTTP to it, as serviceName at version. With no endpoint, tracing
// is off: the no-op provider, nothing recorded, nothing sent. The
// exporter honours the OTEL_EXPORTER_OTLP_* settings of headers, timeout,
// compression and certificates, the provider OTEL_TRACES_SAMPLER and
// OTEL_BSP_*, and the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES; the endpoint given here wins over
// OTEL_EXPORTER_OTLP_ENDPOINT.
//
// The function returned flushes the spans still buffered and stops the
// provider; call it on exit, with a deadline.
func Setup(ctx context.Context, endpoint, serviceName, version string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if endpoint == "" {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	}
	traces, err := TracesURL(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(traces))
	if err != nil {
		return nil, fmt.Errorf("the OTLP exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// over kiln's own names.
	res, err := sdkresource.New(ctx, sdkresource.WithTelemetrySDK(), sdkresource.WithHost(),
		sdkresource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
		sdkresource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// LogErrorsTo sends what goes wrong in tracing (a collector that does not
// answer, spans dropped) to log, as warnings.
func LogErrorsTo(log *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", "err", err)
	}))
}

// Inject returns the traceparent of the span in ctx ("00-<trace>-<span>-<flags>"),
// or "" when ctx holds none.
func Inject(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// Extract returns ctx with the remote span context traceparent names, so
// that spans started from it are its children; an empty or malformed
// traceparent leaves ctx as it is.
func Extract(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Fail records err on span and marks it failed.
func Fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// FailReason marks span failed with a reason that is not a Go error (a
// job's failure as the worker reports it).
func FailReason(span trace.Span, reason string) {
	span.RecordError(errors.New(reason))
	span.SetStatus(codes.Error, reason)
}

// NewLogHandler wraps h so that every record logged with a context that
// holds a span (log.InfoContext(ctx, ...)) carries trace_id and span_id.
// A record logged without one, or with a context that has no span, is
// left as it is.
func NewLogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
