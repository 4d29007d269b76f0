package apt

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/depsolve"
)

// Resolve implements depsolve.Resolver: it computes the closure of the
// variant's base set plus the requested packages as apt would install it
// on an empty system, with the exact URL, SHA-256 and size of each .deb.
func (r *Resolver) Resolve(ctx context.Context, req depsolve.Request) (*depsolve.Result, error) {
	specs, err := checkRequest(req)
	if err != nil {
		return nil, err
	}
	base, err := basePattern(req.Variant, req.Exclude)
	if err != nil {
		return nil, err
	}
	m, err := r.metadataFor(req.Arch, req.Repositories)
	if err != nil {
		return nil, err
	}
	st, lock, err := r.ensure(ctx, m)
	if err != nil {
		return nil, err
	}
	defer lock.release()

	key, err := solutionKey(req)
	if err != nil {
		return nil, err
	}
	if res := loadSolution(m, st, key); res != nil && !r.cfg.NoSolutionCache {
		res.Repositories = repositoryStates(req.Repositories, st)
		return res, nil
	}

	pins, versionErr, err := r.pin(ctx, m, specs)
	if err != nil {
		return nil, err
	}
	excludes, err := r.known(ctx, m, req.Exclude)
	if err != nil {
		return nil, err
	}
	args := []string{"install", "--print-uris", "-q", "-y",
		"-o", "APT::Install-Recommends=" + strconv.FormatBool(req.InstallRecommends),
		"--", base}
	args = append(args, pins...)
	for _, x := range excludes {
		args = append(args, x+"-")
	}
	out, runErr := r.runLocal(ctx, m, r.aptGet, args...)
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("resolving packages: %w", ctx.Err())
		}
		if miss := missingIn(out); len(miss) > 0 {
			return nil, r.missingError(ctx, m, specs, miss, out)
		}
		if versionErr != nil {
			return nil, versionErr
		}
		if detail := unsatisfiableDetail(out, req.Exclude); detail != "" {
			return nil, &depsolve.UnsatisfiableError{Detail: detail}
		}
		return nil, fmt.Errorf("resolving packages with apt-get: %w: %s", runErr, strings.TrimSpace(out.all()))
	}
	if versionErr != nil {
		return nil, versionErr
	}
	debs, err := parsePrintURIs(out.stdout)
	if err != nil {
		return nil, err
	}
	for _, d := range debs {
		if slices.Contains(req.Exclude, d.name) {
			return nil, &depsolve.UnsatisfiableError{Detail: fmt.Sprintf("excluded package %s is needed by the request and apt found no alternative", d.name)}
		}
	}
	sources, err := m.lookupSources(debs)
	if err != nil {
		return nil, err
	}
	res := &depsolve.Result{Packages: make([]depsolve.Package, 0, len(debs))}
	for _, d := range debs {
		src := sources[d.key()]
		res.Packages = append(res.Packages, depsolve.Package{
			Name: d.name, Version: d.version, Arch: d.arch,
			Source: src.name, SourceVersion: src.version,
			URL: d.url, SHA256: d.sha256, Size: d.size,
			Repository: repositoryOf(req.Repositories, d.url),
		})
	}
	slices.SortFunc(res.Packages, func(a, b depsolve.Package) int {
		return strings.Compare(a.Name+"\x00"+a.Arch, b.Name+"\x00"+b.Arch)
	})
	res.Repositories = repositoryStates(req.Repositories, st)
	if r.cfg.NoSolutionCache {
		return res, nil
	}
	if err := storeSolution(m, st, key, res); err != nil {
		r.cfg.Log.Debug("could not cache the solution", "err", err)
	}
	return res, nil
}

// basePattern is the apt pattern of a variant's base set, as mmdebstrap
// defines the variants, without the excluded packages.
func basePattern(variant string, exclude []string) (string, error) {
	var p string
	switch variant {
	case "essential":
		p = "?essential"
	case "", "required":
		p = "?or(?essential,?priority(required))"
	case "important":
		p = "?or(?essential,?priority(required),?priority(important))"
	default:
		return "", fmt.Errorf("variant %q is not one of essential, required, important", variant)
	}
	if len(exclude) == 0 {
		return p, nil
	}
	terms := []string{p}
	for _, x := range exclude {
		terms = append(terms, "?not(?exact-name("+x+"))")
	}
	return "?and(" + strings.Join(terms, ",") + ")", nil
}

// checkRequest validates names and versions before they reach apt's
// command line, and folds duplicate package entries.
func checkRequest(req depsolve.Request) ([]spec, error) {
	var problems []string
	var specs []spec
	seen := map[string]int{}
	for _, p := range req.Packages {
		if !validName(p.Name) {
			problems = append(problems, fmt.Sprintf("package name %q is not a Debian package name (lower-case letters, digits, '+', '-', '.'; at least two characters)", p.Name))
			continue
		}
		c, err := parseConstraint(p.Version)
		if err != nil {
			problems = append(problems, fmt.Sprintf("package %s: %v", p.Name, err))
			continue
		}
		if i, ok := seen[p.Name]; ok {
			if specs[i].c != c {
				problems = append(problems, fmt.Sprintf("package %s is requested twice with different versions (%q and %q)", p.Name, specs[i].c, c))
			}
			continue
		}
		seen[p.Name] = len(specs)
		specs = append(specs, spec{name: p.Name, c: c})
	}
	for _, x := range req.Exclude {
		if !validName(x) {
			problems = append(problems, fmt.Sprintf("excluded package name %q is not a Debian package name", x))
			continue
		}
		if _, ok := seen[x]; ok {
			problems = append(problems, fmt.Sprintf("package %s is both requested and excluded", x))
		}
	}
	if len(problems) > 0 {
		return nil, &depsolve.UnsatisfiableError{Detail: strings.Join(problems, "\n")}
	}
	return specs, nil
}

// validName follows Debian policy 5.6.1, and refuses a trailing "-" or
// "+", which apt's command line reads as remove or install.
func validName(n string) bool {
	if len(n) < 2 || len(n) > 200 {
		return false
	}
	for i, c := range n {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return false
		}
		if !alnum && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return !strings.HasSuffix(n, "-") && !(strings.HasSuffix(n, "+") && !strings.HasSuffix(n, "++"))
}

// known returns the names among names that the repositories have.
func (r *Resolver) known(ctx context.Context, m *metadata, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	out, err := r.runLocal(ctx, m, r.aptCache, append([]string{"policy", "--"}, names...)...)
	if err != nil {
		return nil, fmt.Errorf("looking up excluded packages: %w: %s", err, strings.TrimSpace(out.stderr))
	}
	var known []string
	for _, line := range strings.Split(out.stdout, "\n") {
		if name, ok := strings.CutSuffix(line, ":"); ok && !strings.HasPrefix(line, " ") && slices.Contains(names, name) {
			known = append(known, name)
		}
	}
	return known, nil
}

// deb is one line of "apt-get install --print-uris":
//
//	'http://…/base-files_12.4%2bdeb12u5_amd64.deb' base-files_12.4+deb12u5_amd64.deb 70936 SHA256:…
type deb struct {
	url, name, version, arch, sha256 string
	size                             int64
}

func (d deb) key() string { return d.name + ":" + d.arch + "=" + d.version }

func parsePrintURIs(stdout string) ([]deb, error) {
	var debs []deb
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "'") {
			continue
		}
		end := strings.Index(line[1:], "'")
		if end < 0 {
			return nil, fmt.Errorf("apt-get printed a malformed URI line %q", line)
		}
		d := deb{url: line[1 : end+1]}
		f := strings.Fields(line[end+2:])
		if len(f) != 3 {
			return nil, fmt.Errorf("apt-get printed a malformed URI line %q", line)
		}
		parts := strings.Split(strings.TrimSuffix(f[0], ".deb"), "_")
		if len(parts) != 3 || !strings.HasSuffix(f[0], ".deb") {
			return nil, fmt.Errorf("apt-get printed an unexpected file name %q", f[0])
		}
		var err error
		for i, dst := range []*string{&d.name, &d.version, &d.arch} {
			if *dst, err = url.PathUnescape(parts[i]); err != nil {
				return nil, fmt.Errorf("apt-get printed an unexpected file name %q: %w", f[0], err)
			}
		}
		if d.size, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return nil, fmt.Errorf("apt-get printed an unexpected size in %q: %w", line, err)
		}
		sum, ok := strings.CutPrefix(f[2], "SHA256:")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("the repository gives no SHA256 for %s (apt printed %q)", d.name, f[2])
		}
		d.sha256 = strings.ToLower(sum)
		debs = append(debs, d)
	}
	return debs, nil
}

type source struct{ name, version string }

// repositoryOf is the ID of the repository whose URI the URL is under.
func repositoryOf(repos []depsolve.Repository, u string) string {
	best, id := -1, ""
	for _, r := range repos {
		p := strings.TrimSuffix(r.URI, "/") + "/"
		if strings.HasPrefix(u, p) && len(p) > best {
			best, id = len(p), r.ID
		}
	}
	return id
}

// repositoryStates lists each requested suite with the Release date
// recorded when its metadata was fetched.
func repositoryStates(repos []depsolve.Repository, st *metaState) []depsolve.RepositoryState {
	var res []depsolve.RepositoryState
	for _, r := range repos {
		for _, s := range r.Suites {
			rs := depsolve.RepositoryState{ID: r.ID, URI: r.URI, Suite: s}
			for _, f := range st.Suites {
				if f.URI == r.URI && f.Suite == s {
					rs.Date = f.Date
				}
			}
			res = append(res, rs)
		}
	}
	return res
}
