package worker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kiln-project/kiln/internal/emulation"
)

// ArchCheck says whether this host builds images of an architecture, and
// how (natively, or through qemu-user); its error names what is missing
// and the fix. emulation.Check is the real one.
type ArchCheck func(arch string) (emulation.Mode, error)

// CheckArches checks each architecture a worker declares with check (in
// the command-line flag named flag). It returns how each is built, or an
// error naming every architecture this host cannot build, each with what
// is missing: a worker must not offer what it would fail to build.
func CheckArches(flag string, arches []string, check ArchCheck) (map[string]emulation.Mode, error) {
	if len(arches) == 0 {
		return nil, fmt.Errorf("--%s: declare at least one architecture the worker builds (x86_64, aarch64)", flag)
	}
	modes := map[string]emulation.Mode{}
	var problems []string
	for _, a := range arches {
		if _, dup := modes[a]; dup {
			continue
		}
		mode, err := check(a)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--%s %s: this worker cannot build %s images: %v", flag, a, a, err))
			continue
		}
		modes[a] = mode
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return modes, nil
}

// DescribeArches is how a worker builds each of its architectures, for
// its log and its start-up line: "x86_64 (native), aarch64 (emulated)".
func DescribeArches(arches []string, modes map[string]emulation.Mode) string {
	var parts []string
	seen := map[string]bool{}
	for _, a := range arches {
		if !seen[a] {
			seen[a] = true
			parts = append(parts, fmt.Sprintf("%s (%s)", a, modes[a]))
		}
	}
	return strings.Join(parts, ", ")
}
