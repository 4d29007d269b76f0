package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// EventKind names what an Event reports. Its values are part of the
// `--progress json` output and of what the service stores, so they never
// change spelling.
type EventKind string

// The kinds of event a build reports, in the order a build meets them.
const (
	// BuildStart opens a build; Total is its number of stages and Message
	// the artifact's file name.
	BuildStart EventKind = "build-start"
	// Download reports bytes of packages fetched (Done of Size).
	Download EventKind = "download"
	// PipelineStart and PipelineDone bracket a pipeline that runs.
	PipelineStart EventKind = "pipeline-start"
	// StageStart is a stage about to run.
	StageStart EventKind = "stage-start"
	// StageDone is a stage that ran, with its Elapsed time.
	StageDone EventKind = "stage-done"
	// StageCached is a stage whose result came from the cache.
	StageCached  EventKind = "stage-cached"
	PipelineDone EventKind = "pipeline-done"
	// BuildDone closes a build that produced its artifact.
	BuildDone EventKind = "build-done"
	// BuildFailed is the stage that failed, its error in Message.
	BuildFailed EventKind = "build-failed"
)

// Event is one step of a build, as the service and `--progress json` see it.
type Event struct {
	Time time.Time `json:"time"`
	// Kind says what happened; see the EventKind constants.
	Kind     EventKind `json:"kind"`
	Pipeline string    `json:"pipeline,omitempty"`
	Stage    string    `json:"stage,omitempty"`
	// Index and Total count stages across the whole build (1-based).
	Index int `json:"index,omitempty"`
	Total int `json:"total,omitempty"`
	// Done and Size count bytes of downloads.
	Done    int64         `json:"done,omitempty"`
	Size    int64         `json:"size,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Message string        `json:"message,omitempty"`
}

// Reporter receives events. Implementations must be safe for concurrent
// use: downloads report from several goroutines.
type Reporter interface {
	Report(Event)
}

// ReporterFunc adapts a function.
type ReporterFunc func(Event)

// Report implements Reporter.
func (f ReporterFunc) Report(e Event) { f(e) }

// JSONReporter writes one JSON object a line.
type JSONReporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONReporter writes events to w.
func NewJSONReporter(w io.Writer) *JSONReporter { return &JSONReporter{enc: json.NewEncoder(w)} }

// Report implements Reporter.
func (r *JSONReporter) Report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(e)
}

// TextReporter writes one line per stage with its elapsed time. On a
// terminal (Live) downloads redraw one progress line; otherwise they are
// reported every 10%.
type TextReporter struct {
	mu       sync.Mutex
	w        io.Writer
	Live     bool
	lastPct  int64
	lastDraw time.Time
}

// NewTextReporter writes to w; live redraws progress in place.
func NewTextReporter(w io.Writer, live bool) *TextReporter {
	return &TextReporter{w: w, Live: live, lastPct: -1}
}

// Report implements Reporter.
func (r *TextReporter) Report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case Download:
		if e.Size <= 0 {
			return
		}
		pct := e.Done * 100 / e.Size
		if r.Live {
			if e.Done < e.Size && time.Since(r.lastDraw) < 100*time.Millisecond {
				return
			}
			r.lastDraw = time.Now()
			bar := int(pct / 5)
			fmt.Fprintf(r.w, "\r  downloading packages [%-20s] %3d%% %s/%s", repeat('#', bar), pct, mib(e.Done), mib(e.Size))
			if e.Done >= e.Size {
				fmt.Fprintln(r.w)
			}
			return
		}
		if pct/10 != r.lastPct/10 || e.Done >= e.Size {
			r.lastPct = pct
			fmt.Fprintf(r.w, "  downloading packages: %d%% (%s of %s)\n", pct, mib(e.Done), mib(e.Size))
		}
	case StageStart:
		if r.Live {
			fmt.Fprintf(r.w, "[%d/%d] %s: %s ...", e.Index, e.Total, e.Pipeline, e.Stage)
		}
	case StageDone, StageCached:
		how := fmt.Sprintf("%.1fs", e.Elapsed.Seconds())
		if e.Kind == StageCached {
			how = "cached"
		}
		if r.Live {
			fmt.Fprintf(r.w, "\r[%d/%d] %s: %s %s\n", e.Index, e.Total, e.Pipeline, e.Stage, how)
		} else {
			fmt.Fprintf(r.w, "[%d/%d] %s: %s %s\n", e.Index, e.Total, e.Pipeline, e.Stage, how)
		}
	case BuildDone:
		fmt.Fprintf(r.w, "built %s in %.1fs\n", e.Message, e.Elapsed.Seconds())
	case BuildFailed:
		if r.Live {
			fmt.Fprintln(r.w)
		}
	default:
		if e.Message != "" {
			fmt.Fprintf(r.w, "%s\n", e.Message)
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
