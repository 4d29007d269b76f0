package aptsources

import (
	"fmt"
	"strings"
	"unicode"
)

// checkControl rejects control characters, which no apt source contains.
func checkControl(line string) error {
	for _, r := range line {
		if r != '\t' && (unicode.IsControl(r) || r == unicode.ReplacementChar) {
			return fmt.Errorf("line contains the control or invalid character %q", r)
		}
	}
	return nil
}

// checkURI wants a scheme ("http:", "cdrom:", "mirror+https:"); apt
// accepts many, so nothing more is checked here.
func checkURI(raw string) error {
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" || strings.TrimFunc(scheme, isSchemeRune) != "" {
		return fmt.Errorf("URI %q has no scheme (want e.g. http://)", raw)
	}
	return nil
}

func isSchemeRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'
}

func checkSuiteComponents(suites, components []string) error {
	for _, s := range suites {
		flat := strings.HasSuffix(s, "/")
		if flat && len(components) > 0 {
			return fmt.Errorf("suite %q is an exact path (ends in /) and must have no components", s)
		}
		if !flat && len(components) == 0 {
			return fmt.Errorf("suite %q needs at least one component (e.g. main)", s)
		}
	}
	return nil
}
