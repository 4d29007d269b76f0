package aptsources

import (
	"fmt"
	"strings"
)

// ParseOneLine parses the one-line format of sources.list(5):
//
//	deb [ arch=amd64 signed-by=/usr/share/keyrings/x.gpg ] http://mirror.example/debian bookworm main contrib
//
// A "#" starts a comment unless it is inside the option brackets, as in apt.
// File names the source in errors and entries.
func ParseOneLine(file, text string) ([]Entry, error) {
	var entries []Entry
	for i, line := range strings.Split(text, "\n") {
		lineNo := i + 1
		line = stripComment(strings.TrimSuffix(line, "\r"))
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, &ParseError{File: file, Line: lineNo, Msg: err.Error()}
		}
		e.File, e.Line = file, lineNo
		entries = append(entries, e)
	}
	return entries, nil
}

// stripComment cuts the line at the first "#" outside "[ … ]".
func stripComment(line string) string {
	depth := 0
	for i, r := range line {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case '#':
			if depth <= 0 {
				return line[:i]
			}
		}
	}
	return line
}

func parseLine(line string) (Entry, error) {
	if err := checkControl(line); err != nil {
		return Entry{}, err
	}
	typ, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	typ, rest, _ = cutOptions(typ, rest)
	if typ != "deb" && typ != "deb-src" {
		return Entry{}, fmt.Errorf("unknown source type %q (want deb or deb-src)", typ)
	}
	e := Entry{Types: []string{typ}, Options: map[string]string{}}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return Entry{}, fmt.Errorf("option list opened with [ but never closed with ]")
		}
		for _, opt := range strings.Fields(rest[1:end]) {
			key, val, ok := strings.Cut(opt, "=")
			if !ok || key == "" {
				return Entry{}, fmt.Errorf("option %q is not key=value", opt)
			}
			key = strings.ToLower(key)
			if key == "signed-by" {
				e.SignedBy = val
				continue
			}
			e.Options[key] = val
		}
		rest = rest[end+1:]
	}
	fields, err := quoteWords(rest)
	if err != nil {
		return Entry{}, err
	}
	if len(fields) < 2 {
		return Entry{}, fmt.Errorf("a %s line needs a URI and a suite", typ)
	}
	if err := checkURI(fields[0]); err != nil {
		return Entry{}, err
	}
	e.URIs = []string{fields[0]}
	e.Suites = []string{fields[1]}
	e.Components = fields[2:]
	if err := checkSuiteComponents(e.Suites, e.Components); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// cutOptions handles "deb[arch=amd64]" written without a space.
func cutOptions(typ, rest string) (string, string, bool) {
	if i := strings.IndexByte(typ, '['); i > 0 {
		return typ[:i], typ[i:] + " " + rest, true
	}
	return typ, rest, false
}

// quoteWords splits s at blanks, as apt does: text in double quotes or
// square brackets ("cdrom:[Debian GNU/Linux 12]/") stays in one word, and
// the double quotes are dropped.
func quoteWords(s string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord, quote, bracket := false, false, false
	for _, r := range s {
		switch {
		case quote:
			if r == '"' {
				quote = false
			} else {
				b.WriteRune(r)
			}
			continue
		case bracket:
			b.WriteRune(r)
			if r == ']' {
				bracket = false
			}
			continue
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
			continue
		}
		inWord = true
		switch r {
		case '"':
			quote = true
		case '[':
			bracket = true
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	if quote || bracket {
		return nil, fmt.Errorf("unbalanced quote or bracket in %q", strings.TrimSpace(s))
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}
