package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kiln-project/kiln/internal/telemetry/telemetrytest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// A client's traceparent does not choose the trace its request and
// compose land in, nor switch their sampling off: the request's span is
// the root of a trace of its own, linked to the caller's span.
func TestRequestSpanIgnoresTheCallersTrace(t *testing.T) {
	rec := telemetrytest.Record(t)
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })

	ts := newTestServer(t, nil)
	const callerTrace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	// Flags 00: the caller asks for no sampling.
	r := ts.do(t, "acme", http.MethodGet, "/distributions", nil, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-00")
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	require.NotEmpty(t, rec.Ended(), "the request was traced although the caller asked for no sampling")
	var server sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if !s.Parent().IsValid() {
			server = s
		}
	}
	require.NotNil(t, server, "the request's span is a root")
	assert.NotEqual(t, callerTrace, server.SpanContext().TraceID().String())
	require.Len(t, server.Links(), 1)
	assert.Equal(t, callerTrace, server.Links()[0].SpanContext.TraceID().String())
	assert.Equal(t, callerSpan, server.Links()[0].SpanContext.SpanID().String())
	for _, s := range rec.Ended() {
		assert.NotEqual(t, callerTrace, s.SpanContext().TraceID().String(), "span %q joined the caller's trace", s.Name())
	}
}
