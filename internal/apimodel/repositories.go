package apimodel

import (
	"fmt"
	"strings"
)

// DefaultComponents are the components of a custom repository that names
// no suite or components, as image-builder's repositories (which have no
// such fields) do: the main component of the distribution's own suite.
var DefaultComponents = []any{"main"}

// Problem is something wrong with one field of a request: its path in the
// request and what is wrong.
type Problem struct {
	Field, Message string
}

// DebianRepositories maps image-builder's repository fields onto what an
// apt source needs, on a copy of cust that BlueprintFromCustomizations
// then translates; cust itself is not changed, so the stored request
// keeps what the client sent.
//
//   - A custom repository without a suite reads suite (the
//     distribution's codename, e.g. bookworm), and one without components
//     reads DefaultComponents: a baseurl is then an archive root, as a
//     Debian mirror's is.
//   - Image-builder sends the repositories to install from while building
//     as payload_repositories, beside the same repositories in
//     custom_repositories. Each payload repository makes its namesake
//     (the custom repository with the same id or baseurl) install_from;
//     one with no namesake is a problem, since a Debian image keeps the
//     sources its packages came from.
func DebianRepositories(cust map[string]any, suite string) (map[string]any, []Problem) {
	custom, _ := cust["custom_repositories"].([]any)
	payload, _ := cust["payload_repositories"].([]any)
	if custom == nil && payload == nil {
		return cust, nil
	}
	out := make(map[string]any, len(cust))
	for k, v := range cust {
		out[k] = v
	}
	delete(out, "payload_repositories")
	var repos []any
	for _, r := range custom {
		m, ok := r.(map[string]any)
		if !ok {
			repos = append(repos, r)
			continue
		}
		c := make(map[string]any, len(m)+2)
		for k, v := range m {
			c[k] = v
		}
		if _, ok := c["suite"]; !ok && suite != "" {
			c["suite"] = suite
			if _, ok := c["components"]; !ok {
				c["components"] = DefaultComponents
			}
		}
		repos = append(repos, c)
	}
	var problems []Problem
	for i, r := range payload {
		p, ok := r.(map[string]any)
		if !ok {
			continue
		}
		where := fmt.Sprintf("customizations.payload_repositories[%d]", i)
		if rhsm, _ := p["rhsm"].(bool); rhsm {
			problems = append(problems, Problem{Field: where + ".rhsm", Message: "subscription-managed content does not exist for Debian; set rhsm to false"})
			continue
		}
		c := namesake(repos, p)
		if c == nil {
			problems = append(problems, Problem{Field: where, Message: "a repository used only while building cannot be left out of a Debian image: add it to custom_repositories too (same id or baseurl), where it is installed from and kept in the image's apt sources"})
			continue
		}
		c["install_from"] = true
	}
	if custom != nil {
		out["custom_repositories"] = repos
	}
	return out, problems
}

// namesake is the custom repository of repos with payload repository p's
// id or baseurl, or nil.
func namesake(repos []any, p map[string]any) map[string]any {
	id, _ := p["id"].(string)
	url, _ := p["baseurl"].(string)
	for _, r := range repos {
		c, ok := r.(map[string]any)
		if !ok {
			continue
		}
		if id != "" && c["id"] == id {
			return c
		}
		urls, _ := c["baseurl"].([]any)
		for _, u := range urls {
			if s, ok := u.(string); ok && url != "" && strings.TrimSuffix(s, "/") == strings.TrimSuffix(url, "/") {
				return c
			}
		}
	}
	return nil
}
