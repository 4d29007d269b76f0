package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/manifest"
)

// fakeMirrors are the --mirror flags of the runs that solve with
// depsolve.Fake, which reads no repository.
var fakeMirrors = []string{"--mirror", "debian=http://mirror.example/debian", "--mirror", "debian-security=http://mirror.example/debian-security"}

// runFake runs the CLI in-process as run does, with the packages solved
// by depsolve.Fake (every package exists but those named "missing-…")
// instead of the network.
func runFake(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs(append(args, fakeMirrors...))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(context.WithValue(context.Background(), resolverContextKey{}, depsolve.Resolver(depsolve.Fake{})))
	if err != nil {
		printError(&stderr, err)
	}
	return stdout.String(), stderr.String(), err
}

// everyPhaseBlueprint has one mistake for each phase of planning: a field
// of the wrong type, an unknown time zone, an option the tar type does not
// support, a disk layout no table can hold and a package that does not
// exist.
const everyPhaseBlueprint = `name = "phases"
[[packages]]
name = "missing-tool"
[[packages]]
name = "curl"
[customizations]
hostname = 42
[customizations.timezone]
timezone = "Mars/Olympus"
[customizations.disk]
type = "dos"
[[customizations.disk.partitions]]
mountpoint = "/"
[[customizations.disk.partitions]]
mountpoint = "/var"
minsize = "1 GiB"
[[customizations.disk.partitions]]
mountpoint = "/srv"
minsize = "1 GiB"
[[customizations.disk.partitions]]
mountpoint = "/home"
minsize = "1 GiB"
[[customizations.disk.partitions]]
mountpoint = "/opt"
minsize = "1 GiB"
`

func writeBlueprintFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bp.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// validate, manifest and build report the problems of every phase in
// one run, each with its field path, sorted.
func TestEveryPhaseInOneAnswer(t *testing.T) {
	t.Parallel()
	bp := writeBlueprintFile(t, everyPhaseBlueprint)
	// The problems one a line, by field path: the disk layout, the wrong
	// type, the time zone, the package.
	wantQcow2 := `^kiln: blueprint .*bp\.toml has 4 problem\(s\):\n` +
		`  customizations\.disk: a dos partition table holds at most 4 partitions[^\n]*\n` +
		`  customizations\.hostname: expected a string, got an integer\n` +
		`  customizations\.timezone\.timezone: unknown time zone "Mars/Olympus"[^\n]*\n` +
		`  packages\[0\]: package "missing-tool" does not exist in debian-12\n$`
	for _, args := range [][]string{
		{"blueprint", "validate", bp, "--type", "qcow2", "--distro", "debian-12"},
		{"manifest", "--blueprint", bp, "--type", "qcow2", "--distro", "debian-12"},
		{"build", "--blueprint", bp, "--type", "qcow2", "--distro", "debian-12", "--output", t.TempDir()},
	} {
		out, stderr, err := runFake(t, args...)
		require.Error(t, err, args)
		assert.Empty(t, out, args)
		assert.Regexp(t, wantQcow2, stderr, args)
	}

	// The tar type refuses the disk customization instead of laying it
	// out; the rest is the same.
	_, stderr, err := runFake(t, "blueprint", "validate", bp, "--type", "tar", "--distro", "debian-12")
	require.Error(t, err)
	assert.Contains(t, stderr, "has 4 problem(s):\n  customizations.disk: not supported by image type tar")
	assert.Contains(t, stderr, "  packages[0]: package \"missing-tool\" does not exist")

	// --distro alone checks all that does not depend on an image type,
	// the packages included.
	_, stderr, err = runFake(t, "blueprint", "validate", bp, "--distro", "debian-12")
	require.Error(t, err)
	assert.Contains(t, stderr, "has 3 problem(s):\n"+
		"  customizations.hostname: expected a string, got an integer\n"+
		"  customizations.timezone.timezone: unknown time zone \"Mars/Olympus\"")
	assert.Contains(t, stderr, "  packages[0]: package \"missing-tool\" does not exist in debian-12\n")

	// Without --distro or --type, validate stays offline: it asks no
	// resolver (run has none), and checks the blueprint alone.
	_, stderr, err = run(t, "blueprint", "validate", bp)
	require.Error(t, err)
	assert.Equal(t, "kiln: blueprint "+bp+" has 1 problem(s):\n  customizations.hostname: expected a string, got an integer\n", stderr)

	// --arch alone adds the distribution's checks, still offline.
	_, stderr, err = run(t, "blueprint", "validate", bp, "--arch", "x86_64")
	require.Error(t, err)
	assert.Contains(t, stderr, "has 2 problem(s):\n  customizations.hostname: expected a string, got an integer\n  customizations.timezone.timezone:")
}

// A clean blueprint still validates and gives its manifest, with the
// check stage after the packages.
func TestValidateAndManifestOfACleanBlueprint(t *testing.T) {
	t.Parallel()
	bp := writeBlueprintFile(t, "name = \"ok\"\n[[packages]]\nname = \"curl\"\n[customizations.timezone]\ntimezone = \"Europe/Berlin\"\n")
	out, _, err := runFake(t, "blueprint", "validate", bp, "--distro", "debian-12")
	require.NoError(t, err)
	assert.Contains(t, out, `blueprint "ok" is valid`)

	out, stderr, err := runFake(t, "manifest", "--blueprint", bp, "--type", "qcow2", "--distro", "debian-12")
	require.NoError(t, err, stderr)
	m, err := manifest.Parse([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, "ok-debian-12-x86_64.qcow2", m.Output.Filename)
}
