package stages

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// The registry and the manifest's decoder know the same stage types: a
// type the manifest reads has a stage that checks and runs it, and no
// stage waits for a type no manifest can hold.
func TestRegistryMatchesManifest(t *testing.T) {
	t.Parallel()
	want := manifest.StageTypes()
	slices.Sort(want)
	require.Equal(t, want, Types())
	for _, name := range Types() {
		var s manifest.Stage
		require.NoError(t, s.UnmarshalJSON([]byte(`{"type":"`+name+`","options":{}}`)), name)
		st, err := New(s)
		require.NoError(t, err, name)
		// Empty options are valid for some types and not for others;
		// what matters is that checking them never panics.
		assert.NotPanics(t, func() { _ = st.Validate() }, name)
	}
}

// New refuses options of one type under another type's name.
func TestNewRefusesMismatchedOptions(t *testing.T) {
	t.Parallel()
	_, err := New(manifest.Stage{Type: "kiln.hostname", Options: &manifest.Timezone{Zone: "UTC"}})
	require.ErrorContains(t, err, "belong to stage type kiln.timezone")
	_, err = New(manifest.Stage{Type: "kiln.hostname"})
	require.ErrorContains(t, err, "has no options")
	_, err = New(manifest.Stage{Type: "kiln.nope", Options: &manifest.Timezone{Zone: "UTC"}})
	require.ErrorContains(t, err, "has no implementation")
}

// Every stage of every manifest the distributions make (the checked-in
// golden manifests) decodes, passes Validate and has a stage to run it;
// together they use every registered type but the ones listed here.
func TestGoldenManifestsValidate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../distro/testdata/manifests/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "the golden manifests of internal/distro")
	used := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		m, err := manifest.Parse(b)
		require.NoError(t, err, f)
		for _, p := range m.Pipelines {
			for i, s := range p.Stages {
				_, err := Check(s)
				require.NoError(t, err, "%s: pipeline %s: stage %d (%s)", filepath.Base(f), p.Name, i+1, s.Type)
				used[s.Type] = true
			}
		}
	}
	var unused []string
	for _, name := range Types() {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	assert.Empty(t, unused, "stage types no golden manifest uses")
}
