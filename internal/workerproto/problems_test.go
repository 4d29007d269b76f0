package workerproto

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-project/kiln/blueprint"
)

// A blueprint.Errors wrapped anywhere in a build's error becomes one
// Problem each, with its field; other errors carry none.
func TestProblemsOf(t *testing.T) {
	errs := blueprint.Errors{
		{Path: "customizations.services.enabled[0]", Message: "no installed unit is called cockpit.socket"},
		{Path: "customizations.user[0].groups[0]", Message: `the image has no group "wheel"`},
	}
	err := fmt.Errorf("tree: stage kiln.check: %w", errs)
	assert.Equal(t, []Problem{
		{Field: "customizations.services.enabled[0]", Message: "no installed unit is called cockpit.socket"},
		{Field: "customizations.user[0].groups[0]", Message: `the image has no group "wheel"`},
	}, ProblemsOf(err))
	assert.Nil(t, ProblemsOf(fmt.Errorf("tar: exit status 2")))
}

// Problems survive the one details text a failure is stored with, and
// details without problems, JSON-looking or not, are kept as they are.
func TestDetailsRoundTrip(t *testing.T) {
	ps := []Problem{{Field: "customizations.user[0].shell", Message: "/bin/zsh is not in the image"}, {Message: "about no field"}}
	d, got := DecodeDetails(EncodeDetails("tree: stage kiln.check: ...", ps))
	assert.Equal(t, "tree: stage kiln.check: ...", d)
	assert.Equal(t, ps, got)

	for _, plain := range []string{"", "tar: exit status 2", `{"reason": "a tool's own JSON"}`, `{"problems": []}`, `{"problems": [{"field": "x"}]}`} {
		assert.Equal(t, plain, EncodeDetails(plain, nil))
		d, got := DecodeDetails(plain)
		assert.Equal(t, plain, d)
		assert.Nil(t, got, plain)
	}
}
