package blueprint

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ParseAll gives back what it decoded with every problem; with none, it
// is Parse.
func TestParseAllKeepsWhatDecoded(t *testing.T) {
	t.Parallel()
	bp, problems := ParseAll([]byte(`name = "x"
[[packages]]
name = "curl"
[customizations]
hostname = 42
[customizations.timezone]
timezone = "Europe/Berlin"
[[customizations.user]]
name = "ann"
password = "secret"
`), FormatTOML)
	require.NotNil(t, bp)
	assert.Equal(t, Errors{{Path: "customizations.hostname", Message: "expected a string, got an integer"}}, problems)
	assert.Equal(t, "curl", bp.Packages[0].Name)
	assert.Equal(t, "Europe/Berlin", *bp.Customizations.Timezone.Timezone, "the fields that are fine are kept")
	assert.Nil(t, bp.Customizations.Hostname)
	assert.Equal(t, "secret", *bp.Customizations.User[0].Password, "a blueprint with problems is for checking: its passwords are not hashed")

	bp, problems = ParseAll([]byte("name = \"x\"\n[[customizations.user]]\nname = \"ann\"\npassword = \"secret\"\n"), FormatTOML)
	require.Empty(t, problems)
	assert.NotEqual(t, "secret", *bp.Customizations.User[0].Password, "a clean blueprint is Parse's: passwords hashed")

	bp, problems = ParseAll([]byte("name = "), FormatTOML)
	assert.Nil(t, bp, "a document that is not TOML has nothing to check")
	require.Len(t, problems, 1)
	assert.Empty(t, problems[0].Path)
}

func TestErrorsMergeAndSort(t *testing.T) {
	t.Parallel()
	parsed := Errors{{Path: "customizations.user[1].groups", Message: "a"}}
	merged := parsed.Merge(Errors{
		{Path: "packages[10]", Message: "p10"},
		{Path: "customizations.user[1].groups[0]", Message: "inside a reported field"},
		{Path: "customizations.user", Message: "around it: kept"},
		{Path: "packages[2]", Message: "p2"},
		{Path: "packages[2]", Message: "p2"},
		{Message: "whole document"},
	})
	assert.Equal(t, Errors{
		{Message: "whole document"},
		{Path: "customizations.user", Message: "around it: kept"},
		{Path: "customizations.user[1].groups", Message: "a"},
		{Path: "packages[2]", Message: "p2"},
		{Path: "packages[10]", Message: "p10"},
	}, merged)
	assert.True(t, parsed.Covers("customizations.user[1].groups[3]"))
	assert.False(t, parsed.Covers("customizations.user[1]"))
}
