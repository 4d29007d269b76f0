package service

import (
	"context"
	"fmt"

	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/api"
)

// aptSearcher answers package searches from the apt solver's repository
// metadata, through the mirrors the workers use.
type aptSearcher struct {
	resolver interface {
		Search(ctx context.Context, repos []depsolve.Repository, arch, query string, limit, offset int) ([]apt.PackageInfo, int, error)
		Missing(ctx context.Context, repos []depsolve.Repository, arch string, names []string) ([]string, error)
	}
	distros *distro.Registry
	mirrors map[string]string
}

// repositories are the distribution's repositories, through the mirrors,
// and the Debian architecture of archName.
func (s aptSearcher) repositories(distroName, archName string) ([]depsolve.Repository, string, error) {
	d, err := s.distros.Distro(distroName)
	if err != nil {
		return nil, "", err
	}
	a, err := d.Arch(archName)
	if err != nil {
		return nil, "", err
	}
	repos := d.PackageRepositories(s.mirrors)
	if len(repos) == 0 {
		return nil, "", fmt.Errorf("no mirror is configured for %s", d.Name)
	}
	return repos, a.DebianArch, nil
}

// Missing implements api.PackageChecker.
func (s aptSearcher) Missing(ctx context.Context, distroName, archName string, names []string) ([]string, error) {
	repos, arch, err := s.repositories(distroName, archName)
	if err != nil {
		return nil, err
	}
	return s.resolver.Missing(ctx, repos, arch, names)
}

func (s aptSearcher) Search(ctx context.Context, distroName, archName, query string, limit, offset int) ([]api.Package, int, error) {
	repos, arch, err := s.repositories(distroName, archName)
	if err != nil {
		return nil, 0, err
	}
	found, total, err := s.resolver.Search(ctx, repos, arch, query, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out := make([]api.Package, 0, len(found))
	for _, p := range found {
		out = append(out, api.Package{Name: p.Name, Summary: p.Summary, Version: p.Version})
	}
	return out, total, nil
}
