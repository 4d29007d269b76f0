package api

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
)

// The API's customizations use the image-builder service's JSON names; the
// blueprint package (one validator for the CLI and the API) uses osbuild's
// blueprint names. These tables translate between them.

// apiToBlueprint renames keys of customizations (key "") and of the items
// of its lists.
var apiToBlueprint = map[string]map[string]string{
	"":                    {"users": "user", "groups": "group", "custom_repositories": "repositories"},
	"users":               {"ssh_key": "key"},
	"filesystem":          {"min_size": "minsize"},
	"custom_repositories": {"baseurl": "baseurls", "gpgkey": "gpgkeys", "check_gpg": "gpgcheck"},
}

// dropped are API fields with no blueprint counterpart: hasPassword is
// output only; files always get their parent directories.
var dropped = map[string][]string{"users": {"hasPassword"}, "files": {"ensure_parents"}}

// blueprintFromRequest builds the blueprint a compose request describes and
// validates it; problems come back with the request's field paths.
func blueprintFromRequest(name string, cust map[string]any) (*blueprint.Blueprint, error) {
	bp := map[string]any{"name": name}
	if cust != nil {
		c := map[string]any{}
		for k, v := range cust {
			if k == "packages" {
				var pkgs []any
				list, _ := v.([]any)
				for _, p := range list {
					pkgs = append(pkgs, map[string]any{"name": p})
				}
				bp["packages"] = pkgs
				continue
			}
			if items, ok := v.([]any); ok {
				var out []any
				for _, it := range items {
					m, ok := it.(map[string]any)
					if !ok {
						out = append(out, it)
						continue
					}
					n := map[string]any{}
					for ik, iv := range m {
						if contains(dropped[k], ik) {
							continue
						}
						if r, ok := apiToBlueprint[k][ik]; ok {
							ik = r
						}
						n[ik] = iv
					}
					out = append(out, n)
				}
				v = out
			}
			if r, ok := apiToBlueprint[""][k]; ok {
				k = r
			}
			c[k] = v
		}
		bp["customizations"] = c
	}
	data, err := json.Marshal(bp)
	if err != nil {
		return nil, err
	}
	parsed, err := blueprint.Parse(data, blueprint.FormatJSON)
	if err != nil {
		return nil, requestProblems(err)
	}
	return parsed, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	pathPackage = regexp.MustCompile(`^packages\[(\d+)\](\.name)?`)
	pathList    = regexp.MustCompile(`^customizations\.(user|group|repositories|filesystem)\[(\d+)\]\.?([a-z_]*)`)
)

// requestPath turns a blueprint field path into the request's.
func requestPath(p string) string {
	if m := pathPackage.FindStringSubmatch(p); m != nil {
		return "customizations.packages[" + m[1] + "]" + p[len(m[0]):]
	}
	m := pathList.FindStringSubmatch(p)
	if m == nil {
		return p
	}
	list := m[1]
	apiList := list
	for a, b := range apiToBlueprint[""] {
		if b == list {
			apiList = a
		}
	}
	field := m[3]
	for a, b := range apiToBlueprint[apiList] {
		if b == field {
			field = a
		}
	}
	out := "customizations." + apiList + "[" + m[2] + "]"
	if field != "" {
		out += "." + field
	}
	return out + p[len(m[0]):]
}

// requestProblems re-labels a blueprint's problems with request paths;
// each names its field.
func requestProblems(err error) error {
	var errs blueprint.Errors
	if !errors.As(err, &errs) {
		return newError(400, err.Error())
	}
	var ps []problem
	for _, p := range errs {
		path := requestPath(p.Path)
		if path == "name" {
			path = "image_name"
		}
		ps = append(ps, problem{Field: path, Message: p.Message})
	}
	return problemsError(400, ps)
}

// redactPasswords replaces each user's password by hasPassword: the stored
// and returned request never holds one.
func redactPasswords(cust map[string]any) {
	users, _ := cust["users"].([]any)
	for _, u := range users {
		if m, ok := u.(map[string]any); ok {
			if _, ok := m["password"]; ok {
				delete(m, "password")
				m["hasPassword"] = true
			}
		}
	}
}

// blueprintName makes a valid blueprint name from an image name.
func blueprintName(imageName string) string {
	var b strings.Builder
	for _, r := range imageName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "image"
	}
	return b.String()
}
