package blueprint

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
)

// decoder applies the blueprint schema (the Go structs and their json tag
// names) to a generic tree, collecting a problem for every field that does
// not fit instead of stopping at the first.
type decoder struct {
	format Format
	ps     *problems
}

// decodeBlueprint fills bp from tree.
func decodeBlueprint(tree map[string]any, format Format, bp *Blueprint, ps *problems) {
	d := decoder{format: format, ps: ps}
	d.decodeStruct("", tree, reflect.ValueOf(bp).Elem())
	bp.normalize()
}

// fieldName is the blueprint key of a struct field: its json tag name.
func fieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func (d decoder) decodeValue(path string, raw any, v reflect.Value) {
	if raw == nil {
		// JSON null: the same as leaving the field out.
		return
	}
	switch v.Type() {
	case reflect.TypeFor[Size]():
		d.decodeSize(path, raw, v)
		return
	case reflect.TypeFor[Owner]():
		d.decodeOwner(path, raw, v)
		return
	case reflect.TypeFor[RootLogin]():
		d.decodeRootLogin(path, raw, v)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if d.decodeValueOK(path, raw, elem.Elem()) || elem.Elem().Kind() == reflect.Struct {
			// A table with a bad field is kept, so that its other
			// fields are still validated.
			v.Set(elem)
		}
	case reflect.String:
		if s, ok := d.str(path, raw); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.wrongType(path, "a boolean (true or false)", raw)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if n, ok := d.integer(path, raw); ok {
			if v.OverflowInt(n) {
				d.ps.add(path, "%d is out of range", n)
				return
			}
			v.SetInt(n)
		}
	case reflect.Slice:
		list, ok := asList(raw)
		if !ok {
			d.wrongType(path, "an array", raw)
			return
		}
		if len(list) == 0 {
			return // an empty list is the same as none
		}
		s := reflect.MakeSlice(v.Type(), len(list), len(list))
		for i, item := range list {
			d.decodeValue(indexPath(path, i), item, s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		table, ok := raw.(map[string]any)
		if !ok {
			d.wrongType(path, d.tableWord(), raw)
			return
		}
		d.decodeStruct(path, table, v)
	default:
		// The schema holds only the kinds above; a new field kind must be
		// taught to the decoder before it can be used.
		d.ps.add(path, "internal error: field kind %s cannot be decoded", v.Kind())
	}
}

// decodeValueOK decodes into v and reports whether it added no problem.
func (d decoder) decodeValueOK(path string, raw any, v reflect.Value) bool {
	before := len(d.ps.list)
	d.decodeValue(path, raw, v)
	return len(d.ps.list) == before
}

func (d decoder) decodeStruct(path string, table map[string]any, v reflect.Value) {
	t := v.Type()
	known := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name := fieldName(t.Field(i))
		known = append(known, name)
		if raw, ok := table[name]; ok {
			d.decodeValue(fieldPath(path, name), raw, v.Field(i))
		}
	}
	var unknown []string
	for key := range table {
		if !slices.Contains(known, key) {
			unknown = append(unknown, key)
		}
	}
	slices.Sort(unknown)
	for _, key := range unknown {
		d.unknownField(path, key, known)
	}
}

func (d decoder) unknownField(parent, key string, known []string) {
	path := fieldPath(parent, key)
	if why, ok := unsupportedField(schemaPath(path)); ok {
		d.ps.add(path, "%s", why)
		return
	}
	msg := "unknown field"
	if s := suggest(key, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		msg += fmt.Sprintf("; known fields here are %s", strings.Join(known, ", "))
	}
	d.ps.add(path, "%s", msg)
}

// suggest returns the known name closest to key when it is close enough to
// be a likely typo, or "".
func suggest(key string, known []string) string {
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		dist := levenshtein.ComputeDistance(strings.ToLower(key), k)
		if isTransposition(strings.ToLower(key), k) {
			dist = 1 // "nmae" for "name" is one slip of the fingers, not two
		}
		if dist < bestDist {
			best, bestDist = k, dist
		}
	}
	limit := 2
	if len(key) <= 4 {
		limit = 1
	}
	if bestDist <= limit {
		return best
	}
	return ""
}

// isTransposition reports whether a and b differ only by two neighbouring
// characters swapped.
func isTransposition(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
}

// schemaPath removes list indices: "customizations.user[2].foo" becomes
// "customizations.user.foo".
func schemaPath(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (d decoder) str(path string, raw any) (string, bool) {
	s, ok := raw.(string)
	if !ok {
		d.wrongType(path, "a string", raw)
		return "", false
	}
	if strings.IndexByte(s, 0) >= 0 {
		d.ps.add(path, "contains a NUL byte; remove it")
		return "", false
	}
	return s, true
}

func (d decoder) integer(path string, raw any) (int64, bool) {
	switch n := raw.(type) {
	case int64:
		return n, true
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err == nil {
			return i, true
		}
		// The value is not repeated: a mistyped field may hold a secret.
		if strings.ContainsAny(string(n), ".eE") {
			d.ps.add(path, "expected an integer, got a number with a fraction or an exponent")
		} else {
			d.ps.add(path, "the number is out of range")
		}
		return 0, false
	case float64:
		d.ps.add(path, "expected an integer, got a floating-point number")
		return 0, false
	default:
		d.wrongType(path, "an integer", raw)
		return 0, false
	}
}

func (d decoder) decodeSize(path string, raw any, v reflect.Value) {
	switch raw.(type) {
	case string:
		s, ok := d.str(path, raw)
		if !ok {
			return
		}
		size, err := ParseSize(s)
		if err != nil {
			d.ps.add(path, "%v", err)
			return
		}
		if size == 0 {
			d.ps.add(path, "%s is zero; leave the field out for the default size", quote(s))
			return
		}
		v.SetUint(uint64(size))
	case int64, json.Number, float64:
		n, ok := d.integer(path, raw)
		if !ok {
			return
		}
		if n <= 0 {
			d.ps.add(path, "%d is not a size; give a positive number of bytes, or leave the field out for the default size", n)
			return
		}
		v.SetUint(uint64(n))
	default:
		d.wrongType(path, `a size: an integer of bytes or a string such as "20 GiB"`, raw)
	}
}

func (d decoder) decodeOwner(path string, raw any, v reflect.Value) {
	switch raw.(type) {
	case string:
		if s, ok := d.str(path, raw); ok {
			v.Set(reflect.ValueOf(Owner{Name: s}))
		}
	case int64, json.Number, float64:
		n, ok := d.integer(path, raw)
		if !ok {
			return
		}
		if n < 0 {
			d.ps.add(path, "a user or group id cannot be negative (got %d)", n)
			return
		}
		v.Set(reflect.ValueOf(Owner{ID: &n}))
	default:
		d.wrongType(path, "a user or group: a name or a numeric id", raw)
	}
}

func (d decoder) wrongType(path, want string, raw any) {
	d.ps.add(path, "expected %s, got %s", want, describe(raw, d.format))
}

func (d decoder) tableWord() string {
	if d.format == FormatJSON {
		return "an object"
	}
	return "a table"
}

// describe names the type of a decoded value for error messages, without
// repeating the value (it may be a secret).
func describe(raw any, format Format) string {
	switch raw.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a floating-point number"
	case json.Number:
		return "a number"
	case time.Time:
		return "a date-time"
	case map[string]any:
		if format == FormatJSON {
			return "an object"
		}
		return "a table"
	case []any, []map[string]any:
		return "an array"
	default:
		return fmt.Sprintf("a %T", raw)
	}
}

// asList accepts both array forms of a decoded TOML document (inline arrays
// and arrays of tables) and JSON arrays.
func asList(raw any) ([]any, bool) {
	switch l := raw.(type) {
	case []any:
		return l, true
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	default:
		return nil, false
	}
}
