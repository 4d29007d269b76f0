package apt

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	debversion "github.com/knqyf263/go-deb-version"

	"github.com/kiln-project/kiln/internal/depsolve"
)

// spec is a validated package request.
type spec struct {
	name string
	c    constraint
}

// constraint is a version relation; op is "" for any version and "glob"
// for a version pattern ("1:9.2p1*", as osbuild blueprints write them).
type constraint struct {
	op, version string
}

func (c constraint) String() string {
	switch c.op {
	case "":
		return "*"
	case "glob":
		return c.version
	}
	return c.op + " " + c.version
}

// parseConstraint reads "", "*", an exact version, a relation
// ("= 1.2-3", ">= 1.2", "<< 2", "<= 1", ">> 1") or a version pattern
// with '*' and '?' wildcards ("2.9.*", "1:9.2p1*"), which selects the
// newest version that matches it.
func parseConstraint(s string) (constraint, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "*" {
		return constraint{}, nil
	}
	op := "="
	for _, o := range []string{">=", "<=", ">>", "<<", "="} {
		if rest, ok := strings.CutPrefix(s, o); ok {
			op, s = o, strings.TrimSpace(rest)
			break
		}
	}
	if strings.HasPrefix(s, ">") || strings.HasPrefix(s, "<") {
		return constraint{}, fmt.Errorf("version %q: use >>, >=, << or <= (a single > or < is ambiguous)", s)
	}
	if strings.ContainsAny(s, "*?") {
		if op != "=" || !validPattern(s) {
			return constraint{}, fmt.Errorf("version pattern %q: write a Debian version with '*' or '?' wildcards and no relation, e.g. \"2.9.*\"", s)
		}
		return constraint{op: "glob", version: s}, nil
	}
	if !debversion.Valid(s) || strings.ContainsAny(s, " \t/=") {
		return constraint{}, fmt.Errorf("version %q is not a Debian version", s)
	}
	return constraint{op: op, version: s}, nil
}

// satisfied reports whether version v satisfies c.
func (c constraint) satisfied(v string) bool {
	if c.op == "" {
		return true
	}
	if c.op == "glob" {
		ok, err := path.Match(c.version, v)
		return ok && err == nil
	}
	a, err := debversion.NewVersion(v)
	if err != nil {
		return false
	}
	b, err := debversion.NewVersion(c.version)
	if err != nil {
		return false
	}
	cmp := a.Compare(b)
	switch c.op {
	case "=":
		return v == c.version || cmp == 0
	case ">=":
		return cmp >= 0
	case "<=":
		return cmp <= 0
	case ">>":
		return cmp > 0
	case "<<":
		return cmp < 0
	}
	return false
}

// validPattern says whether a version pattern is a Debian version once its
// wildcards stand for a digit.
func validPattern(s string) bool {
	v := strings.NewReplacer("*", "0", "?", "0").Replace(s)
	return debversion.Valid(v) && !strings.ContainsAny(s, " \t/=[]\\")
}

// compareVersions orders Debian versions; unparsable ones sort first.
func compareVersions(x, y string) int {
	a, errA := debversion.NewVersion(x)
	b, errB := debversion.NewVersion(y)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(x, y)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return a.Compare(b)
}

// pin turns specs into apt-get arguments: a constrained package becomes
// name=version for the newest version the repositories have that
// satisfies it. Packages the repositories do not have at all stay bare,
// for apt to report as missing. Constraints nothing satisfies come back as
// an UnsatisfiableError naming each with the versions there are.
func (r *Resolver) pin(ctx context.Context, m *metadata, specs []spec) ([]string, *depsolve.UnsatisfiableError, error) {
	var constrained []string
	for _, s := range specs {
		if s.c.op != "" {
			constrained = append(constrained, s.name)
		}
	}
	var avail map[string][]string
	if len(constrained) > 0 {
		out, err := r.runLocal(ctx, m, r.aptCache, append([]string{"madison", "--"}, constrained...)...)
		if err != nil {
			return nil, nil, fmt.Errorf("listing available versions: %w: %s", err, strings.TrimSpace(out.stderr))
		}
		avail = parseMadison(out.stdout)
	}
	var args, problems []string
	for _, s := range specs {
		versions := avail[s.name]
		if s.c.op == "" || len(versions) == 0 {
			args = append(args, s.name)
			continue
		}
		var best string
		for _, v := range versions {
			if s.c.satisfied(v) && (best == "" || compareVersions(v, best) > 0) {
				best = v
			}
		}
		if best == "" {
			problems = append(problems, fmt.Sprintf("%s: no version satisfies %q (available: %s)", s.name, s.c.String(), strings.Join(versions, ", ")))
			args = append(args, s.name)
			continue
		}
		args = append(args, s.name+"="+best)
	}
	if len(problems) > 0 {
		return args, &depsolve.UnsatisfiableError{Detail: strings.Join(problems, "\n")}, nil
	}
	return args, nil, nil
}

// parseMadison reads "apt-cache madison" lines
// ("curl | 7.88.1-10+deb12u5 | http://… bookworm/main amd64 Packages") into
// each package's distinct versions, newest first.
func parseMadison(out string) map[string][]string {
	res := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 || !strings.HasSuffix(strings.TrimSpace(f[2]), "Packages") {
			continue
		}
		name, v := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if !slices.Contains(res[name], v) {
			res[name] = append(res[name], v)
		}
	}
	for _, vs := range res {
		slices.SortFunc(vs, func(a, b string) int { return compareVersions(b, a) })
	}
	return res
}
