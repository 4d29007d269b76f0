package blueprint

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// sortProblems orders problems as the fields appear in the schema (name,
// packages, …, customizations.hostname, customizations.user[0].name, …),
// list entries by index, unknown fields after the known ones of their
// table, and problems with the document as a whole first. Decoding and
// validation find problems in different orders; users read them in one.
func sortProblems(ps Errors) {
	keys := make(map[string][]int, len(ps))
	for _, p := range ps {
		if _, ok := keys[p.Path]; !ok {
			keys[p.Path] = schemaOrder(p.Path)
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return slices.Compare(keys[a.Path], keys[b.Path])
	})
}

// schemaOrder maps a field path to a sortable key: for each step, the
// field's position in its struct or the list index.
func schemaOrder(path string) []int {
	if path == "" {
		return nil
	}
	var key []int
	t := reflect.TypeFor[Blueprint]()
	for part := range strings.SplitSeq(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if t == nil || t.Kind() != reflect.Struct {
			key = append(key, 1<<30)
			t = nil
		} else {
			i := slices.IndexFunc(reflect.VisibleFields(t), func(f reflect.StructField) bool { return fieldName(f) == name })
			if i < 0 {
				key = append(key, 1<<30)
				t = nil
			} else {
				key = append(key, i)
				t = t.Field(i).Type
				for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
					t = t.Elem()
				}
			}
		}
		// List indices: "[3]" or "[3][0]".
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			n, err := strconv.Atoi(idx)
			if err != nil {
				n = 1 << 30
			}
			key = append(key, n)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return key
}
