package target

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// DecodeOptions reads a request's options into v, a pointer to a struct
// with json tags, refusing fields it does not have and values of the
// wrong type, each as "options.field: message". Empty or null options
// leave v as it is. A nil v takes no options at all.
func DecodeOptions(options json.RawMessage, v any) error {
	if len(bytes.TrimSpace(options)) == 0 || string(bytes.TrimSpace(options)) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(options, &m); err != nil {
		return fmt.Errorf("options: must be a JSON object")
	}
	known := optionNames(v)
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		if len(known) == 0 {
			return fmt.Errorf("options.%s: this upload type takes no options", unknown[0])
		}
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("options.%s: unknown option (this upload type takes %s)", unknown[0], strings.Join(names, ", "))
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(options, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("options.%s: must be a JSON %s, not %s", te.Field, kindName(te.Type), te.Value)
		}
		return fmt.Errorf("options: %v", err)
	}
	return nil
}

// optionNames are the json names of the fields of the struct v points to.
func optionNames(v any) map[string]bool {
	names := map[string]bool{}
	if v == nil {
		return names
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return names
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	return names
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	default:
		return "number"
	}
}
