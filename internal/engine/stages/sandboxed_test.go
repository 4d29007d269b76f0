package stages

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Only an executable that a package of the tree installed is run in it:
// a tool a blueprint or a script planted elsewhere on a PATH never is.
func TestPackagedCommand(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	write := func(p, data string, mode os.FileMode) {
		require.NoError(t, os.MkdirAll(filepath.Join(tree, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(tree, p), []byte(data), mode))
	}
	write("var/lib/dpkg/info/tool.list", "/.\n/usr\n/usr/sbin/tool\n/bin/aliased\n/usr/share/doc/tool/README\n", 0o644)
	write("usr/sbin/tool", "#!/bin/sh\n", 0o755)
	write("usr/bin/aliased", "#!/bin/sh\n", 0o755)
	write("usr/share/doc/tool/README", "text\n", 0o644)
	write("usr/local/sbin/systemctl", "#!/bin/sh\n", 0o755)
	require.NoError(t, os.Symlink("/usr/local/sbin/systemctl", filepath.Join(tree, "usr/sbin/linked")))

	require.NoError(t, PackagedCommand(tree, "/usr/sbin/tool"))
	require.NoError(t, PackagedCommand(tree, "/usr/bin/aliased"), "dpkg lists it as /bin/aliased under merged /usr")
	for cmd, want := range map[string]string{
		"/usr/local/sbin/systemctl":  "belongs to no installed package",
		"/usr/sbin/linked":           "not a regular executable file",
		"/usr/share/doc/tool/README": "not a regular executable file",
		"/usr/sbin/missing":          "is not in the image",
		"tool":                       "absolute path",
		"/usr/sbin/../sbin/tool":     "absolute path",
	} {
		require.ErrorContains(t, PackagedCommand(tree, cmd), want, cmd)
	}
}
