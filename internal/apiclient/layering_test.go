package apiclient_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/kiln-project/kiln"

// kilnDeps lists the module's packages that pkg (a directory below the
// module's root) imports, directly or not, leaving tests out.
func kilnDeps(t *testing.T, root, pkg string) []string {
	t.Helper()
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		p, err := build.ImportDir(filepath.Join(root, dir), 0)
		require.NoError(t, err, dir)
		for _, imp := range p.Imports {
			rel, ok := strings.CutPrefix(imp, module+"/")
			if ok && !seen[rel] {
				seen[rel] = true
				visit(rel)
			}
		}
	}
	visit(pkg)
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	return out
}

// A client of the API links nothing of the server: the CLI's service
// verbs and whatever else calls the API stay apart from the store, SQL
// and artifacts.
func TestClientLinksNothingOfTheServer(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	for _, pkg := range []string{"internal/apiclient", "internal/apimodel"} {
		for _, dep := range kilnDeps(t, root, pkg) {
			assert.False(t, strings.HasPrefix(dep, "internal/service"), "%s imports %s", pkg, dep)
		}
	}
	// The CLI links the server for kiln serve, but its client verbs do not
	// reach into it.
	for _, f := range []string{"cmd/kiln/compose.go", "cmd/kiln/blueprint_remote.go"} {
		parsed, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, f), nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			assert.False(t, strings.HasPrefix(path, module+"/internal/service"), "%s imports %s", f, path)
		}
	}
}
