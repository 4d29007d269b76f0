package blueprint

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
)

// ParseOptions tune ParseWithOptions. The zero value is the default.
type ParseOptions struct {
	// Rand is the source of the salts used to hash plaintext passwords.
	// Nil means crypto/rand. Tests give a fixed reader for stable output.
	Rand io.Reader
}

// Parse reads a blueprint in the given format, validates it and hashes any
// plaintext password. On failure the error is an Errors listing every
// problem found, each with its field path.
func Parse(data []byte, format Format) (*Blueprint, error) {
	return ParseWithOptions(data, format, ParseOptions{})
}

// ParseWithOptions is Parse with options.
func ParseWithOptions(data []byte, format Format, opts ParseOptions) (*Blueprint, error) {
	tree, err := readTree(data, format)
	if err != nil {
		return nil, err
	}
	return fromTree(tree, format, opts)
}

// ParseFile reads the blueprint at path; the extension (.toml or .json)
// gives the format. Errors name the file.
func ParseFile(path string) (*Blueprint, error) {
	format, err := FormatFromPath(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading blueprint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBlueprintSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading blueprint %s: %w", path, err)
	}
	bp, err := Parse(data, format)
	if err != nil {
		return nil, fmt.Errorf("blueprint %s:\n%w", path, err)
	}
	return bp, nil
}

// fromTree applies the schema to a decoded document, validates the result
// and hashes plaintext passwords.
func fromTree(tree map[string]any, format Format, opts ParseOptions) (*Blueprint, error) {
	bp, problems := decodeAndCheck(tree, format)
	if len(problems) > 0 {
		return nil, problems
	}
	if err := fromTreeHash(bp, opts); err != nil {
		return nil, err
	}
	return bp, nil
}

// fromTreeHash hashes the plaintext passwords of a blueprint that has no
// problems.
func fromTreeHash(bp *Blueprint, opts ParseOptions) error {
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	return bp.HashPasswords(r)
}

// coveredBy reports whether path is, or is inside, the path of one of ps.
func coveredBy(path string, ps Errors) bool {
	for _, p := range ps {
		if path == p.Path || strings.HasPrefix(path, p.Path+".") || strings.HasPrefix(path, p.Path+"[") {
			return true
		}
	}
	return false
}

// UnmarshalJSON parses a JSON blueprint strictly, as Parse does, so that a
// Blueprint inside a larger JSON document is validated too.
func (b *Blueprint) UnmarshalJSON(data []byte) error {
	bp, err := Parse(data, FormatJSON)
	if err != nil {
		return err
	}
	*b = *bp
	return nil
}

// UnmarshalTOML parses a blueprint decoded by github.com/BurntSushi/toml
// strictly, as Parse does, so that a Blueprint inside a larger TOML document
// is validated too.
func (b *Blueprint) UnmarshalTOML(v any) error {
	tree, ok := v.(map[string]any)
	if !ok {
		return Errors{{Message: fmt.Sprintf("a blueprint must be a table, got %s", describe(v, FormatTOML))}}
	}
	bp, err := fromTree(tree, FormatTOML, ParseOptions{})
	if err != nil {
		return err
	}
	*b = *bp
	return nil
}
