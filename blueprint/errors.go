package blueprint

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a blueprint: where it is and what to do.
type Problem struct {
	// Path is the field path in the blueprint, such as
	// "customizations.user[1].key". It is empty for problems with the
	// document as a whole (it is not TOML, it is too large).
	Path string
	// Message says what is wrong and how to fix it.
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Errors is every problem found in a blueprint. Parse and Validate return it
// (as an error) so that a user can fix everything in one go.
type Errors []Problem

// Error lists the problems, one a line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems while a blueprint is decoded or validated.
// Past maxProblems, further problems are only counted, so that a hostile
// document cannot make the error itself huge.
type problems struct {
	list    Errors
	dropped int
}

// maxProblems is how many problems are reported in full.
const maxProblems = 200

func (ps *problems) add(path, format string, args ...any) {
	if len(ps.list) >= maxProblems {
		ps.dropped++
		return
	}
	ps.list = append(ps.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// all returns the problems, ending with a count of those left out.
func (ps *problems) all() Errors {
	sortProblems(ps.list)
	if ps.dropped == 0 {
		return ps.list
	}
	return append(ps.list, Problem{Message: fmt.Sprintf("and %d more problems; fix the ones above first", ps.dropped)})
}

// err returns the collected problems as an error, or nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return ps.all()
}

// fieldPath joins a parent path and a field name.
func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// indexPath names one element of the list at path.
func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
