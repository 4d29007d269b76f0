// Package compose runs the first half of the flow for one image: it picks
// the distribution, architecture and image type, plans the manifest from the
// blueprint, solves its packages and writes the manifest. The CLI and the
// service both start a build here.
package compose

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/keyfetch"
	"github.com/kiln-project/kiln/internal/manifest"
)

// Request names what to build. Empty Distro and Arch fall back to the
// blueprint's fields, then to the defaults.
type Request struct {
	Distro    string
	Arch      string
	ImageType string
	Options   distro.Options
}

// Defaults used when neither the request nor the blueprint says.
type Defaults struct {
	Distro string
	Arch   string
}

// Result is a written manifest and the warnings met on the way.
type Result struct {
	Manifest *manifest.Manifest
	Warnings []string
}

// ImageType resolves the request's distribution, architecture and image
// type, taking the blueprint's distro and architecture fields when the
// request leaves them empty.
func ImageType(reg *distro.Registry, bp *blueprint.Blueprint, req Request, def Defaults) (*distro.ImageType, error) {
	dn, an := req.Distro, req.Arch
	if dn == "" {
		dn = bp.Distro
	}
	if dn == "" {
		dn = def.Distro
	}
	if an == "" {
		an = bp.Architecture
	}
	if an == "" {
		an = def.Arch
	}
	d, err := reg.Distro(dn)
	if err != nil {
		return nil, err
	}
	a, err := d.Arch(an)
	if err != nil {
		return nil, err
	}
	if req.ImageType == "" {
		return nil, fmt.Errorf("no image type given: choose one of those `kiln list-images` shows")
	}
	return a.ImageType(req.ImageType)
}

// Manifest plans, solves and writes the manifest of one image. Every
// problem of the blueprint that can be known without building (the image
// type's checks, the disk layout, missing packages) comes back at once,
// as blueprint.Errors sorted by field path.
func Manifest(ctx context.Context, it *distro.ImageType, bp *blueprint.Blueprint, opts distro.Options, r depsolve.Resolver) (*Result, error) {
	return ManifestAll(ctx, it, bp, nil, opts, r)
}

// ManifestAll is Manifest for a blueprint that parsing already found
// problems in (see blueprint.ParseAll): those are reported with the
// others, and the fields they cover are not checked again. With any
// problem, no manifest is written.
func ManifestAll(ctx context.Context, it *distro.ImageType, bp *blueprint.Blueprint, reported blueprint.Errors, opts distro.Options, r depsolve.Resolver) (*Result, error) {
	if err := it.Buildable(); err != nil {
		return nil, err
	}
	// Repository keys the blueprint names by URL are fetched first (with
	// opts.KeyClient), so that the manifest pins them; a failed fetch is
	// reported together with the blueprint's other problems.
	keys, err := (&keyfetch.Fetcher{Client: opts.KeyClient}).Blueprint(ctx, bp)
	if err != nil {
		var fetched blueprint.Errors
		if !errors.As(err, &fetched) {
			return nil, err
		}
		reported = reported.Merge(fetched)
	}
	if keys == nil {
		keys = map[string]keyfetch.Key{} // fetched: none missing may be left out
	}
	opts.GPGKeys = keys
	plan, res, err := solve(ctx, it, bp, reported, opts, r)
	if err != nil {
		return nil, err
	}
	m, err := plan.Finish(res)
	if err != nil {
		return nil, err
	}
	return &Result{Manifest: m, Warnings: plan.Warnings}, nil
}

// Check runs every check of Manifest, solving the packages, but writes no
// manifest, so it also checks for an architecture this host cannot build:
// it returns the warnings, or every problem as blueprint.Errors. It
// fetches no repository key (the plan warns at the key's field instead).
// A nil resolver leaves the packages unchecked, so the check needs no
// network.
func Check(ctx context.Context, it *distro.ImageType, bp *blueprint.Blueprint, reported blueprint.Errors, opts distro.Options, r depsolve.Resolver) ([]string, error) {
	plan, _, err := solve(ctx, it, bp, reported, opts, r)
	if err != nil {
		return nil, err
	}
	return plan.Warnings, nil
}

// solve plans the image and solves its packages, even when the plan has
// problems, so that missing packages join them in one answer.
func solve(ctx context.Context, it *distro.ImageType, bp *blueprint.Blueprint, reported blueprint.Errors, opts distro.Options, r depsolve.Resolver) (*distro.Plan, *depsolve.Result, error) {
	plan, err := it.PlanAll(bp, opts, reported)
	if err != nil {
		if len(reported) > 0 {
			return nil, nil, fmt.Errorf("%w; and the blueprint:\n%w", err, reported)
		}
		return nil, nil, err
	}
	problems := reported.Merge(plan.Problems)
	if r == nil {
		if len(problems) > 0 {
			return nil, nil, problems
		}
		return plan, nil, nil
	}
	res, err := r.Resolve(ctx, plan.Request)
	if err != nil {
		err = plan.ExplainSolveError(err)
		var missing blueprint.Errors
		if errors.As(err, &missing) {
			return nil, nil, problems.Merge(missing)
		}
		if len(problems) > 0 {
			return nil, nil, fmt.Errorf("the packages could not be checked (%w); the blueprint:\n%w", err, problems)
		}
		return nil, nil, err
	}
	if len(problems) > 0 {
		return nil, nil, problems
	}
	return plan, res, nil
}
