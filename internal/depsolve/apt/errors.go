package apt

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"

	"github.com/kiln-project/kiln/internal/depsolve"
)

var (
	// apt's words for a package it does not have.
	unableToLocate = regexp.MustCompile(`(?m)^E: Unable to locate package (\S+)$`)
	noCandidate    = regexp.MustCompile(`(?m)^E: Package '([^']+)' has no installation candidate$`)
)

// missingIn returns the packages apt reported as missing, in its order.
func missingIn(out aptOutput) []string {
	var names []string
	for _, re := range []*regexp.Regexp{unableToLocate, noCandidate} {
		for _, m := range re.FindAllStringSubmatch(out.stderr, -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	return names
}

// missingError builds the MissingPackagesError for the requested packages
// apt did not find, with suggestions: the providers or replacements apt
// named, else similar names from the repositories.
func (r *Resolver) missingError(ctx context.Context, m *metadata, specs []spec, missing []string, out aptOutput) error {
	var names []string // all package names, read once if needed
	var readErr error
	e := &depsolve.MissingPackagesError{}
	for _, s := range specs {
		if !slices.Contains(missing, s.name) {
			continue
		}
		mp := depsolve.MissingPackage{Name: s.name, Suggestions: alternativesIn(out.stdout, s.name)}
		if len(mp.Suggestions) == 0 && readErr == nil {
			if names == nil {
				names, readErr = r.packageNames(ctx, m)
			}
			mp.Suggestions = suggest(s.name, names, 3)
		}
		e.Missing = append(e.Missing, mp)
	}
	if len(e.Missing) == 0 {
		// apt named something that was not requested, which should not
		// happen: say what apt said.
		return &depsolve.UnsatisfiableError{Detail: strings.TrimSpace(out.stderr)}
	}
	if readErr != nil {
		r.cfg.Log.Warn("no suggestions for missing packages", "error", readErr)
	}
	return e
}

// alternativesIn reads apt's explanation for a package without a
// candidate: the packages that provide or replace it.
func alternativesIn(stdout, name string) []string {
	lines := strings.Split(stdout, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "Package "+name+" is ") {
			continue
		}
		var alts []string
		for _, l := range lines[i+1:] {
			switch {
			case strings.HasPrefix(l, "  "):
				// "  postfix 3.7.11-0+deb12u1" (providers) or "  a b c"
				// (replacements).
				f := strings.Fields(l)
				if strings.Contains(lines[i], "virtual package provided by") {
					f = f[:1]
				}
				alts = append(alts, f...)
			case strings.HasPrefix(l, "However the following packages replace it"), strings.HasPrefix(l, "This may mean"), strings.HasPrefix(l, "is only available"):
				continue
			default:
				if len(alts) > 0 || strings.TrimSpace(l) == "" {
					slices.Sort(alts)
					alts = slices.Compact(alts)
					if len(alts) > 3 {
						alts = alts[:3]
					}
					return alts
				}
			}
		}
		slices.Sort(alts)
		alts = slices.Compact(alts)
		return alts[:min(3, len(alts))]
	}
	return nil
}

// packageNames lists every package name the repositories have.
func (r *Resolver) packageNames(ctx context.Context, m *metadata) ([]string, error) {
	out, err := r.runLocal(ctx, m, r.aptCache, "pkgnames")
	if err != nil {
		return nil, fmt.Errorf("listing package names: %w", err)
	}
	return strings.Fields(out.stdout), nil
}

// suggest returns up to n names close to name: within a small edit
// distance, or extending it ("python3-req" → "python3-requests"), closest
// first.
func suggest(name string, names []string, n int) []string {
	maxDist := max(1, min(3, (len(name)+1)/3))
	type cand struct {
		name  string
		score int
	}
	var cands []cand
	for _, c := range names {
		if c == name {
			continue
		}
		diff := len(c) - len(name)
		switch {
		case diff >= -maxDist && diff <= maxDist:
			if d := levenshtein.ComputeDistance(name, c); d <= maxDist {
				cands = append(cands, cand{c, d * 100})
				continue
			}
		}
		if len(name) >= 3 && strings.HasPrefix(c, name) {
			cands = append(cands, cand{c, (maxDist+1)*100 + diff})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.score != b.score {
			return a.score - b.score
		}
		return strings.Compare(a.name, b.name)
	})
	var res []string
	for _, c := range cands[:min(n, len(cands))] {
		res = append(res, c.name)
	}
	return res
}

// unsatisfiableDetail keeps apt's relevant lines: the unmet dependencies
// and its error messages, with a note for dependencies on excluded
// packages.
func unsatisfiableDetail(out aptOutput, exclude []string) string {
	var lines []string
	in := false
	for _, l := range strings.Split(out.stdout, "\n") {
		switch {
		case strings.HasPrefix(l, "The following packages have unmet dependencies:"):
			in = true
			lines = append(lines, l)
		case in && strings.HasPrefix(l, " "):
			lines = append(lines, l)
		default:
			in = false
		}
	}
	var errs []string
	for _, l := range strings.Split(out.stderr, "\n") {
		if strings.HasPrefix(l, "E: ") {
			errs = append(errs, l)
		}
	}
	// "you have held broken packages" only confuses when there are other
	// lines: kiln holds nothing.
	if len(lines) > 0 || len(errs) > 1 {
		errs = slices.DeleteFunc(errs, func(l string) bool { return strings.Contains(l, "held broken packages") })
	}
	lines = append(lines, errs...)
	if len(lines) == 0 {
		return ""
	}
	var notes []string
	text := strings.Join(lines, "\n")
	for _, x := range exclude {
		if regexp.MustCompile(`(?m)Depends: ` + regexp.QuoteMeta(x) + `\b`).MatchString(text) {
			notes = append(notes, fmt.Sprintf("package %s is excluded, but the request needs it", x))
		}
	}
	return strings.Join(append(notes, lines...), "\n")
}

// mirrorError turns a failed "apt-get update" into a MirrorError naming
// the repository apt complained about and apt's own lines.
func mirrorError(repos []depsolve.Repository, out aptOutput, err error) error {
	var lines []string
	for _, l := range strings.Split(out.all(), "\n") {
		l = strings.TrimSpace(l)
		if (strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ")) && !strings.Contains(l, "Some index files failed to download") {
			if !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
	}
	uri := repos[0].URI
	text := strings.Join(lines, "\n")
	for _, r := range repos {
		if strings.Contains(text, strings.TrimSuffix(r.URI, "/")+" ") || strings.Contains(text, strings.TrimSuffix(r.URI, "/")+"/") {
			uri = r.URI
			break
		}
	}
	if text == "" {
		text = strings.TrimSpace(out.all())
	}
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		err = fmt.Errorf("apt-get update exited with status %d", ee.ExitCode())
	}
	return &depsolve.MirrorError{URI: uri, Detail: text, Err: err}
}
