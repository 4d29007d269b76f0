package worker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
)

// A package resolution that failed on what the user asked for is the
// user's error; an unreadable mirror or anything else is the service's.
func TestUserDepsolveError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"missing package", fmt.Errorf("resolving: %w", &depsolve.MissingPackagesError{Missing: []depsolve.MissingPackage{{Name: "vimm"}}}), true},
		{"unsatisfiable", &depsolve.UnsatisfiableError{Detail: "conflicts"}, true},
		{"blueprint problems", fmt.Errorf("x: %w", blueprint.Errors{{Path: "packages[0]", Message: "no such package"}}), true},
		{"mirror", &depsolve.MirrorError{URI: "http://mirror.example/debian", Detail: "404"}, false},
		{"mirror wrapping a missing package", fmt.Errorf("%w: %w", &depsolve.MirrorError{URI: "u"}, &depsolve.MissingPackagesError{}), false},
		{"anything else", errors.New("apt crashed"), false},
	} {
		assert.Equal(t, tc.want, userDepsolveError(tc.err), tc.name)
	}
}
