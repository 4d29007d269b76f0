package engine

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// A stage that fails with the blueprint's problems keeps them through
// Build: errors.As finds them, each at its field, so the service can show
// field errors rather than one line.
func TestBuildKeepsTheBlueprintProblemsOfAStage(t *testing.T) {
	t.Parallel()
	m := &manifest.Manifest{Version: manifest.Version, Pipelines: []manifest.Pipeline{
		{Name: "os", Produces: "tree", Stages: []manifest.Stage{manifest.NewStage(&manifest.CheckInstall{
			Units:  []manifest.CheckUnit{{Unit: "cockpit.socket", Field: "customizations.services.enabled[0]"}},
			Groups: []manifest.CheckGroup{{Group: "wheel", Field: "customizations.user[0].groups[0]"}},
		})}},
	}, Output: manifest.Output{Pipeline: "os", Filename: "tree"}}
	e, err := New(Config{CacheDir: t.TempDir()})
	require.NoError(t, err)
	_, err = e.Build(context.Background(), m, io.Discard, func(context.Context, string, map[string][]byte) error { return nil })
	var problems blueprint.Errors
	require.ErrorAs(t, err, &problems)
	require.Len(t, problems, 2)
	assert.Equal(t, "customizations.services.enabled[0]", problems[0].Path)
	assert.Equal(t, "customizations.user[0].groups[0]", problems[1].Path)
	assert.Contains(t, err.Error(), "os: stage kiln.check.install: ")
}

// A check is left out of the cache-key chain: what it looks for does not
// change the tree, so the stages after it keep their keys (and their
// cached trees) when only the checked names change, while any other
// stage's options still change every key after it.
func TestChecksAreOutsideTheKeyChain(t *testing.T) {
	t.Parallel()
	e, err := New(Config{CacheDir: t.TempDir()})
	require.NoError(t, err)
	manifestWith := func(unit, hostname string) *manifest.Manifest {
		return &manifest.Manifest{Version: manifest.Version, Pipelines: []manifest.Pipeline{
			{Name: "os", Produces: "tree", Stages: []manifest.Stage{
				manifest.NewStage(&manifest.Hostname{Hostname: "first"}),
				manifest.NewStage(&manifest.CheckInstall{Units: []manifest.CheckUnit{{Unit: unit, Field: "customizations.services.enabled[0]"}}}),
				manifest.NewStage(&manifest.Initramfs{}),
				manifest.NewStage(&manifest.Hostname{Hostname: hostname}),
			}},
		}, Output: manifest.Output{Pipeline: "os", Filename: "tree"}}
	}
	epoch := ManifestEpoch(manifestWith("a.service", "h"))
	base, _ := e.cacheKeys(manifestWith("a.service", "h"), epoch)
	otherUnit, _ := e.cacheKeys(manifestWith("b.service", "h"), epoch)
	otherHost, _ := e.cacheKeys(manifestWith("a.service", "other"), epoch)
	assert.Equal(t, base, otherUnit, "changing only what the check looks for keeps every key")
	assert.Equal(t, base[0][0], base[0][1], "the check's key is the tree's before it")
	assert.Equal(t, base[0][:3], otherHost[0][:3])
	assert.NotEqual(t, base[0][3], otherHost[0][3], "other stages still chain their options")
}
