package blueprint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// ToTOML writes the blueprint as a TOML document that Parse reads back to
// an equal Blueprint. Passwords are written as their hashes.
func (b *Blueprint) ToTOML() ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("exporting a blueprint: no blueprint given")
	}
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(exportStruct(reflect.ValueOf(b).Elem())); err != nil {
		return nil, fmt.Errorf("exporting blueprint %q as TOML: %w", b.Name, err)
	}
	return buf.Bytes(), nil
}

// ToJSON writes the blueprint as an indented JSON document that Parse reads
// back to an equal Blueprint.
func (b *Blueprint) ToJSON() ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("exporting a blueprint: no blueprint given")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(exportStruct(reflect.ValueOf(b).Elem())); err != nil {
		return nil, fmt.Errorf("exporting blueprint %q as JSON: %w", b.Name, err)
	}
	return buf.Bytes(), nil
}

// MarshalJSON writes the blueprint in the blueprint JSON format: unset
// fields are left out, sizes are numbers of bytes, owners are names or ids.
func (b Blueprint) MarshalJSON() ([]byte, error) {
	return json.Marshal(exportStruct(reflect.ValueOf(b)))
}

// MarshalJSON writes an owner as its name, its numeric id, or null.
func (o Owner) MarshalJSON() ([]byte, error) {
	if v := exportOwner(o); v != nil {
		return json.Marshal(v)
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads an owner given as a name or a non-negative id.
func (o *Owner) UnmarshalJSON(data []byte) error {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("reading an owner: %w", err)
	}
	var ps problems
	var out Owner
	decoder{format: FormatJSON, ps: &ps}.decodeValue("owner", raw, reflect.ValueOf(&out).Elem())
	if err := ps.err(); err != nil {
		return err
	}
	*o = out
	return nil
}

// exportStruct turns a schema struct into a map keyed by field names,
// leaving out unset fields, so that encoders write only what was given.
func exportStruct(v reflect.Value) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		omitEmpty := strings.Contains(f.Tag.Get("json"), ",omitempty")
		if x := exportValue(v.Field(i), omitEmpty); x != nil {
			out[fieldName(f)] = x
		}
	}
	return out
}

// exportValue converts one field; nil means "leave it out".
func exportValue(v reflect.Value, omitEmpty bool) any {
	switch v.Type() {
	case reflect.TypeFor[Size]():
		s := v.Interface().(Size)
		switch {
		case s == 0:
			return nil
		case uint64(s) > math.MaxInt64:
			return fmt.Sprint(uint64(s))
		default:
			return int64(s)
		}
	case reflect.TypeFor[Owner]():
		return exportOwner(v.Interface().(Owner))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return exportValue(v.Elem(), false)
	case reflect.String:
		if omitEmpty && v.String() == "" {
			return nil
		}
		return v.String()
	case reflect.Bool:
		if omitEmpty && !v.Bool() {
			return nil
		}
		return v.Bool()
	case reflect.Int:
		if omitEmpty && v.Int() == 0 {
			return nil
		}
		return v.Int()
	case reflect.Slice:
		if v.Len() == 0 {
			if omitEmpty {
				return nil
			}
			return []any{}
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			tables := make([]map[string]any, v.Len())
			for i := range tables {
				tables[i] = exportStruct(v.Index(i))
			}
			return tables
		}
		items := make([]any, v.Len())
		for i := range items {
			items[i] = exportValue(v.Index(i), false)
		}
		return items
	case reflect.Struct:
		return exportStruct(v)
	}
	return nil
}

func exportOwner(o Owner) any {
	switch {
	case o.ID != nil:
		return *o.ID
	case o.Name != "":
		return o.Name
	}
	return nil
}
