package aptsources

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
)

// DebianCodenames returns the codenames of Debian releases, oldest first,
// plus the suite aliases that name a Debian release.
func DebianCodenames() []string {
	return []string{
		"buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch",
		"lenny", "squeeze", "wheezy", "jessie", "stretch", "buster", "bullseye",
		"bookworm", "trixie", "forky", "duke", "sid",
		"oldoldstable", "oldstable", "stable", "testing", "unstable",
	}
}

// Mirrors are the Debian archives found in the host's apt sources.
type Mirrors struct {
	// Main is the URI of the Debian archive ("…/debian").
	Main string
	// Security is the URI of the security archive, or "" when the host
	// lists none.
	Security string
	// MainFrom and SecurityFrom say which entry ("file:line") each came from.
	MainFrom, SecurityFrom string
}

// NoMirrorError says the host's apt sources list no Debian archive.
type NoMirrorError struct {
	Searched int // enabled entries looked at
}

func (e *NoMirrorError) Error() string {
	return fmt.Sprintf("no Debian mirror found in the host's apt sources (%d enabled entries in /etc/apt/sources.list and /etc/apt/sources.list.d/ looked at); pass --mirror or set the mirror in the configuration", e.Searched)
}

// FindDebianMirrors picks the Debian archive and security archive among
// entries. The main archive is a "deb" entry with component main whose
// suites include a Debian codename or "<codename>-updates" — any known
// Debian codename, so a host that lists only bookworm still yields the
// mirror for trixie. The security archive is an entry with a
// "<codename>-security" or "<codename>/updates" suite. Codenames names the
// releases wanted (e.g. "trixie"); entries for them win over entries for
// other releases. Among equals, entries signed by a Debian archive keyring
// (or with no signed-by) and URIs whose last path element is "debian"
// (or "debian-security") win, then the first in apt's reading order.
func FindDebianMirrors(entries []Entry, codenames []string) (Mirrors, error) {
	known := DebianCodenames()
	var m Mirrors
	bestMain, bestSec := -1, -1
	searched := 0
	for _, e := range entries {
		if !e.HasType("deb") {
			continue
		}
		searched++
		if !slices.Contains(e.Components, "main") {
			continue
		}
		for _, uri := range e.URIs {
			if !fetchable(uri) {
				continue
			}
			for _, suite := range e.Suites {
				codename, kind := splitSuite(suite)
				if !slices.Contains(known, codename) {
					continue
				}
				score := 0
				if slices.Contains(codenames, codename) {
					score += 4
				}
				if e.SignedBy == "" || strings.Contains(path.Base(e.SignedBy), "debian-archive") {
					score += 2
				}
				switch kind {
				case suiteMain:
					if lastElem(uri) == "debian" {
						score++
					}
					if score > bestMain {
						bestMain, m.Main, m.MainFrom = score, strings.TrimSuffix(uri, "/"), e.Where()
					}
				case suiteSecurity:
					if lastElem(uri) == "debian-security" {
						score++
					}
					if score > bestSec {
						bestSec, m.Security, m.SecurityFrom = score, strings.TrimSuffix(uri, "/"), e.Where()
					}
				}
			}
		}
	}
	if m.Main == "" {
		return Mirrors{}, &NoMirrorError{Searched: searched}
	}
	return m, nil
}

type suiteKind int

const (
	suiteOther suiteKind = iota
	suiteMain
	suiteSecurity
)

// splitSuite splits "bookworm-updates" into its codename and kind.
func splitSuite(suite string) (string, suiteKind) {
	switch {
	case strings.HasSuffix(suite, "-security"):
		return strings.TrimSuffix(suite, "-security"), suiteSecurity
	case strings.HasSuffix(suite, "/updates"):
		return strings.TrimSuffix(suite, "/updates"), suiteSecurity
	case strings.HasSuffix(suite, "-updates"):
		return strings.TrimSuffix(suite, "-updates"), suiteMain
	case strings.ContainsAny(suite, "/-"):
		// backports, proposed-updates, flat paths: not the archive itself.
		return suite, suiteOther
	}
	return suite, suiteMain
}

// fetchable reports whether kiln's resolver can read uri: http, https or
// a local file: archive (not a CD-ROM, not apt's mirror+ or tor+ methods).
func fetchable(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "file":
		return u.Path != ""
	}
	return false
}

func lastElem(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return path.Base(strings.TrimSuffix(u.Path, "/"))
}
