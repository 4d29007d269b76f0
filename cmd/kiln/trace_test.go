package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpCollector is an OTLP/HTTP trace receiver: it decodes what it is
// sent (protobuf, gzipped or not) and keeps every span.
type otlpCollector struct {
	t        *testing.T
	mu       sync.Mutex
	requests int
	spans    []*tracepb.Span
	services map[string]bool
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		c.t.Errorf("the collector got %s %s; OTLP/HTTP posts to /v1/traces", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		c.t.Errorf("the collector got a body that is no ExportTraceServiceRequest: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.requests++
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				c.services[kv.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func newOTLPCollector(t *testing.T) (*otlpCollector, string) {
	c := &otlpCollector{t: t, services: map[string]bool{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return anyValue(kv.GetValue())
		}
	}
	return ""
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	}
	return v.String()
}

// tracedServe runs a fake `kiln serve` with an in-process worker and the
// environment and flags given, builds one compose through it, stops it
// (SIGTERM, which flushes its spans) and returns the compose's ID, its
// build log and the service's JSON log lines.
func tracedServe(t *testing.T, env []string, flags ...string) (string, string, []map[string]any) {
	bin := fakeKiln(t)
	data, cache := t.TempDir(), engineCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", data, "--worker-arch", "x86_64"}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "KILN_FAKE_STAGE_TIME=10ms"), env...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("kiln serve's log:\n%s", tail(stderr.String(), 60))
		}
	})
	url := servedURL(stdout)
	require.NotEmpty(t, url, "kiln serve did not start:\n%s", stderr.String())

	tok, _, err := run(t, "token", "create", "--org", "acme", "--name", "trace", "--data", data)
	require.NoError(t, err)
	svc := []string{"--server", url, "--token", strings.TrimSpace(tok)}
	bp := writeBlueprint(t, "name = \"traced\"\n[customizations]\nhostname = \"traced\"\n")
	idOut, errOut, err := run(t, append([]string{"compose", "start", bp, "-t", "tar", "--arch", "x86_64"}, svc...)...)
	require.NoError(t, err, errOut)
	id := strings.TrimSpace(idOut)
	st, errOut, err := run(t, append([]string{"compose", "status", id, "--wait"}, svc...)...)
	require.NoError(t, err, errOut)
	require.Contains(t, st, "success")
	buildLog, errOut, err := run(t, append([]string{"compose", "logs", id}, svc...)...)
	require.NoError(t, err, errOut)
	stop()

	var lines []map[string]any
	for _, l := range strings.Split(stderr.String(), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		lines = append(lines, m)
	}
	return id, buildLog, lines
}

// One compose is one trace: the API request, the compose's creation, the
// queue wait of each job, the three jobs on the worker, a span per build
// stage and the upload, each under its parent; and every log line about
// the compose carries the trace's ID.
func TestTraceOfACompose(t *testing.T) {
	col, endpoint := newOTLPCollector(t)
	id, buildLog, lines := tracedServe(t, []string{"OTEL_BSP_SCHEDULE_DELAY=200"}, "--otlp-endpoint", endpoint)

	col.mu.Lock()
	spans := append([]*tracepb.Span(nil), col.spans...)
	services := col.services
	col.mu.Unlock()
	assert.True(t, services["kiln"], "the spans name the service: %v", services)

	var create *tracepb.Span
	for _, s := range spans {
		if s.GetName() == "create compose" && attr(s, "kiln.compose_id") == id {
			create = s
		}
	}
	require.NotNil(t, create, "no span of the compose's creation among %d", len(spans))
	traceID := create.GetTraceId()
	byID := map[string]*tracepb.Span{}
	var trace []*tracepb.Span
	for _, s := range spans {
		if bytes.Equal(s.GetTraceId(), traceID) {
			trace = append(trace, s)
			byID[string(s.GetSpanId())] = s
		} else {
			assert.NotEqual(t, id, attr(s, "kiln.compose_id"), "span %q of the compose is in another trace", s.GetName())
		}
	}
	named := func(name string) []*tracepb.Span {
		var out []*tracepb.Span
		for _, s := range trace {
			if s.GetName() == name {
				out = append(out, s)
			}
		}
		return out
	}
	parentOf := func(s *tracepb.Span) *tracepb.Span { return byID[string(s.GetParentSpanId())] }
	one := func(name string) *tracepb.Span {
		t.Helper()
		ss := named(name)
		require.Len(t, ss, 1, "spans named %q in the trace", name)
		return ss[0]
	}

	api := parentOf(create)
	require.NotNil(t, api, "the compose's creation has a parent in the trace")
	assert.Equal(t, "composeImage", api.GetName(), "the API span is named by the operation")
	assert.Equal(t, tracepb.Span_SPAN_KIND_SERVER, api.GetKind())
	assert.Empty(t, api.GetParentSpanId(), "the request is the trace's root")
	assert.Equal(t, "201", attr(api, "http.response.status_code"))
	assert.Equal(t, "tar", attr(create, "kiln.image_type"))

	jobs := map[string]*tracepb.Span{}
	for _, typ := range []string{"depsolve", "build", "upload"} {
		job := one("job " + typ)
		jobs[typ] = job
		assert.Equal(t, create.GetSpanId(), job.GetParentSpanId(), "job %s is a child of the compose's creation", typ)
		assert.Equal(t, id, attr(job, "kiln.compose_id"))
		assert.NotEmpty(t, attr(job, "kiln.job_id"))
		assert.Equal(t, tracepb.Status_STATUS_CODE_UNSET, job.GetStatus().GetCode(), "job %s succeeded", typ)
	}
	assert.Equal(t, "tar", attr(jobs["depsolve"], "kiln.image_type"))
	assert.Equal(t, "x86_64", attr(jobs["build"], "kiln.arch"))

	waits := named("queue wait")
	require.Len(t, waits, 3, "a queue wait per job")
	waited := map[string]bool{}
	for _, w := range waits {
		assert.Equal(t, create.GetSpanId(), w.GetParentSpanId())
		assert.LessOrEqual(t, w.GetStartTimeUnixNano(), w.GetEndTimeUnixNano())
		require.Len(t, w.GetEvents(), 1)
		assert.Equal(t, "leased", w.GetEvents()[0].GetName())
		waited[attr(w, "kiln.job_id")] = true
	}
	for typ, job := range jobs {
		assert.True(t, waited[attr(job, "kiln.job_id")], "job %s's queue wait", typ)
	}

	// A stage span per stage the build ran, as many as its log counts.
	m := regexp.MustCompile(`== \[\d+/(\d+)\]`).FindAllStringSubmatch(buildLog, -1)
	require.NotEmpty(t, m, "the build log counts its stages:\n%s", buildLog)
	var stages []*tracepb.Span
	for _, s := range trace {
		if strings.HasPrefix(s.GetName(), "stage ") {
			stages = append(stages, s)
			assert.Equal(t, jobs["build"].GetSpanId(), s.GetParentSpanId(), "stage %s is a child of the build job", s.GetName())
			assert.Equal(t, strings.TrimPrefix(s.GetName(), "stage "), attr(s, "kiln.stage"))
			assert.NotEmpty(t, attr(s, "kiln.pipeline"))
		}
	}
	assert.Len(t, stages, len(m), "one span per stage run")
	assert.Equal(t, strconv.Itoa(len(m)), m[0][1], "the log has a line for every stage")

	var uploads []*tracepb.Span
	for _, s := range trace {
		if strings.HasPrefix(s.GetName(), "upload ") {
			uploads = append(uploads, s)
		}
	}
	require.Len(t, uploads, 1, "the upload's span")
	assert.Equal(t, jobs["upload"].GetSpanId(), uploads[0].GetParentSpanId())
	assert.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, uploads[0].GetKind())

	// Every log line about the compose carries its trace's ID.
	want := hex.EncodeToString(traceID)
	about := map[string]int{}
	for _, l := range lines {
		if l["compose_id"] != id {
			continue
		}
		about[l["msg"].(string)]++
		assert.Equal(t, want, l["trace_id"], "log line %v", l)
		assert.Regexp(t, `^[0-9a-f]{16}$`, l["span_id"], "log line %v", l)
	}
	assert.Equal(t, 1, about["compose accepted"], "%v", about)
	assert.Equal(t, 3, about["job leased"], "%v", about)
	assert.Equal(t, 3, about["job started"], "%v", about)
	assert.Equal(t, 3, about["job done"], "%v", about)
	assert.Equal(t, 3, about["job finished"], "%v", about)
}

// Without --otlp-endpoint nothing is sent, even with the standard
// OpenTelemetry variables pointing at a collector, and the log lines
// carry no trace ID: there is no trace.
func TestNoTracingWithoutAnEndpoint(t *testing.T) {
	col, endpoint := newOTLPCollector(t)
	id, _, lines := tracedServe(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_BSP_SCHEDULE_DELAY=200", "KILN_OTLP_ENDPOINT="})
	col.mu.Lock()
	assert.Zero(t, col.requests, "nothing is sent with tracing off")
	col.mu.Unlock()
	n := 0
	for _, l := range lines {
		if l["compose_id"] == id {
			n++
			assert.NotContains(t, l, "trace_id", "log line %v", l)
		}
	}
	assert.Greater(t, n, 5, "the compose's log lines")
}

// A bad --otlp-endpoint stops kiln serve and kiln worker at start, and
// says what it takes.
func TestBadOTLPEndpoint(t *testing.T) {
	_, _, err := run(t, "--cache-dir", t.TempDir(), "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--workers", "0", "--otlp-endpoint", "collector:4318")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--otlp-endpoint")
	assert.Contains(t, err.Error(), "such as http://collector:4318")

	_, _, err = run(t, "--cache-dir", t.TempDir(), "worker", "--server", "http://127.0.0.1:1", "--worker-token", "x", "--arch", "x86_64", "--otlp-endpoint", "grpc://collector:4317")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--otlp-endpoint")
}
