// Package compose runs the first half of the flow for one image: it picks
// the distribution, architecture and image type, plans the manifest from the
// blueprint, solves its packages and writes the manifest. The CLI and the
// service both start a build here.
package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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

// Manifest plans, solves and writes the manifest of one image.
// Repository keys the blueprint names by URL are fetched first (with
// opts.KeyClient), so that the manifest pins them; a failed fetch is
// reported together with the blueprint's other problems.
func Manifest(ctx context.Context, it *distro.ImageType, bp *blueprint.Blueprint, opts distro.Options, r depsolve.Resolver) (*Result, error) {
	keys, err := (&keyfetch.Fetcher{Client: opts.KeyClient}).Blueprint(ctx, bp)
	if err != nil {
		return nil, withBlueprintProblems(err, it.CheckBlueprint(bp))
	}
	if keys == nil {
		keys = map[string]keyfetch.Key{} // fetched: none missing may be left out
	}
	opts.GPGKeys = keys
	plan, err := it.Manifest(bp, opts)
	if err != nil {
		return nil, err
	}
	res, err := r.Resolve(ctx, plan.Request)
	if err != nil {
		return nil, plan.ExplainSolveError(err)
	}
	m, err := plan.Finish(res)
	if err != nil {
		return nil, err
	}
	return &Result{Manifest: m, Warnings: plan.Warnings}, nil
}

// withBlueprintProblems joins the problems of failed key fetches with
// those CheckBlueprint found, so that one answer has them all.
func withBlueprintProblems(fetchErr, checkErr error) error {
	var fetched, checked blueprint.Errors
	if !errors.As(fetchErr, &fetched) {
		return fetchErr
	}
	if checkErr != nil && !errors.As(checkErr, &checked) {
		return checkErr
	}
	all := append(slices.Clone(fetched), checked...)
	slices.SortStableFunc(all, func(a, b blueprint.Problem) int { return strings.Compare(a.Path, b.Path) })
	return all
}
