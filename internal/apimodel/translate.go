package apimodel

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/kiln-project/kiln/blueprint"
)

// BlueprintFromCustomizations builds and validates the blueprint named name
// that a request's customizations describe. Its problems come back as the
// blueprint parser gives them, with blueprint field paths: RequestPath
// turns each into the request's. A field the table does not know is passed
// on under its own name, for the blueprint parser to refuse.
func BlueprintFromCustomizations(name string, cust map[string]any) (*blueprint.Blueprint, error) {
	bp, problems := BlueprintFromCustomizationsAll(name, cust)
	if len(problems) > 0 {
		return nil, problems
	}
	return bp, nil
}

// BlueprintFromCustomizationsAll is BlueprintFromCustomizations that also
// gives back the blueprint as far as it decoded beside its problems (see
// blueprint.ParseAll), so the image type's checks can still look at the
// fields that are fine. Such a blueprint is for checking only.
func BlueprintFromCustomizationsAll(name string, cust map[string]any) (*blueprint.Blueprint, blueprint.Errors) {
	bp := map[string]any{"name": name}
	if cust != nil {
		c := map[string]any{}
		bp["customizations"] = c
		for k, v := range cust {
			f := byAPI(Customizations, k)
			if f == nil {
				c[k] = v
				continue
			}
			if f.Blueprint == "" {
				// Only the API has it: DebianRepositories folds it.
				continue
			}
			put(bp, f.Blueprint, toBlueprint(f, v))
		}
	}
	data, err := json.Marshal(bp)
	if err != nil {
		return nil, blueprint.Errors{{Message: err.Error()}}
	}
	return blueprint.ParseAll(data, blueprint.FormatJSON)
}

// put sets the value at a dotted path of tree, making the tables above it.
func put(tree map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := tree[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			tree[p] = next
		}
		tree = next
	}
	tree[parts[len(parts)-1]] = v
}

// toBlueprint converts an API value of field f to the blueprint's shape.
func toBlueprint(f *Field, v any) any {
	switch f.Kind {
	case NameList:
		var pkgs []any
		list, _ := v.([]any)
		for _, p := range list {
			pkgs = append(pkgs, map[string]any{"name": p})
		}
		return pkgs
	case ObjectList:
		items, ok := v.([]any)
		if !ok {
			return v
		}
		var out []any
		for _, it := range items {
			out = append(out, objectToBlueprint(f.Items, it))
		}
		return out
	case Object:
		return objectToBlueprint(f.Items, v)
	}
	return v
}

// objectToBlueprint converts an API object whose fields are items.
func objectToBlueprint(items []Field, v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, fv := range m {
		it := byAPI(items, k)
		switch {
		case it == nil:
			out[k] = fv
		case it.Blueprint != "":
			out[it.Blueprint] = toBlueprint(it, fv)
		}
	}
	return out
}

// UnsupportedError names the fields of a blueprint that the API cannot
// carry, by their paths in the blueprint.
type UnsupportedError struct {
	Fields []string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the service's API cannot carry %s yet: build this blueprint with `kiln build`, or leave them out", strings.Join(e.Fields, ", "))
}

// CustomizationsFromBlueprint turns a blueprint into a request's
// customizations (the reverse of BlueprintFromCustomizations). Fields the
// API does not carry are an *UnsupportedError that names them.
func CustomizationsFromBlueprint(bp *blueprint.Blueprint) (map[string]any, error) {
	raw, err := json.Marshal(bp)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	cust, _ := tree["customizations"].(map[string]any)
	delete(tree, "customizations")
	for _, k := range CarriedApart {
		delete(tree, k)
	}
	fold(cust)
	var problems []string
	out := map[string]any{}
	carry := func(path string, v any) {
		f := byBlueprint(Customizations, path)
		if f == nil {
			problems = append(problems, path)
			return
		}
		out[f.API] = fromBlueprint(f, path, v, &problems)
	}
	for k, v := range tree {
		carry(k, v)
	}
	for k, v := range cust {
		carry("customizations."+k, v)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &UnsupportedError{Fields: problems}
	}
	return out, nil
}

// fold moves the entries of each folded list of a blueprint's
// customizations into the list they join.
func fold(cust map[string]any) {
	for _, fd := range Folds {
		from, _ := strings.CutPrefix(fd.Blueprint, "customizations.")
		into, _ := strings.CutPrefix(fd.Into, "customizations.")
		entries, ok := cust[from].([]any)
		if !ok {
			continue
		}
		joined, _ := cust[into].([]any)
		for _, e := range entries {
			em, _ := e.(map[string]any)
			n := map[string]any{}
			for k, v := range em {
				if to, ok := fd.Items[k]; ok {
					n[to] = v
				}
			}
			joined = append(joined, n)
		}
		cust[into] = joined
		delete(cust, from)
	}
}

// fromBlueprint converts a blueprint value at path, of field f, to the
// API's shape; the fields the API cannot carry are added to problems.
func fromBlueprint(f *Field, path string, v any, problems *[]string) any {
	switch f.Kind {
	case NameList:
		pkgs, _ := v.([]any)
		var names []any
		for i, p := range pkgs {
			m, _ := p.(map[string]any)
			if ver, _ := m["version"].(string); ver != "" && ver != "*" {
				*problems = append(*problems, fmt.Sprintf("%s[%d].version", path, i))
			}
			names = append(names, m["name"])
		}
		return names
	case ObjectList:
		items, ok := v.([]any)
		if !ok {
			return v
		}
		var out []any
		for i, it := range items {
			out = append(out, objectFromBlueprint(f.Items, fmt.Sprintf("%s[%d]", path, i), it, problems))
		}
		return out
	case Object:
		return objectFromBlueprint(f.Items, path, v, problems)
	}
	return v
}

// objectFromBlueprint converts a blueprint table whose fields are items.
func objectFromBlueprint(items []Field, path string, v any, problems *[]string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, fv := range m {
		it := byBlueprint(items, k)
		if it == nil {
			*problems = append(*problems, path+"."+k)
			continue
		}
		out[it.API] = fromBlueprint(it, path+"."+k, fv, problems)
	}
	return out
}
