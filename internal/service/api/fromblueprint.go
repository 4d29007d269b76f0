package api

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
)

// apiFields are the customizations (and their list items' fields) the API
// carries; anything else in a blueprint cannot be sent to the service.
var apiFields = map[string][]string{
	"":                    {"packages", "users", "groups", "filesystem", "services", "hostname", "kernel", "timezone", "locale", "firewall", "files", "directories", "custom_repositories"},
	"users":               {"name", "groups", "ssh_key", "password"},
	"groups":              {"name", "gid"},
	"filesystem":          {"mountpoint", "min_size"},
	"files":               {"path", "mode", "user", "group", "data"},
	"directories":         {"path", "mode", "user", "group", "ensure_parents"},
	"custom_repositories": {"id", "name", "baseurl", "gpgkey", "check_gpg", "enabled"},
}

// UnsupportedError names the fields of a blueprint that the API cannot
// carry, by their paths in the blueprint.
type UnsupportedError struct {
	Fields []string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the service's API cannot carry %s yet: build this blueprint with `kiln build`, or leave them out", strings.Join(e.Fields, ", "))
}

// CustomizationsFromBlueprint turns a blueprint into a compose request's
// customizations (the reverse of what the API does with a request). Fields
// the API does not carry are an *UnsupportedError that names them.
func CustomizationsFromBlueprint(bp *blueprint.Blueprint) (map[string]any, error) {
	raw, err := json.Marshal(bp)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	var problems []string
	out := map[string]any{}
	for _, k := range []string{"modules", "groups"} {
		if tree[k] != nil {
			problems = append(problems, k)
		}
	}
	if pkgs, ok := tree["packages"].([]any); ok {
		var names []any
		for i, p := range pkgs {
			m := p.(map[string]any)
			if v, _ := m["version"].(string); v != "" && v != "*" {
				problems = append(problems, fmt.Sprintf("packages[%d].version", i))
			}
			names = append(names, m["name"])
		}
		out["packages"] = names
	}
	cust, _ := tree["customizations"].(map[string]any)
	// sshkey entries become users entries with a key.
	if keys, ok := cust["sshkey"].([]any); ok {
		users, _ := cust["user"].([]any)
		for _, k := range keys {
			km := k.(map[string]any)
			users = append(users, map[string]any{"name": km["user"], "key": km["key"]})
		}
		cust["user"] = users
		delete(cust, "sshkey")
	}
	reverse := func(list, field string) string {
		for a, b := range apiToBlueprint[list] {
			if b == field {
				return a
			}
		}
		return field
	}
	for k, v := range cust {
		ak := reverse("", k)
		if !contains(apiFields[""], ak) {
			problems = append(problems, "customizations."+k)
			continue
		}
		if items, ok := v.([]any); ok && apiFields[ak] != nil {
			var conv []any
			for i, it := range items {
				m := it.(map[string]any)
				n := map[string]any{}
				for f, fv := range m {
					af := reverse(ak, f)
					if !contains(apiFields[ak], af) {
						problems = append(problems, fmt.Sprintf("customizations.%s[%d].%s", k, i, f))
						continue
					}
					n[af] = fv
				}
				conv = append(conv, n)
			}
			v = conv
		}
		out[ak] = v
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &UnsupportedError{Fields: problems}
	}
	return out, nil
}
