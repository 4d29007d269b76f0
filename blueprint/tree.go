package blueprint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/BurntSushi/toml"
)

// readTree decodes a document into a generic tree of map[string]any, []any
// and scalars, without looking at the blueprint schema. The schema is applied
// afterwards by decodeBlueprint, which can then report every problem at once.
func readTree(data []byte, format Format) (map[string]any, error) {
	if len(data) > MaxBlueprintSize {
		return nil, Errors{{Message: fmt.Sprintf("the document is %d bytes, more than the limit of %d bytes (4 MiB); move large file contents out of the blueprint", len(data), MaxBlueprintSize)}}
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, Errors{{Message: "the document contains a NUL byte; a blueprint is text"}}
	}
	if err := checkNesting(data, format); err != nil {
		return nil, err
	}
	switch format {
	case FormatTOML:
		return readTOML(data)
	case FormatJSON:
		return readJSON(data)
	default:
		return nil, fmt.Errorf("unknown blueprint format %v; use FormatTOML or FormatJSON", format)
	}
}

func readTOML(data []byte) (tree map[string]any, err error) {
	// The decoder reports syntax errors by panicking internally and
	// recovering; guard against any panic that escapes it all the same.
	defer func() {
		if r := recover(); r != nil {
			tree, err = nil, Errors{{Message: fmt.Sprintf("not valid TOML: %v", r)}}
		}
	}()
	tree = map[string]any{}
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{Message: fmt.Sprintf("not valid TOML: line %d, column %d: %s", pe.Position.Line, pe.Position.Col, redactQuoted(pe.Message))}}
		}
		return nil, Errors{{Message: fmt.Sprintf("not valid TOML: %v", err)}}
	}
	return tree, nil
}

// quotedValueRe matches a quoted piece of the input inside a decoder's
// message.
var quotedValueRe = regexp.MustCompile(`"[^"]{2,}"`)

// redactQuoted drops the pieces of input a TOML syntax error quotes: a
// mistyped line may be a password.
func redactQuoted(msg string) string {
	return quotedValueRe.ReplaceAllString(msg, "a value")
}

// readJSON reads a JSON object token by token, so that a key given twice is
// reported rather than silently overwritten, and numbers stay exact.
func readJSON(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSONValue(dec, "")
	if err != nil {
		return nil, jsonSyntaxProblem(data, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errors{{Message: fmt.Sprintf("not valid JSON: %s: unexpected data after the blueprint object", jsonPosition(data, dec.InputOffset()))}}
	}
	tree, ok := v.(map[string]any)
	if !ok {
		return nil, Errors{{Message: fmt.Sprintf("a JSON blueprint must be an object, got %s", describe(v, FormatJSON))}}
	}
	return tree, nil
}

// duplicateKeyError is a key given twice in one JSON object.
type duplicateKeyError struct{ path string }

func (e *duplicateKeyError) Error() string { return "duplicate key" }

func readJSONValue(dec *json.Decoder, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				if _, dup := obj[key]; dup {
					return nil, &duplicateKeyError{path: fieldPath(path, key)}
				}
				v, err := readJSONValue(dec, fieldPath(path, key))
				if err != nil {
					return nil, err
				}
				obj[key] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := readJSONValue(dec, indexPath(path, len(arr)))
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		default:
			return nil, fmt.Errorf("unexpected %q", rune(t))
		}
	default:
		return tok, nil
	}
}

func jsonSyntaxProblem(data []byte, dec *json.Decoder, err error) error {
	var dup *duplicateKeyError
	if errors.As(err, &dup) {
		return Errors{{Path: dup.path, Message: "given twice; keep one"}}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Errors{{Message: fmt.Sprintf("not valid JSON: %s: %s", jsonPosition(data, se.Offset), se.Error())}}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Errors{{Message: "not valid JSON: the document ends early; check for a missing closing brace or bracket"}}
	}
	return Errors{{Message: fmt.Sprintf("not valid JSON: %s: %v", jsonPosition(data, dec.InputOffset()), err)}}
}

// jsonPosition turns a byte offset into "line L, column C".
func jsonPosition(data []byte, offset int64) string {
	if offset < 0 {
		offset = 0
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// checkNesting rejects documents whose tables and arrays nest deeper than
// MaxNestingDepth before a decoder sees them: decoders recurse, and a few
// megabytes of "[[[[" must not exhaust the stack or the memory.
//
// In TOML a dotted key ("a.b.c = 1", "[a.b.c]") nests tables too, so the
// dots of one key count as levels: dots are counted from the last
// structural character, which a value's dots (1.5) never exceed.
func checkNesting(data []byte, format Format) error {
	tooDeep := Errors{{Message: fmt.Sprintf("tables and arrays nest more than %d levels deep; a blueprint needs far fewer", MaxNestingDepth)}}
	depth, dots := 0, 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"' || (c == '\'' && format == FormatTOML):
			i = skipString(data, i, format)
		case c == '#' && format == FormatTOML:
			for i < len(data) && data[i] != '\n' {
				i++
			}
			dots = 0
		case c == '[' || c == '{':
			depth++
			dots = 0
			if depth > MaxNestingDepth {
				return tooDeep
			}
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
			dots = 0
		case c == '.' && format == FormatTOML:
			dots++
			if depth+dots > MaxNestingDepth {
				return tooDeep
			}
		case c == '=' || c == ',' || c == '\n':
			dots = 0
		}
	}
	return nil
}

// skipString returns the index of the last byte of the string starting at
// data[start]: a JSON or TOML basic string, a TOML literal string, or a
// TOML multi-line string. An unterminated string runs to the end.
func skipString(data []byte, start int, format Format) int {
	quote := data[start]
	if format == FormatTOML && bytes.HasPrefix(data[start:], []byte{quote, quote, quote}) {
		end := bytes.Index(data[start+3:], []byte{quote, quote, quote})
		if quote == '"' {
			// Skip escaped quotes inside a multi-line basic string.
			for i := start + 3; i < len(data); i++ {
				if data[i] == '\\' {
					i++
					continue
				}
				if bytes.HasPrefix(data[i:], []byte(`"""`)) {
					return i + 2
				}
			}
			return len(data)
		}
		if end < 0 {
			return len(data)
		}
		return start + 3 + end + 2
	}
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			if quote == '"' {
				i++
			}
		case quote:
			return i
		case '\n':
			if format == FormatTOML {
				return i // single-line strings end at the line; the decoder reports it
			}
		}
	}
	return len(data)
}
