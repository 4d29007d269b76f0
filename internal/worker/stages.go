package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/telemetry"
)

// stageSpans turns the engine's progress events into a span per stage,
// children of the build job's span: the engine itself knows nothing of
// tracing, and a builder that reports its stages as the engine does gets
// them too. A stage taken from the cache is a span of no length marked
// kiln.cached. With tracing off the spans are the no-op tracer's.
type stageSpans struct {
	ctx  context.Context
	mu   sync.Mutex
	open map[int]trace.Span // by the stage's index
}

func (s *stageSpans) start(ev engine.Event) trace.Span {
	_, span := telemetry.Tracer().Start(s.ctx, "stage "+ev.Stage, trace.WithTimestamp(ev.Time),
		trace.WithAttributes(telemetry.Stage.String(ev.Stage), telemetry.Pipeline.String(ev.Pipeline)))
	return span
}

func (s *stageSpans) report(ev engine.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case engine.StageStart:
		if span, ok := s.open[ev.Index]; ok {
			// Started again before it ended: the first attempt's span
			// ends here rather than never.
			telemetry.Fail(span, errors.New("the stage started again"))
			span.End(trace.WithTimestamp(ev.Time))
		}
		s.open[ev.Index] = s.start(ev)
	case engine.StageDone:
		if span, ok := s.open[ev.Index]; ok {
			span.End(trace.WithTimestamp(ev.Time))
			delete(s.open, ev.Index)
		}
	case engine.StageCached:
		span := s.start(ev)
		span.SetAttributes(telemetry.Cached.Bool(true))
		span.End(trace.WithTimestamp(ev.Time))
	case engine.BuildFailed:
		// The engine names the stage that failed, not always its index.
		for i, span := range s.open {
			telemetry.Fail(span, errors.New(lastErrorLine(ev.Message)))
			span.End(trace.WithTimestamp(ev.Time))
			delete(s.open, i)
		}
	}
}

// end closes the spans of stages that never reported their end (the
// build was canceled or failed outside the engine), with err.
func (s *stageSpans) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, span := range s.open {
		if err == nil {
			err = errors.New("the build ended before the stage did")
		}
		telemetry.Fail(span, err)
		span.End()
		delete(s.open, i)
	}
}
