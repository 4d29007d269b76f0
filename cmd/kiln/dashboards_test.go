package main

// The Grafana dashboards under deploy/grafana query kiln's metrics. These
// tests hold them to the binary and the rule files: every expression must
// parse as PromQL and name only series kiln exports, a recording rule
// records, or Prometheus itself makes; a renamed metric fails here, not as
// an empty panel.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prometheusOwnSeries are series Prometheus makes itself.
var prometheusOwnSeries = []string{"up", "ALERTS", "ALERTS_FOR_STATE"}

// grafanaPanel is the part of a panel the checks read. Rows nest their
// panels (collapsed rows keep them in panels[].panels[]).
type grafanaPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaDuration and grafanaNumber stand in for Grafana's built-in
// variables so that an expression parses as Prometheus will see it.
var (
	grafanaDuration = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1d"}
	grafanaNumber   = map[string]string{"__rate_interval_ms": "300000", "__interval_ms": "60000", "__range_s": "86400", "__range_ms": "86400000"}
	// grafanaFormats are the ${var:format} forms Grafana knows.
	grafanaFormats = []string{"csv", "distributed", "doublequote", "glob", "json", "lucene", "percentencode", "pipe", "queryparam", "raw", "regex", "singlequote", "sqlstring", "text"}
	grafanaVar     = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)`)
	labelValues2   = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*$`)
	labelValues1   = regexp.MustCompile(`^\s*label_values\(\s*([a-zA-Z_]\w*)\s*\)\s*$`)
	queryResult    = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
)

// substituteGrafanaVars replaces Grafana's variables in expr: built-in
// durations and numbers by a value of their kind, the dashboard's own
// variables (vars) by a plain word, which is also a valid regular
// expression. It reports a variable that is neither, a format Grafana does
// not know, and a $ left that is no variable.
func substituteGrafanaVars(expr string, vars map[string]bool) (string, error) {
	var errs []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name, format := sm[1]+sm[3]+sm[5], sm[2]+sm[4]
		if format != "" && !slices.Contains(grafanaFormats, format) {
			errs = append(errs, fmt.Sprintf("%s: unknown variable format %q (Grafana knows %s)", m, format, strings.Join(grafanaFormats, ", ")))
		}
		if d, ok := grafanaDuration[name]; ok {
			return d
		}
		if n, ok := grafanaNumber[name]; ok {
			return n
		}
		if vars[name] {
			return "x"
		}
		errs = append(errs, fmt.Sprintf("%s: unknown variable: declare it under templating.list or use a Grafana built-in such as $__rate_interval", m))
		return "x"
	})
	if strings.Contains(out, "$") {
		errs = append(errs, "a $ that is no variable: write $name, ${name} or ${name:format}")
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// seriesNames parses a PromQL expression and returns the series names its
// selectors read. A selector whose name is a regular expression, or that
// has none, is an error: the check could not tell what it reads.
func seriesNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" && bad == nil {
			bad = fmt.Errorf("selector %s names no metric: name one, so that the check can tell it exists", vs)
		}
		if name != "" {
			names = append(names, name)
		}
		return nil
	})
	return names, bad
}

// isDatasourceVariable reports whether a panel's, target's or variable's
// datasource is the dashboard's datasource variable.
func isDatasourceVariable(raw json.RawMessage) bool {
	ok := func(s string) bool { return s == "$datasource" || s == "${datasource}" }
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return ok(s)
	}
	var ref struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	if json.Unmarshal(raw, &ref) == nil {
		return ref.Type == "prometheus" && ok(ref.UID)
	}
	return false
}

// checkDashboard checks one dashboard file's JSON. known says whether a
// series name exists; used collects the names the dashboard reads. Each
// problem names the dashboard, the panel or variable, and the expression.
func checkDashboard(file string, b []byte, known func(string) bool, used map[string]bool) []string {
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return []string{fmt.Sprintf("%s: not dashboard JSON: %v", file, err)}
	}
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: ", file)+fmt.Sprintf(format, args...))
	}
	if d.UID == "" {
		report("no uid: give the dashboard a fixed uid, so that links and provisioning find it")
	}
	if d.Title == "" {
		report("no title")
	}
	if d.SchemaVersion <= 0 {
		report("no schemaVersion: export the dashboard from Grafana, which sets it")
	}

	vars := map[string]bool{}
	hasDatasource := false
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "datasource" {
			var q string
			_ = json.Unmarshal(v.Query, &q)
			if v.Name == "datasource" && q == "prometheus" {
				hasDatasource = true
			}
		}
	}
	if !hasDatasource {
		report(`no templating variable "datasource" of type datasource with query "prometheus": every panel must use it, so that the dashboard imports into any Grafana`)
	}

	checkExpr := func(where, expr string) {
		if strings.TrimSpace(expr) == "" {
			report("%s: empty expression", where)
			return
		}
		sub, err := substituteGrafanaVars(expr, vars)
		if err != nil {
			report("%s: %q: %v", where, expr, err)
			return
		}
		names, err := seriesNames(sub)
		if err != nil {
			report("%s: %q does not parse: %v", where, expr, err)
			return
		}
		for _, n := range names {
			used[n] = true
			if !known(n) {
				report("%s: %q reads %s, which kiln does not export, no recording rule in deploy/prometheus records and Prometheus does not make", where, expr, n)
			}
		}
	}

	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("variable %q", v.Name)
		if !isDatasourceVariable(v.Datasource) {
			report("%s: datasource %s is not the datasource variable ({\"type\": \"prometheus\", \"uid\": \"${datasource}\"})", where, v.Datasource)
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct {
				Query string `json:"query"`
			}
			_ = json.Unmarshal(v.Query, &obj)
			q = obj.Query
		}
		switch {
		case labelValues1.MatchString(q):
		case labelValues2.MatchString(q):
			checkExpr(where, labelValues2.FindStringSubmatch(q)[1])
		case queryResult.MatchString(q):
			checkExpr(where, queryResult.FindStringSubmatch(q)[1])
		default:
			report("%s: query %q: use label_values(METRIC, LABEL), label_values(LABEL) or query_result(EXPR)", where, q)
		}
	}

	ids := map[int]string{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if p.ID <= 0 {
				report("%s: no id", where)
			} else if other, dup := ids[p.ID]; dup {
				report("%s: id %d is also panel %q's", where, p.ID, other)
			} else {
				ids[p.ID] = p.Title
			}
			if p.Title == "" {
				report("%s: no title", where)
			}
			if p.Type != "row" && p.Type != "text" {
				if !isDatasourceVariable(p.Datasource) {
					report("%s: datasource %s is not the datasource variable ({\"type\": \"prometheus\", \"uid\": \"${datasource}\"})", where, p.Datasource)
				}
				if len(p.Targets) == 0 {
					report("%s: no targets", where)
				}
			}
			for _, tg := range p.Targets {
				if len(tg.Datasource) > 0 && !isDatasourceVariable(tg.Datasource) {
					report("%s: target %s: datasource %s is not the datasource variable", where, tg.RefID, tg.Datasource)
				}
				checkExpr(where+" target "+tg.RefID, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return problems
}

// recordedSeries returns the names recording rules in deploy/prometheus
// record.
func recordedSeries(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yaml"))
	require.NoError(t, err)
	recorded := map[string]bool{}
	for _, f := range files {
		for _, doc := range yamlDocuments(t, f) {
			b, err := yaml.Marshal(doc)
			require.NoError(t, err)
			var rf ruleFile
			require.NoError(t, yaml.Unmarshal(b, &rf), f)
			for _, g := range rf.Groups {
				for _, r := range g.Rules {
					if r.Record != "" {
						recorded[r.Record] = true
					}
				}
			}
		}
	}
	return recorded
}

func TestDeployGrafanaDashboards(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	recorded := recordedSeries(t)
	known := func(n string) bool { return exported[n] || recorded[n] || slices.Contains(prometheusOwnSeries, n) }

	files, err := filepath.Glob(filepath.Join(deployDir, "grafana", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards in deploy/grafana")
	uids := map[string]string{}
	used := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, p := range checkDashboard(filepath.Base(f), b, known, used) {
			t.Error(p)
		}
		var d grafanaDashboard
		require.NoError(t, json.Unmarshal(b, &d), f)
		if other, dup := uids[d.UID]; dup && d.UID != "" {
			t.Errorf("%s: uid %q is also %s's", filepath.Base(f), d.UID, other)
		}
		uids[d.UID] = filepath.Base(f)
	}

	// Every kiln metric is on some panel: a metric nobody graphs is one
	// nobody looks at when it matters.
	for n := range exported {
		if !strings.HasPrefix(n, "kiln_") {
			continue
		}
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		shown := used[base]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			shown = shown || used[base+suffix]
		}
		assert.True(t, shown, "no dashboard in deploy/grafana shows %s", n)
	}
	// The SLO dashboard reads the recorded SLO series.
	for _, n := range []string{"kiln:slo_objective:ratio", "kiln:slo_error_ratio:rate1h", "kiln:slo_error_ratio:rate6h",
		"kiln:slo_error_ratio:rate1d", "kiln:slo_error_ratio:rate3d", "kiln:slo_error_ratio:rate30d"} {
		assert.True(t, used[n], "no dashboard in deploy/grafana shows %s", n)
	}
}

// checkDashboard decides what the test above accepts: test it on what it
// must refuse.
func TestDeployGrafanaCheckRefuses(t *testing.T) {
	t.Parallel()
	known := func(n string) bool { return n == "kiln_jobs" || n == "kiln:slo_objective:ratio" || n == "up" }
	dashboard := func(uid, variables, panels string) []byte {
		return []byte(fmt.Sprintf(`{"uid": %q, "title": "t", "schemaVersion": 39,
			"templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}%s]},
			"panels": [%s]}`, uid, variables, panels))
	}
	const ds = `"datasource": {"type": "prometheus", "uid": "${datasource}"}`
	panel := func(id int, title, expr string) string {
		b, _ := json.Marshal(expr)
		return fmt.Sprintf(`{"id": %d, "type": "timeseries", "title": %q, %s, "targets": [{"refId": "A", "expr": %s}]}`, id, title, ds, b)
	}
	archVar := `, {"name": "arch", "type": "query", ` + ds + `, "query": {"query": "label_values(kiln_jobs, arch)", "refId": "v"}}`

	good := dashboard("ok", archVar, panel(1, "Queue", `max by (arch) (kiln_jobs{arch=~"$arch"}) * on () group_left rate(up[$__rate_interval])`)+
		`, {"id": 2, "type": "row", "title": "Row", "panels": [`+panel(3, "Nested", `kiln:slo_objective:ratio{slo=~"${arch:regex}"}`)+`]}`)
	used := map[string]bool{}
	assert.Empty(t, checkDashboard("good.json", good, known, used))
	assert.Equal(t, map[string]bool{"kiln_jobs": true, "up": true, "kiln:slo_objective:ratio": true}, used)

	for _, tc := range []struct {
		name string
		json []byte
		want []string
	}{
		{"misspelled metric", dashboard("a", "", panel(1, "Queue depth", `max(kiln_job{state="pending"})`)),
			[]string{"bad.json", `"Queue depth"`, `max(kiln_job{state=\"pending\"})`, "reads kiln_job, which kiln does not export"}},
		{"syntax error", dashboard("a", "", panel(1, "Broken", `sum(rate(kiln_jobs[5m])`)),
			[]string{"bad.json", `"Broken"`, `sum(rate(kiln_jobs[5m])`, "does not parse"}},
		{"misspelled metric in a nested row", dashboard("a", "", `{"id": 1, "type": "row", "title": "R", "panels": [`+panel(2, "Inner", `kiln_jbos`)+`]}`),
			[]string{`"Inner"`, "kiln_jbos"}},
		{"unknown variable", dashboard("a", "", panel(1, "Arch", `kiln_jobs{arch=~"$arch"}`)),
			[]string{`"Arch"`, `$arch`, "unknown variable"}},
		{"unknown variable format", dashboard("a", archVar, panel(1, "Arch", `kiln_jobs{arch=~"${arch:regexp}"}`)),
			[]string{`"Arch"`, "unknown variable format", "regexp"}},
		{"a stray $", dashboard("a", "", panel(1, "Dollar", `kiln_jobs{arch="$ x"}`)),
			[]string{`"Dollar"`, "no variable"}},
		{"a regex metric name", dashboard("a", "", panel(1, "Regex", `{__name__=~"kiln_.*"}`)),
			[]string{`"Regex"`, "names no metric"}},
		{"unknown metric in a variable", dashboard("a", `, {"name": "arch", "type": "query", `+ds+`, "query": "label_values(kiln_job, arch)"}`, ""),
			[]string{`variable "arch"`, "kiln_job"}},
		{"unknown variable query form", dashboard("a", `, {"name": "arch", "type": "query", `+ds+`, "query": "label_names()"}`, ""),
			[]string{`variable "arch"`, "label_names()"}},
		{"fixed datasource", dashboard("a", "", `{"id": 1, "type": "timeseries", "title": "Fixed", "datasource": {"type": "prometheus", "uid": "P1"}, "targets": [{"refId": "A", "expr": "up"}]}`),
			[]string{`"Fixed"`, "not the datasource variable"}},
		{"duplicate panel id", dashboard("a", "", panel(1, "One", "up")+","+panel(1, "Two", "up")),
			[]string{`"Two"`, `id 1 is also panel "One"`}},
		{"no uid", dashboard("", "", panel(1, "One", "up")), []string{"no uid"}},
		{"no datasource variable", []byte(`{"uid": "a", "title": "t", "schemaVersion": 39, "panels": []}`), []string{`no templating variable "datasource"`}},
		{"not JSON", []byte(`{"uid": `), []string{"not dashboard JSON"}},
	} {
		problems := checkDashboard("bad.json", tc.json, known, map[string]bool{})
		if assert.NotEmpty(t, problems, tc.name) {
			all := strings.Join(problems, "\n")
			for _, w := range tc.want {
				assert.Contains(t, all, w, tc.name)
			}
		}
	}
}
