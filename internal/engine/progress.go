package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Event is one step of a build, as the service and `--progress json` see it.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is "build-start", "download", "pipeline-start", "stage-start",
	// "stage-done", "stage-cached", "pipeline-done", "build-done" or
	// "build-failed".
	Kind     string `json:"kind"`
	Pipeline string `json:"pipeline,omitempty"`
	Stage    string `json:"stage,omitempty"`
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
	case "download":
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
	case "stage-start":
		if r.Live {
			fmt.Fprintf(r.w, "[%d/%d] %s: %s ...", e.Index, e.Total, e.Pipeline, e.Stage)
		}
	case "stage-done", "stage-cached":
		how := fmt.Sprintf("%.1fs", e.Elapsed.Seconds())
		if e.Kind == "stage-cached" {
			how = "cached"
		}
		if r.Live {
			fmt.Fprintf(r.w, "\r[%d/%d] %s: %s %s\n", e.Index, e.Total, e.Pipeline, e.Stage, how)
		} else {
			fmt.Fprintf(r.w, "[%d/%d] %s: %s %s\n", e.Index, e.Total, e.Pipeline, e.Stage, how)
		}
	case "build-done":
		fmt.Fprintf(r.w, "built %s in %.1fs\n", e.Message, e.Elapsed.Seconds())
	case "build-failed":
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
