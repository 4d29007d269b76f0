package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("compose_id", "c1")
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))

	log.InfoContext(ctx, "with a span")
	log.Info("without a context")
	log.InfoContext(context.Background(), "with a context without a span")

	var lines []map[string]any
	dec := json.NewDecoder(&buf)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		lines = append(lines, m)
	}
	require.Len(t, lines, 3)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", lines[0]["trace_id"])
	assert.Equal(t, "b7ad6b7169203331", lines[0]["span_id"])
	assert.Equal(t, "c1", lines[0]["compose_id"], "the attributes of With stay")
	for _, l := range lines[1:] {
		assert.NotContains(t, l, "trace_id", l["msg"])
		assert.NotContains(t, l, "span_id", l["msg"])
	}
}

func TestInjectExtractRoundTrip(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())

	assert.Empty(t, Inject(context.Background()), "no span, no traceparent")

	ctx, parent := tp.Tracer("test").Start(context.Background(), "api")
	tp1 := Inject(ctx)
	parent.End()
	assert.Regexp(t, regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`), tp1)

	got := trace.SpanContextFromContext(Extract(context.Background(), tp1))
	require.True(t, got.IsValid())
	assert.True(t, got.IsRemote())
	assert.Equal(t, parent.SpanContext().TraceID(), got.TraceID())
	assert.Equal(t, parent.SpanContext().SpanID(), got.SpanID())
	assert.True(t, got.IsSampled())

	_, child := tp.Tracer("test").Start(Extract(context.Background(), tp1), "job")
	child.End()
	ended := rec.Ended()
	require.Len(t, ended, 2)
	assert.Equal(t, parent.SpanContext().TraceID(), ended[1].SpanContext().TraceID())
	assert.Equal(t, parent.SpanContext().SpanID(), ended[1].Parent().SpanID())

	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"} {
		assert.False(t, trace.SpanContextFromContext(Extract(context.Background(), bad)).IsValid(), bad)
	}
}

func TestFailMarksTheSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, s := tp.Tracer("test").Start(context.Background(), "x")
	Fail(s, errors.New("disk full"))
	s.End()
	_, s = tp.Tracer("test").Start(context.Background(), "y")
	FailReason(s, "the blueprint is invalid")
	s.End()
	for i, want := range []string{"disk full", "the blueprint is invalid"} {
		sp := rec.Ended()[i]
		assert.Equal(t, codes.Error, sp.Status().Code)
		assert.Equal(t, want, sp.Status().Description)
		require.Len(t, sp.Events(), 1)
		assert.Equal(t, "exception", sp.Events()[0].Name)
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":              "http://collector:4318/v1/traces",
		"http://collector:4318/":             "http://collector:4318/v1/traces",
		"https://otel.example.com/otlp":      "https://otel.example.com/otlp/v1/traces",
		"https://otel.example.com/v1/traces": "https://otel.example.com/v1/traces",
	} {
		got, err := TracesURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"collector:4318", "grpc://collector:4317", "http://", "http://c:4318/?x=1", "://"} {
		_, err := TracesURL(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "such as http://collector:4318", bad)
	}
}

// collector counts the OTLP/HTTP requests it receives.
type collector struct {
	mu       sync.Mutex
	posts    []*http.Request
	services []string // the service.name of each batch
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	_ = proto.Unmarshal(data, &req)
	c.mu.Lock()
	c.posts = append(c.posts, r)
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				c.services = append(c.services, kv.GetValue().GetStringValue())
			}
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) got() []*http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*http.Request(nil), c.posts...)
}

func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	for _, env := range []string{"", "kiln-eu1"} {
		t.Run("OTEL_SERVICE_NAME="+env, func(t *testing.T) {
			if env != "" {
				t.Setenv("OTEL_SERVICE_NAME", env)
			}
			col := exportOne(t)
			want := "kiln-test"
			if env != "" {
				want = env
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			assert.Equal(t, []string{want}, col.services, "the service's name; the variable wins")
		})
	}
}

// exportOne sets tracing up towards a collector, makes a span and shuts
// tracing down, and returns what the collector received.
func exportOne(t *testing.T) *collector {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	ctx := context.Background()
	shutdown, err := Setup(ctx, srv.URL, "kiln-test", "v0")
	require.NoError(t, err)
	defer Setup(ctx, "", "", "") //nolint:errcheck // back to off for other tests

	_, span := Tracer().Start(ctx, "something")
	assert.True(t, span.IsRecording())
	span.End()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, shutdown(sctx), "shutting down flushes the span")

	posts := col.got()
	require.NotEmpty(t, posts)
	for _, p := range posts {
		assert.Equal(t, http.MethodPost, p.Method)
		assert.Equal(t, TracesPath, p.URL.Path)
		assert.Equal(t, "application/x-protobuf", p.Header.Get("Content-Type"))
	}
	return col
}

func TestSetupOffSendsNothing(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	// Even with the standard variables pointing at a collector, no
	// --otlp-endpoint means no tracing.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", srv.URL+TracesPath)
	ctx := context.Background()
	shutdown, err := Setup(ctx, "", "kiln-test", "v0")
	require.NoError(t, err)

	sctx, span := Tracer().Start(ctx, "something")
	assert.False(t, span.IsRecording())
	assert.False(t, span.SpanContext().IsValid())
	assert.Empty(t, Inject(sctx), "no span, nothing to carry")
	span.End()
	require.NoError(t, shutdown(ctx))
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, col.got())

	// The propagator is installed all the same: a trace context that
	// arrives still reaches the spans' contexts, and so the logs.
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	cctx, child := Tracer().Start(Extract(ctx, parent), "child")
	child.End()
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", trace.SpanContextFromContext(cctx).TraceID().String())
	assert.Equal(t, parent, Inject(cctx), "off, the context passes on unchanged")
}

func TestSetupRefusesABadEndpoint(t *testing.T) {
	_, err := Setup(context.Background(), "collector:4318", "kiln-test", "v0")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http://collector:4318")
}
