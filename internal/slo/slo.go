// Package slo reads kiln's service level objectives, written as data
// (deploy/slo/slos.yaml), and generates the Prometheus rule file that
// measures them: per SLO, recording rules of its error ratio over the
// windows the alerts and dashboards need, its objective, and a pair of
// multi-window, multi-burn-rate alerts (one that pages, one that opens a
// ticket). `kiln slo rules` prints that file.
package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// Placeholder stands for the window in an SLO's queries: each recording
// rule replaces it with its own (5m, 1h, …). Write it as a range,
// rate(x[$window]).
const Placeholder = "$window"

// File is an SLO file: the objectives kiln is held to.
type File struct {
	SLOs []SLO `yaml:"slos"`
}

// SLO is one objective: the share of good events over 30 days that the
// service promises, and how to count the bad ones.
type SLO struct {
	// Name is the SLO's name, the slo label of its rules and alerts,
	// such as compose-success.
	Name string `yaml:"name"`
	// Title names it in the alerts' text, such as "Compose success".
	Title string `yaml:"title"`
	// Alert is the middle of its alerts' names: KilnSLO<Alert>Page and
	// KilnSLO<Alert>Ticket.
	Alert string `yaml:"alert"`
	// Description says what counts as good and bad, and why.
	Description string `yaml:"description"`
	// Objective is the share of good events promised, in (0, 1).
	Objective float64 `yaml:"objective"`
	// ErrorQuery is the rate of bad events, TotalQuery the rate of all
	// events, each with Placeholder where the window goes.
	ErrorQuery string `yaml:"error_query"`
	TotalQuery string `yaml:"total_query"`
}

// Budget is the share of events the SLO allows to be bad.
func (s SLO) Budget() float64 { return 1 - s.Objective }

// Windows are the ranges each SLO's error ratio is recorded over: the
// alerts' long and short windows, and 30d (the SLO's period) for the
// error budget left.
func Windows() []string { return []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"} }

// Period is the range the objective holds over, and the error budget is
// counted in.
const Period = "30d"

// RecordName is the name of the recording rule of the error ratio over
// window.
func RecordName(window string) string { return "kiln:slo_error_ratio:rate" + window }

// ObjectiveRecord is the name of the recording rule of each SLO's
// objective.
const ObjectiveRecord = "kiln:slo_objective:ratio"

// BurnWindow is one condition of a burn-rate alert: the error ratio over
// both Long and Short is above Burn times the budget. At that burn rate
// the whole 30-day budget lasts 30 days / Burn.
type BurnWindow struct {
	Burn        float64
	Long, Short string
}

// AlertKind is one of the two alerts generated per SLO.
type AlertKind struct {
	// Suffix ends the alert's name: Page or Ticket.
	Suffix   string
	Severity string
	For      string
	// Windows fire the alert, any one of them.
	Windows []BurnWindow
	// Speed says in words how fast the budget burns, for the summary.
	Speed string
}

// AlertKinds are the two alerts of every SLO, the standard pairs of the
// SRE workbook: a page when 2% of the 30-day budget went in an hour or
// 5% in six hours, a ticket when 10% went in a day or in three days.
func AlertKinds() []AlertKind {
	return []AlertKind{
		{Suffix: "Page", Severity: "critical", For: "2m", Speed: "fast",
			Windows: []BurnWindow{{Burn: 14.4, Long: "1h", Short: "5m"}, {Burn: 6, Long: "6h", Short: "30m"}}},
		{Suffix: "Ticket", Severity: "warning", For: "15m", Speed: "steadily",
			Windows: []BurnWindow{{Burn: 3, Long: "1d", Short: "2h"}, {Burn: 1, Long: "3d", Short: "6h"}}},
	}
}

// maxBurn is the highest burn rate an alert asks for: a budget of
// 1/maxBurn or more would need an error ratio above 1 to fire.
func maxBurn() float64 {
	m := 0.0
	for _, k := range AlertKinds() {
		for _, w := range k.Windows {
			m = math.Max(m, w.Burn)
		}
	}
	return m
}

// AlertName is the name of the SLO's alert of kind k.
func (s SLO) AlertName(k AlertKind) string { return "KilnSLO" + s.Alert + k.Suffix }

// RunbookBase is where each alert's runbook is, as <base>/<AlertName>.md.
const RunbookBase = "https://github.com/kiln-project/kiln/blob/main/docs/runbooks/"

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	alertRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

// Load reads and checks an SLO file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse reads and checks the SLO file b: unknown fields, duplicate
// names, objectives outside (0, 1) or too low for the fast alert ever to
// fire, and queries without Placeholder are errors naming the SLO and
// the field.
func Parse(b []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField())
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: list the objectives under slos:")
		}
		return nil, fmt.Errorf("reading the SLOs (the fields of each are name, title, alert, description, objective, error_query, total_query):\n%s", yaml.FormatError(err, false, true))
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks every SLO and reports all that is wrong.
func (f *File) Validate() error {
	if len(f.SLOs) == 0 {
		return errors.New("slos: no objective is listed; add at least one")
	}
	var errs []error
	names, alerts := map[string]bool{}, map[string]bool{}
	for i, s := range f.SLOs {
		who := fmt.Sprintf("slos[%d]", i)
		if s.Name != "" {
			who = fmt.Sprintf("slo %q", s.Name)
		}
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s: %s", who, field, fmt.Sprintf(format, args...)))
		}
		switch {
		case s.Name == "":
			bad("name", "missing: give it a name such as compose-success (lower case, words joined by -)")
		case !nameRE.MatchString(s.Name):
			bad("name", "%q is not lower-case words joined by - (such as compose-success)", s.Name)
		case names[s.Name]:
			bad("name", "used by an earlier SLO too; give each its own name")
		}
		names[s.Name] = true
		if strings.TrimSpace(s.Title) == "" {
			bad("title", "missing: the alerts' text names the SLO with it, such as \"Compose success\"")
		}
		switch {
		case s.Alert == "":
			bad("alert", "missing: the alerts are named KilnSLO<alert>Page and KilnSLO<alert>Ticket, so give a word such as ComposeSuccess")
		case !alertRE.MatchString(s.Alert):
			bad("alert", "%q is not a word of letters and digits starting with a capital (such as ComposeSuccess)", s.Alert)
		case alerts[s.Alert]:
			bad("alert", "%q is used by an earlier SLO too; the alert names would clash", s.Alert)
		}
		alerts[s.Alert] = true
		if strings.TrimSpace(s.Description) == "" {
			bad("description", "missing: say what counts as good and bad, and why")
		}
		switch {
		case math.IsNaN(s.Objective) || s.Objective <= 0 || s.Objective >= 1:
			bad("objective", "%v is outside (0, 1): write it as a ratio, such as 0.99 for 99%%", s.Objective)
		case s.Budget()*maxBurn() >= 1:
			bad("objective", "%v leaves an error budget of %s, so the page alert (burn rate %v) would need more than 100%% errors and could never fire; the objective must be above %s",
				s.Objective, formatFloat(s.Budget()), maxBurn(), formatFloat(1-1/maxBurn()))
		}
		for _, q := range []struct{ field, query string }{{"error_query", s.ErrorQuery}, {"total_query", s.TotalQuery}} {
			switch {
			case strings.TrimSpace(q.query) == "":
				bad(q.field, "missing: a PromQL rate such as sum(rate(x[%s]))", Placeholder)
			case !strings.Contains(q.query, "["+Placeholder+"]"):
				bad(q.field, "has no [%s]: write the range of every rate as [%s], each recording rule puts its window there", Placeholder, Placeholder)
			}
		}
	}
	return errors.Join(errs...)
}

// formatFloat writes f short: 0.001, not 0.0010000000000000009.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', 10, 64)
}

// ErrorRatio is the SLO's error ratio over window, in PromQL.
func (s SLO) ErrorRatio(window string) string {
	q := func(x string) string { return strings.TrimSpace(strings.ReplaceAll(x, Placeholder, window)) }
	return "(\n  " + indent(q(s.ErrorQuery)) + "\n)\n/\n(\n  " + indent(q(s.TotalQuery)) + "\n)\n"
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }

// alertExpr is the PromQL of the SLO's alert of kind k.
func (s SLO) alertExpr(k AlertKind) string {
	budget := formatFloat(s.Budget())
	var parts []string
	for _, w := range k.Windows {
		cond := func(window string) string {
			return fmt.Sprintf("%s{slo=%q} > (%s * %s)", RecordName(window), s.Name, formatFloat(w.Burn), budget)
		}
		parts = append(parts, "(\n  "+cond(w.Long)+"\n  and\n  "+cond(w.Short)+"\n)")
	}
	return strings.Join(parts, "\nor\n") + "\n"
}

// rule is one rule of a generated rule file, its fields in the order
// Prometheus' documentation writes them.
type rule struct {
	Record      string        `yaml:"record,omitempty"`
	Alert       string        `yaml:"alert,omitempty"`
	Expr        string        `yaml:"expr"`
	For         string        `yaml:"for,omitempty"`
	Labels      yaml.MapSlice `yaml:"labels,omitempty"`
	Annotations yaml.MapSlice `yaml:"annotations,omitempty"`
}

type group struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

type ruleFile struct {
	Groups []group `yaml:"groups"`
}

// header opens the generated file.
const header = `# Generated by kiln slo rules deploy/slo/slos.yaml: do not edit; change the
# SLOs there and regenerate (docs/slo.md).
#
# Per SLO: its error ratio over each window (kiln:slo_error_ratio:rate<window>),
# its objective (kiln:slo_objective:ratio), and two burn-rate alerts. Page:
# the error ratio is above 14.4 times the budget over 1h and 5m, or 6 times
# over 6h and 30m. Ticket: 3 times over 1d and 2h, or once over 3d and 6h.
# Load it beside alerts.yaml: rule_files: [alerts.yaml, slo.yaml].
`

// Rules generates the Prometheus rule file of the SLOs in f.
func Rules(f *File) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out ruleFile
	for _, s := range f.SLOs {
		g := group{Name: "kiln-slo-" + s.Name}
		sloLabel := yaml.MapSlice{{Key: "slo", Value: s.Name}}
		for _, w := range Windows() {
			g.Rules = append(g.Rules, rule{Record: RecordName(w), Expr: s.ErrorRatio(w), Labels: sloLabel})
		}
		g.Rules = append(g.Rules, rule{Record: ObjectiveRecord, Expr: fmt.Sprintf("vector(%s)", formatFloat(s.Objective)), Labels: sloLabel})
		for _, k := range AlertKinds() {
			name := s.AlertName(k)
			var conds []string
			for i, w := range k.Windows {
				c := fmt.Sprintf("%s× over %s and %s", formatFloat(w.Burn), w.Long, w.Short)
				if i == 0 {
					c = fmt.Sprintf("%s× the rate that would spend it in %s, over %s and %s", formatFloat(w.Burn), Period, w.Long, w.Short)
				}
				conds = append(conds, c)
			}
			g.Rules = append(g.Rules, rule{
				Alert: name,
				Expr:  s.alertExpr(k),
				For:   k.For,
				Labels: yaml.MapSlice{
					{Key: "severity", Value: k.Severity},
					{Key: "slo", Value: s.Name},
				},
				Annotations: yaml.MapSlice{
					{Key: "summary", Value: fmt.Sprintf("kiln: %s burns its error budget %s: {{ $value | humanizePercentage }} bad, %s%% allowed",
						s.Title, k.Speed, formatFloat(100*s.Budget()))},
					{Key: "description", Value: fmt.Sprintf("The %s SLO (%s%% good over %s) spends its error budget at %s. What it measures: docs/slo.md; what to do: the runbook.",
						s.Name, formatFloat(100*s.Objective), Period, strings.Join(conds, ", or "))},
					{Key: "runbook_url", Value: RunbookBase + name + ".md"},
				},
			})
		}
		out.Groups = append(out.Groups, g)
	}
	b, err := yaml.MarshalWithOptions(out, yaml.Indent(2), yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, err
	}
	return append([]byte(header), b...), nil
}
