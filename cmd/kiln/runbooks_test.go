package main

// Every alert links to a runbook under docs/runbooks, and every runbook
// belongs to an alert. These tests hold the two to each other, and hold the
// runbooks' commands and queries to the binary: a runbook that tells the
// person on call to run a flag kiln no longer has fails here, not at 3 am.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runbooksDir is the repository's docs/runbooks directory, seen from cmd/kiln.
const runbooksDir = "../../docs/runbooks"

// runbookURL is where an alert's runbook_url annotation must point.
func runbookURL(alert string) string {
	return "https://github.com/kiln-project/kiln/blob/main/docs/runbooks/" + alert + ".md"
}

// runbookSections are the sections every runbook has, in this order.
var runbookSections = []string{"## Meaning", "## Confirm", "## Mitigate", "## Verify recovery"}

// checkRunbookSections reports a runbook whose title is not its alert or
// that lacks one of runbookSections, has them out of order or leaves one
// empty.
func checkRunbookSections(alert, md string) []string {
	var problems []string
	lines := strings.Split(md, "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "# "+alert {
		problems = append(problems, fmt.Sprintf("the first line must be the title %q", "# "+alert))
	}
	at := map[string]int{}
	for i, l := range lines {
		if slices.Contains(runbookSections, strings.TrimSpace(l)) {
			at[strings.TrimSpace(l)] = i
		}
	}
	prev := -1
	for k, s := range runbookSections {
		i, ok := at[s]
		if !ok {
			problems = append(problems, fmt.Sprintf("no section %q (every runbook has %s)", s, strings.Join(runbookSections, ", ")))
			continue
		}
		if i < prev {
			problems = append(problems, fmt.Sprintf("section %q comes before %q: keep the order %s", s, runbookSections[k-1], strings.Join(runbookSections, ", ")))
		}
		prev = i
		end := len(lines)
		for j := i + 1; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], "## ") {
				end = j
				break
			}
		}
		if strings.TrimSpace(strings.Join(lines[i+1:end], "")) == "" {
			problems = append(problems, fmt.Sprintf("section %q is empty", s))
		}
	}
	return problems
}

// codeBlock is a fenced code block of a Markdown file.
type codeBlock struct {
	lang string
	line int // of the first line inside the fence, counted from 1
	text []string
}

func codeBlocks(md string) []codeBlock {
	var blocks []codeBlock
	var cur *codeBlock
	for i, l := range strings.Split(md, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "```") {
			if cur == nil {
				cur = &codeBlock{lang: strings.TrimPrefix(t, "```"), line: i + 2}
			} else {
				blocks = append(blocks, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.text = append(cur.text, l)
		}
	}
	return blocks
}

// shellWords splits a shell command line into words, the way sh would
// for the simple lines runbooks hold: quotes group and are removed, a
// backslash escapes, an unquoted # starting a word begins a comment, and
// |, ||, &&, ; and & end a command (returned as a word of their own).
// Variables are left as they are.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`+"`", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
			inWord = true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			return words, nil
		case c == '|' || c == '&' || c == ';':
			flush()
			op := string(c)
			if i+1 < len(line) && (line[i+1] == '|' || line[i+1] == '&') && c != ';' {
				op += string(line[i+1])
				i++
			}
			words = append(words, op)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// kilnCall is a kiln command line found in a Markdown file.
type kilnCall struct {
	line int
	argv []string
}

// kilnCalls returns the kiln command lines of md's shell code blocks
// (every block but promql, yaml and json ones): lines joined where they
// end with a backslash, a leading "$ " prompt removed, each command of a
// pipeline or list on its own. A command is a kiln call when its first
// word is kiln (or a path ending in /kiln), or when kiln follows "--"
// (kubectl exec POD -- kiln ...) or sudo.
func kilnCalls(md string) ([]kilnCall, error) {
	var calls []kilnCall
	for _, b := range codeBlocks(md) {
		if slices.Contains([]string{"promql", "yaml", "json", "toml"}, b.lang) {
			continue
		}
		for i := 0; i < len(b.text); i++ {
			start := i
			line := b.text[i]
			for strings.HasSuffix(line, `\`) && i+1 < len(b.text) {
				i++
				line = strings.TrimSuffix(line, `\`) + " " + b.text[i]
			}
			line = strings.TrimPrefix(strings.TrimSpace(line), "$ ")
			words, err := shellWords(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", b.line+start, err)
			}
			var cmd []string
			for _, w := range append(words, ";") {
				if !slices.Contains([]string{"|", "||", "&&", ";", "&"}, w) {
					cmd = append(cmd, w)
					continue
				}
				for k, cw := range cmd {
					isKiln := cw == "kiln" || strings.HasSuffix(cw, "/kiln")
					if isKiln && (k == 0 || cmd[k-1] == "--" || cmd[k-1] == "sudo") {
						calls = append(calls, kilnCall{line: b.line + start, argv: cmd[k:]})
						break
					}
				}
				cmd = nil
			}
		}
	}
	return calls, nil
}

// promqlExprs returns the expressions of md's promql code blocks: one per
// paragraph (expressions are separated by blank lines).
func promqlExprs(md string) []kilnCall {
	var exprs []kilnCall
	for _, b := range codeBlocks(md) {
		if b.lang != "promql" {
			continue
		}
		var cur []string
		first := 0
		for i, l := range append(b.text, "") {
			if strings.TrimSpace(l) == "" {
				if len(cur) > 0 {
					exprs = append(exprs, kilnCall{line: b.line + first, argv: []string{strings.Join(cur, "\n")}})
				}
				cur = nil
				continue
			}
			if len(cur) == 0 {
				first = i
			}
			cur = append(cur, l)
		}
	}
	return exprs
}

// checkRunbookCode holds a runbook's kiln commands to the binary
// (parseInvocation reports what is wrong through t) and its PromQL to the
// parser and the series that exist.
func checkRunbookCode(t testing.TB, file, md string, known func(string) bool) {
	t.Helper()
	calls, err := kilnCalls(md)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	for _, c := range calls {
		parseInvocation(t, fmt.Sprintf("%s:%d", file, c.line), c.argv)
	}
	for _, e := range promqlExprs(md) {
		names, err := seriesNames(e.argv[0])
		if err != nil {
			t.Errorf("%s:%d: %q does not parse as PromQL: %v", file, e.line, e.argv[0], err)
			continue
		}
		for _, n := range names {
			if !known(n) {
				t.Errorf("%s:%d: %q reads %s, which kiln does not export, no recording rule records and neither Prometheus nor node_exporter makes", file, e.line, e.argv[0], n)
			}
		}
	}
}

// alertAnnotations returns every alert of deploy/prometheus with its
// annotations.
func alertAnnotations(t *testing.T) map[string]map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	alerts := map[string]map[string]string{}
	for _, f := range files {
		for _, doc := range yamlDocuments(t, f) {
			b, err := yaml.Marshal(doc)
			require.NoError(t, err)
			var rf ruleFile
			require.NoError(t, yaml.Unmarshal(b, &rf), f)
			for _, g := range rf.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						alerts[r.Alert] = r.Annotations
					}
				}
			}
		}
	}
	require.NotEmpty(t, alerts, "no alerts in deploy/prometheus")
	return alerts
}

var markdownLink = regexp.MustCompile(`\]\(([^)#]+\.md)\)`)

func TestRunbooks(t *testing.T) {
	t.Parallel()
	alerts := alertAnnotations(t)
	exported := exportedMetrics(t)
	recorded := recordedSeries(t)
	known := func(n string) bool {
		return exported[n] || recorded[n] || slices.Contains(prometheusOwnSeries, n) || strings.HasPrefix(n, "node_")
	}

	// Every alert → its runbook.
	commands, queries := 0, 0
	for _, name := range sortedKeys(boolSet(alerts)) {
		assert.Equal(t, runbookURL(name), alerts[name]["runbook_url"],
			"alert %s: annotations.runbook_url must point to its runbook", name)
		file := filepath.Join(runbooksDir, name+".md")
		b, err := os.ReadFile(file)
		if !assert.NoError(t, err, "alert %s has no runbook: write docs/runbooks/%s.md (see docs/runbooks/README.md)", name, name) {
			continue
		}
		for _, p := range checkRunbookSections(name, string(b)) {
			t.Errorf("docs/runbooks/%s.md: %s", name, p)
		}
		checkRunbookCode(t, "docs/runbooks/"+name+".md", string(b), known)
		calls, _ := kilnCalls(string(b))
		commands += len(calls)
		queries += len(promqlExprs(string(b)))
	}
	// The runbooks tell what to run: if none of that was found, the
	// extraction above is broken, not the runbooks right.
	assert.Positive(t, commands, "no kiln command found in any runbook's code blocks")
	assert.Positive(t, queries, "no PromQL found in any runbook's promql code blocks")
	t.Logf("checked %d kiln commands and %d PromQL expressions in %d runbooks", commands, queries, len(alerts))

	// Every runbook → an alert, and the index lists it.
	files, err := filepath.Glob(filepath.Join(runbooksDir, "*.md"))
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(runbooksDir, "README.md"))
	require.NoError(t, err, "docs/runbooks/README.md, the index of runbooks")
	linked := map[string]bool{}
	for _, m := range markdownLink.FindAllStringSubmatch(string(readme), -1) {
		linked[m[1]] = true
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "README.md" {
			continue
		}
		name := strings.TrimSuffix(base, ".md")
		_, ok := alerts[name]
		assert.True(t, ok, "docs/runbooks/%s belongs to no alert in deploy/prometheus: delete it, or name it after its alert", base)
		assert.True(t, linked[base], "docs/runbooks/README.md does not list %s", base)
	}
	// Every runbook the index links to exists.
	for l := range linked {
		if strings.Contains(l, "/") {
			continue
		}
		_, err := os.Stat(filepath.Join(runbooksDir, l))
		assert.NoError(t, err, "docs/runbooks/README.md links to %s, which does not exist", l)
	}
	checkRunbookCode(t, "docs/runbooks/README.md", string(readme), known)
}

func boolSet[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// The helpers above decide what TestRunbooks accepts: test them on what
// they must find and refuse.
func TestRunbooksHelpers(t *testing.T) {
	t.Parallel()
	md := "# KilnX\n\n```sh\n" +
		"kiln compose status ID   # what the compose waits for\n" +
		"$ kiln worker-token list --database \"$KILN_DATABASE\" | jq .\n" +
		"kubectl -n kiln logs deploy/kiln-api | grep 'job failed'\n" +
		"kubectl -n kiln exec deploy/kiln-api -- kiln cache prune \\\n  --max-size '15 GiB'\n" +
		"test -d /var/cache/kiln && /usr/local/bin/kiln doctor\n" +
		"```\n\n```promql\nup\n```\n"
	calls, err := kilnCalls(md)
	require.NoError(t, err)
	var got [][]string
	var lines []int
	for _, c := range calls {
		got = append(got, c.argv)
		lines = append(lines, c.line)
	}
	assert.Equal(t, [][]string{
		{"kiln", "compose", "status", "ID"},
		{"kiln", "worker-token", "list", "--database", "$KILN_DATABASE"},
		{"kiln", "cache", "prune", "--max-size", "15 GiB"},
		{"/usr/local/bin/kiln", "doctor"},
	}, got)
	assert.Equal(t, []int{4, 5, 7, 9}, lines)

	_, err = kilnCalls("```sh\nkiln compose status 'ID\n```\n")
	assert.ErrorContains(t, err, "unterminated")

	assert.Equal(t, []kilnCall{{line: 2, argv: []string{"up"}}, {line: 4, argv: []string{"a\n/\nb"}}},
		promqlExprs("```promql\nup\n\na\n/\nb\n```\n"))

	good := "# KilnX\n\n## Meaning\n\nm\n\n## Confirm\n\nc\n\n## Mitigate\n\nx\n\n## Verify recovery\n\nv\n"
	assert.Empty(t, checkRunbookSections("KilnX", good))
	for _, tc := range []struct{ md, want string }{
		{strings.Replace(good, "## Mitigate", "## Fix", 1), `no section "## Mitigate"`},
		{strings.Replace(good, "# KilnX", "# KilnY", 1), `the title "# KilnX"`},
		{strings.Replace(good, "\nc\n", "\n", 1), `section "## Confirm" is empty`},
		{"# KilnX\n\n## Confirm\n\nc\n\n## Meaning\n\nm\n\n## Mitigate\n\nx\n\n## Verify recovery\n\nv\n", `comes before`},
	} {
		assert.Contains(t, strings.Join(checkRunbookSections("KilnX", tc.md), "\n"), tc.want)
	}

	// A wrong command, a PromQL typo and a metric kiln does not export
	// are each reported with the file and line.
	known := func(n string) bool { return n == "up" }
	rec := &recorder{TB: t}
	checkRunbookCode(rec, "r.md", "x\n```sh\nkiln cache prune --max-sise 1\nkiln compose stats ID\n```\n```promql\nsum(up\n\nkiln_jbos\n```\n", known)
	out := rec.String()
	for _, want := range []string{"r.md:3: kiln prune: unknown flag: --max-sise", "r.md:4:", "not a kiln subcommand", "r.md:7:", "does not parse", "r.md:9:", "reads kiln_jbos"} {
		assert.Contains(t, out, want)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		n++
	}
	assert.Equal(t, 4, n, "one report per problem:\n%s", out)
}
