package depsolve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Fake is a deterministic resolver for tests that need no network: every
// requested package exists (except names starting with "missing-"), has
// version 1.0-1, no dependencies, and a checksum derived from its name. The
// base variant adds a fixed pair of packages. It never reads a repository.
type Fake struct{}

var fakeBase = []string{"base-files", "dpkg"}

// Resolve implements Resolver.
func (Fake) Resolve(_ context.Context, req Request) (*Result, error) {
	names := slices.Clone(fakeBase)
	var missing []MissingPackage
	for _, p := range req.Packages {
		if strings.HasPrefix(p.Name, "missing-") {
			missing = append(missing, MissingPackage{Name: p.Name})
			continue
		}
		names = append(names, p.Name)
	}
	if len(missing) > 0 {
		return nil, &MissingPackagesError{Missing: missing}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(req.Exclude, n) })
	slices.Sort(names)
	names = slices.Compact(names)
	uri := "http://fake-mirror.invalid/debian"
	if len(req.Repositories) > 0 {
		uri = req.Repositories[0].URI
	}
	res := &Result{}
	for _, n := range names {
		sum := sha256.Sum256([]byte(n))
		res.Packages = append(res.Packages, Package{
			Name: n, Version: "1.0-1", Arch: req.Arch, Source: n, SourceVersion: "1.0-1",
			URL:    fmt.Sprintf("%s/pool/main/%s/%s/%s_1.0-1_%s.deb", strings.TrimSuffix(uri, "/"), n[:1], n, n, req.Arch),
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(n)) * 1024, Repository: "debian",
		})
	}
	for _, r := range req.Repositories {
		for _, s := range r.Suites {
			res.Repositories = append(res.Repositories, RepositoryState{ID: r.ID, URI: r.URI, Suite: s, Date: "Sat, 01 Jan 2000 00:00:00 UTC"})
		}
	}
	return res, nil
}
