package aptsources

import (
	"fmt"
	"strings"
)

// oneLineName maps a deb822 option field to its one-line name.
func oneLineName(field string) string {
	switch field {
	case "architectures":
		return "arch"
	case "languages":
		return "lang"
	case "targets":
		return "target"
	}
	return field
}

// ParseDeb822 parses the deb822 format of sources.list(5): stanzas separated
// by blank lines, fields "Name: value" with continuation lines indented,
// "#" comment lines anywhere. Stanzas with "Enabled: no" are skipped. File
// names the source in errors and entries.
func ParseDeb822(file, text string) ([]Entry, error) {
	var entries []Entry
	var st *stanza
	finish := func() error {
		if st == nil {
			return nil
		}
		e, enabled, err := st.entry()
		if err != nil {
			return &ParseError{File: file, Line: st.line, Msg: err.Error()}
		}
		if enabled {
			e.File, e.Line = file, st.line
			entries = append(entries, e)
		}
		st = nil
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		lineNo := i + 1
		line = strings.TrimSuffix(line, "\r")
		if err := checkControl(line); err != nil {
			return nil, &ParseError{File: file, Line: lineNo, Msg: err.Error()}
		}
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			if err := finish(); err != nil {
				return nil, err
			}
		case line[0] == ' ' || line[0] == '\t':
			if st == nil || st.last == "" {
				return nil, &ParseError{File: file, Line: lineNo, Msg: "continuation line without a field before it"}
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			st.fields[st.last] += "\n" + v
		default:
			name, val, ok := strings.Cut(line, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, &ParseError{File: file, Line: lineNo, Msg: fmt.Sprintf("%q is not a \"Field: value\" line", line)}
			}
			if st == nil {
				st = &stanza{line: lineNo, fields: map[string]string{}}
			}
			key := strings.ToLower(name)
			if _, dup := st.fields[key]; dup {
				return nil, &ParseError{File: file, Line: lineNo, Msg: fmt.Sprintf("field %s given twice in one stanza", name)}
			}
			st.fields[key] = strings.TrimSpace(val)
			st.last = key
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return entries, nil
}

type stanza struct {
	line   int
	fields map[string]string // lower-case name → value
	last   string
}

func (s *stanza) entry() (Entry, bool, error) {
	if v, ok := s.fields["enabled"]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "no", "false", "0":
			return Entry{}, false, nil
		case "yes", "true", "1":
		default:
			return Entry{}, false, fmt.Errorf("Enabled: %q is neither yes nor no", v)
		}
	}
	e := Entry{
		Types:      strings.Fields(s.fields["types"]),
		URIs:       strings.Fields(s.fields["uris"]),
		Suites:     strings.Fields(s.fields["suites"]),
		Components: strings.Fields(s.fields["components"]),
		SignedBy:   strings.TrimSpace(s.fields["signed-by"]),
		Options:    map[string]string{},
	}
	for _, req := range []struct{ name, val string }{{"Types", s.fields["types"]}, {"URIs", s.fields["uris"]}, {"Suites", s.fields["suites"]}} {
		if strings.TrimSpace(req.val) == "" {
			return Entry{}, false, fmt.Errorf("stanza has no %s field", req.name)
		}
	}
	for _, t := range e.Types {
		if t != "deb" && t != "deb-src" {
			return Entry{}, false, fmt.Errorf("unknown source type %q (want deb or deb-src)", t)
		}
	}
	for _, u := range e.URIs {
		if err := checkURI(u); err != nil {
			return Entry{}, false, err
		}
	}
	if err := checkSuiteComponents(e.Suites, e.Components); err != nil {
		return Entry{}, false, err
	}
	for k, v := range s.fields {
		switch k {
		case "enabled", "types", "uris", "suites", "components", "signed-by":
			continue
		}
		e.Options[oneLineName(k)] = strings.Join(strings.Fields(v), ",")
	}
	return e, true, nil
}
