package apimodel

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A compose status's error details read as text or as problems, as the
// service sends them, and print as lines.
func TestStatusDetailsReadsBothShapes(t *testing.T) {
	var e StatusError
	require.NoError(t, json.Unmarshal([]byte(`{"id": 1, "reason": "build failed", "details": "tar: exit status 2"}`), &e))
	assert.Equal(t, StatusDetails{Text: "tar: exit status 2"}, e.Details)
	assert.Equal(t, "tar: exit status 2", e.Details.String())

	require.NoError(t, json.Unmarshal([]byte(`{"id": 1, "reason": "build failed", "details": [
		{"field": "customizations.users[0].shell", "detail": "customizations.users[0].shell: /bin/zsh is not in the image"},
		{"detail": "about no field"}]}`), &e))
	assert.Equal(t, []StatusProblem{
		{Field: "customizations.users[0].shell", Detail: "customizations.users[0].shell: /bin/zsh is not in the image"},
		{Detail: "about no field"},
	}, e.Details.Problems)
	assert.Equal(t, "customizations.users[0].shell: /bin/zsh is not in the image\nabout no field", e.Details.String())

	var cancelled StatusError
	require.NoError(t, json.Unmarshal([]byte(`{"id": 1, "reason": "cancelled by the user"}`), &cancelled))
	assert.Equal(t, StatusDetails{}, cancelled.Details)
	b, err := json.Marshal(StatusDetails{Problems: []StatusProblem{{Field: "f", Detail: "f: x"}}})
	require.NoError(t, err)
	assert.JSONEq(t, `[{"field": "f", "detail": "f: x"}]`, string(b))
}
