package blueprint

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
)

// ParseAll reads a blueprint as Parse does, but gives back what it could
// decode together with every problem, so that later checks (the
// distribution's, the image type's, the package solver's) can still look
// at the fields that are fine and report their problems in the same
// answer.
//
// The blueprint is nil only when the document itself could not be read
// (it is not TOML or JSON, or too large); then the problems say why. When
// there are problems, fields that had them are left unset or hold what
// was decoded of them, and plaintext passwords are not hashed: such a
// blueprint is for checking only, never for building. With no problems,
// the blueprint is the one Parse returns.
func ParseAll(data []byte, format Format) (*Blueprint, Errors) {
	tree, err := readTree(data, format)
	if err != nil {
		return nil, asErrors(err)
	}
	bp, problems := decodeAndCheck(tree, format)
	if len(problems) > 0 {
		return bp, problems
	}
	if err := fromTreeHash(bp, ParseOptions{}); err != nil {
		return bp, asErrors(err)
	}
	return bp, nil
}

// ParseFileAll is ParseAll for the file at path; the extension (.toml or
// .json) gives the format. A file that cannot be read is an error; the
// blueprint's own problems come back as Errors, as from ParseAll.
func ParseFileAll(path string) (*Blueprint, Errors, error) {
	format, err := FormatFromPath(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading blueprint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBlueprintSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading blueprint %s: %w", path, err)
	}
	bp, problems := ParseAll(data, format)
	return bp, problems, nil
}

// decodeAndCheck applies the schema to a decoded document and validates
// the result, returning the blueprint as far as it decoded and every
// problem, each field once: a value of the wrong type is left unset, so
// validation would also call it missing.
func decodeAndCheck(tree map[string]any, format Format) (*Blueprint, Errors) {
	var decoding problems
	var bp Blueprint
	decodeBlueprint(tree, format, &bp, &decoding)

	var validation problems
	bp.validate(&validation, true)

	var all problems
	for _, p := range decoding.all() {
		all.add(p.Path, "%s", p.Message)
	}
	for _, p := range validation.all() {
		if !coveredBy(p.Path, decoding.list) {
			all.add(p.Path, "%s", p.Message)
		}
	}
	if len(all.list) == 0 {
		return &bp, nil
	}
	return &bp, all.all()
}

// asErrors turns an error of the parser into Errors: an Errors as it is,
// anything else as one problem with the document as a whole.
func asErrors(err error) Errors {
	if errs, ok := err.(Errors); ok {
		return errs
	}
	return Errors{{Message: err.Error()}}
}

// Covers reports whether path is, or is inside, the field of one of the
// problems: a later check of that field would report the same mistake
// again, or look at a value only half decoded.
func (e Errors) Covers(path string) bool {
	return coveredBy(path, e)
}

// Merge returns the problems of e and of more together, sorted by field
// path (see SortProblems), each problem once. A problem of more whose
// field e already covers is left out, so a field gets one report, from
// the earliest check that found it.
func (e Errors) Merge(more Errors) Errors {
	out := slices.Clone(e)
	for _, p := range more {
		if p.Path != "" && coveredBy(p.Path, e) {
			continue
		}
		if slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	SortProblems(out)
	return out
}

// SortProblems sorts problems by field path, list indexes by number
// ("user[2]" before "user[10]"), keeping the order of the problems of
// one field; problems with the document as a whole come first.
func SortProblems(ps Errors) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return comparePaths(a.Path, b.Path) })
}

// comparePaths orders field paths as strings, except that the digits of
// a list index compare as a number.
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		if a[0] == '[' && b[0] == '[' {
			ai, arest := leadingIndex(a[1:])
			bi, brest := leadingIndex(b[1:])
			if c := cmp.Compare(ai, bi); c != 0 {
				return c
			}
			a, b = arest, brest
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// leadingIndex reads the number at the start of s and returns it with
// the rest of s.
func leadingIndex(s string) (int, string) {
	n, i := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1<<30 {
		n = n*10 + int(s[i]-'0')
		i++
	}
	return n, s[i:]
}
