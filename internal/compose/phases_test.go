package compose

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
)

// everyPhase has one mistake for each phase of planning: the blueprint's
// own rules, the distribution's time zones, the plan's rule on unsigned
// repositories, the disk layout and the package solver.
const everyPhase = `name = "phases"
[[packages]]
name = "missing-tool"
[[packages]]
name = "curl"
[customizations]
hostname = "bad_host"
[customizations.timezone]
timezone = "Mars/Olympus"
[[customizations.repositories]]
id = "extra"
baseurls = ["https://repo.example/debian"]
suite = "stable"
components = ["main"]
gpgcheck = false
install_from = true
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

func imageType(t *testing.T, name string) *distro.ImageType {
	t.Helper()
	reg, err := distro.Load()
	require.NoError(t, err)
	d, err := reg.Distro("debian-12")
	require.NoError(t, err)
	a, err := d.Arch("x86_64")
	require.NoError(t, err)
	it, err := a.ImageType(name)
	require.NoError(t, err)
	return it
}

func paths(errs blueprint.Errors) []string {
	var out []string
	for _, p := range errs {
		out = append(out, p.Path)
	}
	return out
}

// One run reports the problems of every phase, sorted by field path,
// each once.
func TestManifestReportsEveryPhaseAtOnce(t *testing.T) {
	t.Parallel()
	bp, parsed := blueprint.ParseAll([]byte(everyPhase), blueprint.FormatTOML)
	require.NotNil(t, bp)
	require.Equal(t, []string{"customizations.hostname"}, paths(parsed), "parsing finds the bad host name only")

	_, err := ManifestAll(context.Background(), imageType(t, "qcow2"), bp, parsed, distro.Options{Mirrors: testMirrors}, depsolve.Fake{})
	var errs blueprint.Errors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, []string{
		"customizations.disk",
		"customizations.hostname",
		"customizations.repositories[0].install_from",
		"customizations.timezone.timezone",
		"packages[0]",
	}, paths(errs))
	msgs := errs.Error()
	for _, want := range []string{"bad_host", "Mars/Olympus", "signed repositories", "at most 4 partitions", `package "missing-tool" does not exist`} {
		assert.Contains(t, msgs, want)
	}

	// Without a resolver the same check stays offline: everything but
	// the packages.
	_, err = Check(context.Background(), imageType(t, "qcow2"), bp, parsed, distro.Options{Mirrors: testMirrors}, nil)
	require.ErrorAs(t, err, &errs)
	assert.NotContains(t, paths(errs), "packages[0]")
	assert.Len(t, errs, 4)
}

// An option the image type does not support is reported with the rest.
func TestManifestReportsUnsupportedOptionsWithTheRest(t *testing.T) {
	t.Parallel()
	bp, parsed := blueprint.ParseAll([]byte(`name = "x"
[[packages]]
name = "missing-a"
[[packages]]
name = "missing-b"
[[customizations.filesystem]]
mountpoint = "/var"
minsize = "1 GiB"
[customizations.timezone]
timezone = "Europe/Berlinn"
`), blueprint.FormatTOML)
	require.Empty(t, parsed)
	_, err := Manifest(context.Background(), imageType(t, "tar"), bp, distro.Options{Mirrors: testMirrors}, depsolve.Fake{})
	var errs blueprint.Errors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, []string{"customizations.filesystem", "customizations.timezone.timezone", "packages[0]", "packages[1]"}, paths(errs))
	assert.Contains(t, errs[0].Message, "not supported by image type tar")
}

// A field the parser found wrong is not looked at again: no second report,
// no panic on a half-decoded value (a repository without URLs), and a
// package whose entry was wrong is not asked of the solver.
func TestManifestSkipsFieldsParsingReported(t *testing.T) {
	t.Parallel()
	bp, parsed := blueprint.ParseAll([]byte(`name = "x"
[[packages]]
name = "missing-half"
version = 7
[customizations.disk]
minsize = "lots"
[[customizations.disk.partitions]]
mountpoint = "/var"
[[customizations.repositories]]
id = "extra"
suite = "stable"
components = ["main"]
gpgkeys = ["not a key"]
install_from = true
`), blueprint.FormatTOML)
	require.NotNil(t, bp)
	require.NotEmpty(t, parsed)
	_, err := ManifestAll(context.Background(), imageType(t, "qcow2"), bp, parsed, distro.Options{Mirrors: testMirrors}, depsolve.Fake{})
	var errs blueprint.Errors
	require.ErrorAs(t, err, &errs)
	assert.ElementsMatch(t, parsed, errs, "only what parsing found: the disk layout and the package are not checked again")
}

// A clean blueprint still gives its manifest.
func TestManifestAllWithoutProblems(t *testing.T) {
	t.Parallel()
	bp, parsed := blueprint.ParseAll([]byte("name = \"ok\"\n[[packages]]\nname = \"curl\"\n"), blueprint.FormatTOML)
	require.Empty(t, parsed)
	res, err := ManifestAll(context.Background(), imageType(t, "qcow2"), bp, nil, distro.Options{Mirrors: testMirrors}, depsolve.Fake{})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(res.Manifest.Output.Filename, "ok-"))
}

// A key that cannot be fetched joins the problems of the later phases:
// the plan is still made and the packages still solved.
func TestKeyFetchProblemsJoinTheRest(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	bp, parsed := blueprint.ParseAll([]byte(`name = "k"
[[packages]]
name = "missing-tool"
[customizations.timezone]
timezone = "Mars/Olympus"
[[customizations.repositories]]
id = "vendor"
baseurls = ["https://apt.example.org/vendor"]
suite = "stable"
components = ["main"]
gpgkeys = ["`+srv.URL+`/gone.asc"]
`), blueprint.FormatTOML)
	require.Empty(t, parsed)
	_, err := ManifestAll(context.Background(), imageType(t, "tar"), bp, nil, distro.Options{Mirrors: testMirrors, KeyClient: srv.Client()}, depsolve.Fake{})
	var errs blueprint.Errors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, []string{"customizations.repositories[0].gpgkeys[0]", "customizations.timezone.timezone", "packages[0]"}, paths(errs))
}
