package distro

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/keyfetch"
	"github.com/kiln-project/kiln/internal/manifest"
)

// repoProblems checks the blueprint's repositories against the
// distribution: the ids and file names of its own repositories are taken,
// a pasted key must be an OpenPGP public key apt can read, and a
// repository that is switched off cannot be installed from.
func (d *Distro) repoProblems(c *blueprint.Customizations) blueprint.Errors {
	taken := map[string]bool{}
	for _, r := range d.Repositories {
		taken[r.ID] = true
	}
	var errs blueprint.Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, blueprint.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for i, r := range c.Repositories {
		p := fmt.Sprintf("customizations.repositories[%d]", i)
		if taken[r.ID] {
			add(p+".id", "%q is the id of one of %s's own repositories; choose another id", r.ID, d.Name)
		} else if r.Filename != "" && taken[r.SourcesFile()] {
			add(p+".filename", "%q would replace the sources file of %s's own repository %s; choose another file name", r.Filename, d.Name, r.SourcesFile())
		}
		if r.ChecksSignatures() {
			for j, k := range r.GPGKeys {
				if keyfetch.IsURL(k) {
					continue
				}
				// The blueprint checks the armor's shape; apt needs the packets.
				if _, err := keyfetch.Normalize([]byte(k)); err != nil {
					add(fmt.Sprintf("%s.gpgkeys[%d]", p, j), "the pasted key %v; paste the output of \"gpg --export --armor KEYID\" whole", err)
				}
			}
		}
		if r.InstallFrom && !r.IsEnabled() {
			add(p+".install_from", "the repository is switched off (enabled = false), so it is written into the image disabled and not used to build it; drop install_from or enable the repository")
		}
	}
	return errs
}

// blueprintRepos turns the blueprint's repositories into the image's apt
// sources, the repositories the solver reads (those with install_from)
// and the pins of the keys fetched by URL (keys maps URL to key). A
// disabled repository is written with "Enabled: no" and never solved
// against. It returns every problem at once.
//
// A nil keys map means no fetch was made (a plan only to check the
// blueprint, offline): key URLs are then left out with a warning.
// compose.Manifest always fetches, and there a key missing from the map
// is a problem at its field.
func blueprintRepos(c *blueprint.Customizations, keys map[string]keyfetch.Key) (srcs []manifest.AptSource, solve []depsolve.Repository, pins []manifest.KeyPin, warnings []string, errs blueprint.Errors) {
	for i, r := range c.Repositories {
		p := fmt.Sprintf("customizations.repositories[%d]", i)
		src := manifest.AptSource{
			Name: r.ID, URIs: r.BaseURLs, Suites: []string{r.Suite}, Components: r.Components,
			Title: r.Name, Disabled: !r.IsEnabled(), Priority: r.Priority,
		}
		if f := r.SourcesFile(); f != r.ID {
			src.Filename = f
		}
		if !r.ChecksSignatures() {
			src.Trusted = true
			srcs = append(srcs, src)
			if r.InstallFrom {
				errs = append(errs, blueprint.Problem{Path: p + ".install_from", Message: "kiln installs only from signed repositories: give the repository's key in gpgkeys and turn gpgcheck on, or drop install_from"})
			}
			continue
		}
		var armored []string
		for j, k := range r.GPGKeys {
			if !keyfetch.IsURL(k) {
				armored = append(armored, k)
				continue
			}
			key, ok := keys[k]
			if keys == nil {
				warnings = append(warnings, fmt.Sprintf("%s.gpgkeys[%d]: the key was not fetched, as this plan is only a check; building fetches and pins it", p, j))
				continue
			}
			if !ok {
				errs = append(errs, blueprint.Problem{Path: fmt.Sprintf("%s.gpgkeys[%d]", p, j), Message: "the key at this URL was not fetched, so it cannot be pinned into the manifest; check that the URL is reachable over https"})
				continue
			}
			armored = append(armored, key.Armored)
			pins = append(pins, manifest.KeyPin{Repository: r.ID, URL: key.URL, SHA256: key.SHA256})
		}
		switch len(armored) {
		case 0:
		case 1:
			src.SignedBy = armored[0]
		default:
			// apt takes one inline key block: the keys become one keyring.
			merged, err := keyfetch.Merge(armored)
			if err != nil {
				errs = append(errs, blueprint.Problem{Path: p + ".gpgkeys", Message: fmt.Sprintf("the keys cannot be joined into the repository's keyring: %v", err)})
				continue
			}
			src.SignedBy = merged
		}
		srcs = append(srcs, src)
		if r.InstallFrom && r.IsEnabled() {
			solve = append(solve, depsolve.Repository{ID: r.ID, URI: r.BaseURLs[0], Suites: []string{r.Suite}, Components: r.Components, SignedByKeys: armored, Priority: r.Priority})
		}
	}
	return srcs, solve, pins, warnings, errs
}

// pinWarnings warns about a blueprint repository whose priority also pins
// the distribution's packages: apt pins by host, and it shares a host
// with a configured mirror.
func pinWarnings(c *blueprint.Customizations, mirrors map[string]string) []string {
	rolesByHost := map[string][]string{}
	for role, uri := range mirrors {
		if u, err := url.Parse(uri); err == nil {
			rolesByHost[u.Hostname()] = append(rolesByHost[u.Hostname()], role)
		}
	}
	var out []string
	for i, r := range c.Repositories {
		if r.Priority == nil {
			continue
		}
		var roles []string
		for _, raw := range r.BaseURLs {
			if u, err := url.Parse(raw); err == nil {
				roles = append(roles, rolesByHost[u.Hostname()]...)
			}
		}
		if len(roles) > 0 {
			slices.Sort(roles)
			roles = slices.Compact(roles)
			out = append(out, fmt.Sprintf("customizations.repositories[%d].priority: the repository shares its host with the %s mirror, and apt pins by host, so priority %d applies to those packages too", i, strings.Join(roles, " and "), *r.Priority))
		}
	}
	return out
}
