package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/telemetry"
	"github.com/kiln-project/kiln/internal/telemetry/telemetrytest"
)

// The engine's stage events become one span per stage, children of the
// build's span, timed by the events, a failed stage marked so and a
// cached one marked cached.
func TestStageSpans(t *testing.T) {
	rec := telemetrytest.Record(t)

	ctx, build := telemetry.Tracer().Start(context.Background(), "job build")
	s := &stageSpans{ctx: ctx, open: map[int]trace.Span{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, ev := range []engine.Event{
		{Kind: engine.BuildStart, Total: 4, Time: t0},
		{Kind: engine.StageCached, Pipeline: "os", Stage: "kiln.debootstrap", Index: 1, Total: 4, Time: t0},
		{Kind: engine.StageStart, Pipeline: "os", Stage: "kiln.hostname", Index: 2, Total: 4, Time: t0},
		{Kind: engine.StageDone, Pipeline: "os", Stage: "kiln.hostname", Index: 2, Total: 4, Time: t0.Add(2 * time.Second)},
		{Kind: engine.StageStart, Pipeline: "image", Stage: "kiln.tar", Index: 3, Total: 4, Time: t0.Add(3 * time.Second)},
		{Kind: engine.BuildFailed, Pipeline: "image", Stage: "kiln.tar", Message: "tar: exit status 2: \nno space left on device", Time: t0.Add(5 * time.Second)},
	} {
		s.report(ev)
	}
	s.end(errors.New("the build failed"))
	build.End()

	var stages []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() != "job build" {
			stages = append(stages, sp)
		}
	}
	require.Len(t, stages, 3)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range stages {
		byName[sp.Name()] = sp
		assert.Equal(t, build.SpanContext().SpanID(), sp.Parent().SpanID(), sp.Name())
		assert.Equal(t, build.SpanContext().TraceID(), sp.SpanContext().TraceID(), sp.Name())
	}
	h := byName["stage kiln.hostname"]
	require.NotNil(t, h)
	assert.Equal(t, 2*time.Second, h.EndTime().Sub(h.StartTime()))
	assert.Contains(t, h.Attributes(), telemetry.Stage.String("kiln.hostname"))
	assert.Contains(t, h.Attributes(), telemetry.Pipeline.String("os"))
	assert.Equal(t, codes.Unset, h.Status().Code)

	c := byName["stage kiln.debootstrap"]
	require.NotNil(t, c)
	assert.Contains(t, c.Attributes(), telemetry.Cached.Bool(true))

	f := byName["stage kiln.tar"]
	require.NotNil(t, f)
	assert.Equal(t, codes.Error, f.Status().Code)
	assert.Equal(t, "tar: no space left on device", f.Status().Description)
	assert.Equal(t, 2*time.Second, f.EndTime().Sub(f.StartTime()))
}

// A stage still open when the build ends (canceled) ends with the
// build's error.
func TestStageSpansEndOpenStages(t *testing.T) {
	rec := telemetrytest.Record(t)

	s := &stageSpans{ctx: context.Background(), open: map[int]trace.Span{}}
	s.report(engine.Event{Kind: engine.StageStart, Pipeline: "os", Stage: "kiln.apt", Index: 1, Total: 1})
	s.end(context.Canceled)
	require.Len(t, rec.Ended(), 1)
	assert.Equal(t, codes.Error, rec.Ended()[0].Status().Code)
	assert.Equal(t, context.Canceled.Error(), rec.Ended()[0].Status().Description)
}

// A stage reported started twice without an end leaves no span open: the
// first attempt's ends, failed, when the second starts.
func TestStageSpansStageStartedTwice(t *testing.T) {
	rec := telemetrytest.Record(t)

	s := &stageSpans{ctx: context.Background(), open: map[int]trace.Span{}}
	start := engine.Event{Kind: engine.StageStart, Pipeline: "os", Stage: "kiln.apt", Index: 1, Total: 1}
	s.report(start)
	s.report(start)
	require.Len(t, rec.Ended(), 1, "the first attempt's span ends")
	assert.Equal(t, codes.Error, rec.Ended()[0].Status().Code)
	s.report(engine.Event{Kind: engine.StageDone, Pipeline: "os", Stage: "kiln.apt", Index: 1, Total: 1})
	require.Len(t, rec.Ended(), 2)
	assert.Equal(t, codes.Unset, rec.Ended()[1].Status().Code)
	assert.Empty(t, s.open)
}
