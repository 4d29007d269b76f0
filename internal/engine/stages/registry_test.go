package stages

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Every stage type the manifest knows has an implementation.
func TestEveryStageTypeIsImplemented(t *testing.T) {
	t.Parallel()
	for _, name := range manifest.StageTypes() {
		var s manifest.Stage
		require.NoError(t, s.UnmarshalJSON([]byte(`{"type":"`+name+`","options":{}}`)), name)
		_, err := New(s)
		require.NoError(t, err, name)
	}
}
