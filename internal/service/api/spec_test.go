package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSpecLoads(t *testing.T) {
	s, err := loadSpec()
	require.NoError(t, err)
	require.NotEmpty(t, s.doc.Paths.Map())
}
