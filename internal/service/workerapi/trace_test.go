package workerapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/telemetry/telemetrytest"
)

// A leased job's queue wait is a span of its compose's trace, from when it
// was queued to when it was leased; a job without a trace context gets
// none.
func TestQueueWaitSpan(t *testing.T) {
	rec := telemetrytest.Record(t)

	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	queued := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	started := queued.Add(90 * time.Second)
	j := store.Job{ID: "j1", ComposeID: "c1", Type: "build", Arch: "aarch64", QueuedAt: queued, StartedAt: &started, TraceParent: parent}
	ctx := queueWaitSpan(context.Background(), j, "w1")

	require.Len(t, rec.Ended(), 1)
	s := rec.Ended()[0]
	assert.Equal(t, "queue wait", s.Name())
	assert.Equal(t, queued, s.StartTime().UTC())
	assert.Equal(t, started, s.EndTime().UTC())
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.SpanContext().TraceID().String())
	assert.Equal(t, "b7ad6b7169203331", s.Parent().SpanID().String())
	for _, kv := range []any{telemetry.ComposeID.String("c1"), telemetry.JobID.String("j1"), telemetry.JobType.String("build"), telemetry.Arch.String("aarch64"), telemetry.Worker.String("w1")} {
		assert.Contains(t, s.Attributes(), kv)
	}
	require.Len(t, s.Events(), 1)
	assert.Equal(t, "leased", s.Events()[0].Name)
	assert.Equal(t, started, s.Events()[0].Time.UTC())
	assert.Equal(t, s.SpanContext().SpanID(), trace.SpanContextFromContext(ctx).SpanID(), "the job's log line is in the span")

	j.TraceParent = ""
	ctx = queueWaitSpan(context.Background(), j, "w1")
	assert.Len(t, rec.Ended(), 1, "no span without a trace context")
	assert.False(t, trace.SpanContextFromContext(ctx).IsValid())
}
