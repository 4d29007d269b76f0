package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-project/kiln/blueprint"
)

// PackageChecker says which package names a distribution's repositories
// lack, so that a request naming one is refused with the other problems
// in one answer rather than failing later in its depsolve job. A
// PackageSearcher that also implements it is used for that.
type PackageChecker interface {
	Missing(ctx context.Context, distro, arch string, names []string) ([]string, error)
}

// packageCheckTimeout bounds the check: repository metadata is usually
// cached, and when it cannot be had in time the depsolve job still
// reports a missing package at its field.
const packageCheckTimeout = 20 * time.Second

// installsFromOwnRepositories says whether the blueprint installs from a
// repository of its own, whose packages the distribution's metadata does
// not list: its names are then left to the depsolve job, which reads that
// repository too.
func installsFromOwnRepositories(bp *blueprint.Blueprint) bool {
	if bp.Customizations == nil {
		return false
	}
	for _, r := range bp.Customizations.Repositories {
		if r.InstallFrom && (r.Enabled == nil || *r.Enabled) {
			return true
		}
	}
	return false
}

// missingPackages checks the names of the blueprint's packages, modules
// and package groups (Debian tasks) against the distribution of each
// image request's architecture, unless it installs from a repository of
// its own. Fields already reported are left out,
// and so is everything when the checker cannot answer: the solver in the
// depsolve job is the last word.
func (s *Server) missingPackages(ctx context.Context, bp *blueprint.Blueprint, distribution string, irs []imageRequest, reported blueprint.Errors) error {
	checker, ok := s.cfg.Packages.(PackageChecker)
	if !ok || bp == nil || installsFromOwnRepositories(bp) {
		return nil
	}
	type named struct{ name, field string }
	var pkgs []named
	for i, p := range bp.Packages {
		pkgs = append(pkgs, named{p.Name, fmt.Sprintf("packages[%d]", i)})
	}
	for i, p := range bp.Modules {
		pkgs = append(pkgs, named{p.Name, fmt.Sprintf("modules[%d]", i)})
	}
	for i, g := range bp.Groups {
		name := g.Name
		if !strings.HasPrefix(name, "task-") {
			name = "task-" + name
		}
		pkgs = append(pkgs, named{name, fmt.Sprintf("groups[%d].name", i)})
	}
	pkgs = slices.DeleteFunc(pkgs, func(p named) bool { return p.name == "" || reported.Covers(p.field) })
	if len(pkgs) == 0 {
		return nil
	}
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = p.name
	}
	ctx, cancel := context.WithTimeout(ctx, packageCheckTimeout)
	defer cancel()
	var problems blueprint.Errors
	seen := map[string]bool{}
	for _, ir := range irs {
		if seen[ir.Architecture] {
			continue
		}
		seen[ir.Architecture] = true
		missing, err := checker.Missing(ctx, distribution, ir.Architecture, names)
		if err != nil {
			s.cfg.Log.Warn("could not check the request's package names; its depsolve job will", "err", err)
			return nil
		}
		for _, p := range pkgs {
			if slices.Contains(missing, p.name) && !slices.ContainsFunc(problems, func(q blueprint.Problem) bool { return q.Path == p.field }) {
				problems = append(problems, blueprint.Problem{Path: p.field, Message: fmt.Sprintf("package %q does not exist in %s for %s", p.name, distribution, ir.Architecture)})
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return requestProblems(problems)
}
