package apt

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/kiln-project/kiln/internal/depsolve"
)

// PackageInfo is one package of a listing: its newest version in the
// repositories.
type PackageInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Summary string `json:"summary"`
	// Repository is the ID of the repository the version comes from.
	Repository string `json:"repository"`
}

// Search lists the packages of repos (for arch) whose names contain query
// (case-insensitive; "" lists all), sorted by name, skipping offset and
// returning at most limit (all when limit <= 0), together with the number
// of matches. It reads the cached metadata, fetching it as Resolve does.
func (r *Resolver) Search(ctx context.Context, repos []depsolve.Repository, arch, query string, limit, offset int) ([]PackageInfo, int, error) {
	if offset < 0 {
		return nil, 0, fmt.Errorf("search offset %d is negative", offset)
	}
	m, err := r.metadataFor(arch, repos)
	if err != nil {
		return nil, 0, err
	}
	_, lock, err := r.ensure(ctx, m)
	if err != nil {
		return nil, 0, err
	}
	defer lock.release()

	q := []byte(strings.ToLower(query))
	var res []PackageInfo
	total := 0
	var last []byte
	err = m.scanIndex(func(line []byte) bool {
		name, _, _ := bytes.Cut(line, []byte("\t"))
		// The index is sorted by name, newest version first: the first
		// line of a name is the one to list.
		if bytes.Equal(name, last) || !bytes.Contains(name, q) {
			return ctx.Err() == nil
		}
		last = append(last[:0], name...)
		total++
		if total > offset && (limit <= 0 || len(res) < limit) {
			if e, ok := parseIndexLine(line); ok {
				id := ""
				if e.repo >= 0 && e.repo < len(repos) {
					id = repos[e.repo].ID
				}
				res = append(res, PackageInfo{Name: e.name, Version: e.version, Arch: e.arch, Summary: e.summary, Repository: id})
			}
		}
		return ctx.Err() == nil
	})
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("searching packages: %w", err)
	}
	return res, total, nil
}

// Missing returns those of names that no repository of repos has for
// arch, in the order given. It reads the cached metadata, fetching it as
// Resolve does, and looks at names only: versions are the solver's.
func (r *Resolver) Missing(ctx context.Context, repos []depsolve.Repository, arch string, names []string) ([]string, error) {
	m, err := r.metadataFor(arch, repos)
	if err != nil {
		return nil, err
	}
	_, lock, err := r.ensure(ctx, m)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = false
	}
	err = m.scanIndex(func(line []byte) bool {
		name, _, _ := bytes.Cut(line, []byte("\t"))
		if found, ok := want[string(name)]; ok && !found {
			want[string(name)] = true
		}
		return ctx.Err() == nil
	})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var missing []string
	for _, n := range names {
		if !want[n] {
			missing = append(missing, n)
			want[n] = true // once
		}
	}
	return missing, nil
}
