// Package depsolve turns a package request into the exact closure of packages
// to install: name, version, architecture, source package, URL, SHA-256 and
// size. The closure pins a build, feeds the SBOM and makes the manifest
// reproducible.
//
// The Resolver interface is the seam: apt/ solves with apt itself against the
// repository metadata (never with a hand-written solver); Fake is a
// deterministic resolver for manifest tests that need no network.
package depsolve

import (
	"context"
	"fmt"
	"strings"
)

// Repository is one apt source the solver reads.
type Repository struct {
	// ID names the repository in the result ("debian", "debian-security",
	// or a blueprint repository's id).
	ID         string   `json:"id"`
	URI        string   `json:"uri"`
	Suites     []string `json:"suites"`
	Components []string `json:"components"`
	// SignedBy is the path of the keyring (binary or ASCII-armored) whose
	// keys must sign the repository's Release file.
	SignedBy string `json:"signed_by,omitempty"`
	// SignedByKeys are ASCII-armored public keys, for repositories that
	// bring their own keys (a blueprint's repositories).
	SignedByKeys []string `json:"signed_by_keys,omitempty"`
	// Priority, when set, is the apt pin priority of the repository's
	// packages while solving, selecting it by the host of its URI, as the
	// image's apt preferences do.
	Priority *int `json:"priority,omitempty"`
}

// PackageSpec is one requested package. Version is empty or "*" for any
// version, an exact Debian version, or a relation ("= 1.2-3", ">= 1.2",
// "<< 2", "<= 1", ">> 1").
type PackageSpec struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Request is what to solve.
type Request struct {
	// Arch is the Debian architecture ("amd64", "arm64").
	Arch         string
	Repositories []Repository
	// Variant chooses the base set added to Packages, as mmdebstrap's
	// variants do: "essential" (Essential: yes only), "required"
	// (Essential plus Priority: required, the default) or "important".
	Variant  string
	Packages []PackageSpec
	// Exclude names packages that must not be in the closure.
	Exclude []string
	// InstallRecommends also installs Recommends (off by default).
	InstallRecommends bool
}

// Package is one resolved package.
type Package struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch"`
	Source        string `json:"source"`
	SourceVersion string `json:"source_version"`
	URL           string `json:"url"`
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	// Repository is the ID of the repository it comes from.
	Repository string `json:"repository"`
}

// RepositoryState records which snapshot of a repository was solved against.
type RepositoryState struct {
	ID    string `json:"id"`
	URI   string `json:"uri"`
	Suite string `json:"suite"`
	// Date is the Release file's Date field.
	Date string `json:"date"`
}

// Result is a solved request. Packages are sorted by name.
type Result struct {
	Packages     []Package         `json:"packages"`
	Repositories []RepositoryState `json:"repositories"`
}

// Resolver solves package requests.
type Resolver interface {
	Resolve(ctx context.Context, req Request) (*Result, error)
}

// MissingPackage is a requested package that no repository has.
type MissingPackage struct {
	Name        string
	Suggestions []string
}

// MissingPackagesError says which requested packages do not exist.
type MissingPackagesError struct {
	Missing []MissingPackage
}

func (e *MissingPackagesError) Error() string {
	var b strings.Builder
	for i, m := range e.Missing {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "package %q does not exist in the configured repositories", m.Name)
		if len(m.Suggestions) > 0 {
			fmt.Fprintf(&b, " (did you mean %s?)", quoteList(m.Suggestions))
		}
	}
	return b.String()
}

// UnsatisfiableError is a request apt cannot satisfy: conflicts, broken
// dependencies or a version that does not exist. Detail is apt's own words.
type UnsatisfiableError struct {
	Detail string
}

func (e *UnsatisfiableError) Error() string {
	return "the package request cannot be satisfied:\n" + e.Detail
}

// MirrorError is a repository that could not be read (unreachable, bad
// signature, missing suite).
type MirrorError struct {
	URI    string
	Detail string
	Err    error
}

func (e *MirrorError) Error() string {
	msg := fmt.Sprintf("repository %s could not be read", e.URI)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + " (check the mirror, the network, or use --offline with a warm metadata cache)"
}

func (e *MirrorError) Unwrap() error { return e.Err }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, " or ")
}
