package apimodel

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docTable is the mapping table docs/blueprint.md shows: every field of
// the API's customizations, and of their items those whose names differ
// or that no blueprint field holds.
func docTable() string {
	var b strings.Builder
	b.WriteString("| API field (in `customizations`) | Blueprint field |\n| --- | --- |\n")
	list := func(f Field) string {
		if f.Kind == ObjectList || f.Kind == NameList {
			return "[]"
		}
		return ""
	}
	var rows func(apiPrefix, bpPrefix string, fields []Field, all bool)
	rows = func(apiPrefix, bpPrefix string, fields []Field, all bool) {
		for _, f := range fields {
			api := apiPrefix + f.API + list(f)
			bp := bpPrefix + f.Blueprint + list(f)
			switch {
			case f.Blueprint == "":
				fmt.Fprintf(&b, "| `%s` | none: %s |\n", api, f.Note)
			case f.Kind == NameList:
				fmt.Fprintf(&b, "| `%s` (names) | `%s.name` |\n", api, bp)
			case all || f.API != f.Blueprint:
				fmt.Fprintf(&b, "| `%s` | `%s` |\n", api, bp)
			}
			for _, fd := range Folds {
				if fd.Into == f.Blueprint && f.Blueprint != "" {
					fmt.Fprintf(&b, "| `%s` | `%s[]` too: its entries join the list |\n", api, fd.Blueprint)
				}
			}
			rows(api+".", bp+".", f.Items, false)
		}
	}
	rows("", "", Customizations, true)
	return b.String()
}

// The table in docs/blueprint.md is the one the code reads.
func TestDocTableMatches(t *testing.T) {
	data, err := os.ReadFile("../../docs/blueprint.md")
	require.NoError(t, err)
	const begin, end = "<!-- api-fields: begin -->\n", "<!-- api-fields: end -->"
	_, rest, ok := strings.Cut(string(data), begin)
	require.True(t, ok, "docs/blueprint.md has the table between %q and %q", begin, end)
	table, _, ok := strings.Cut(rest, end)
	require.True(t, ok)
	assert.Equal(t, docTable(), table, "regenerate the table: this test's docTable gives it")
}
