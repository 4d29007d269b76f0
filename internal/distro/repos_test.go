package distro

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/keyfetch"
	"github.com/kiln-project/kiln/internal/manifest"
)

func testKey(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../keyfetch/testdata/" + name)
	require.NoError(t, err)
	return string(data)
}

func reposBlueprint(t *testing.T, repos string) *blueprint.Blueprint {
	t.Helper()
	bp, err := blueprint.Parse([]byte("name = \"repos\"\n"+repos), blueprint.FormatTOML)
	require.NoError(t, err)
	return bp
}

// Every field of a blueprint repository reaches the image's apt sources,
// and only enabled repositories with install_from reach the solver.
func TestBlueprintRepositoriesReachTheImage(t *testing.T) {
	t.Parallel()
	it := imageType(t, loadRegistry(t), "debian-12", "x86_64", "tar")
	keyURL := "https://keys.example.org/vendor.asc"
	key, err := keyfetch.Normalize([]byte(testKey(t, "key.asc")))
	require.NoError(t, err)
	pasted := testKey(t, "second.asc")
	bp := reposBlueprint(t, `
[[customizations.repositories]]
id = "vendor"
name = "Vendor packages"
filename = "vendor.repo"
baseurls = ["https://apt.example.org/vendor"]
suite = "stable"
components = ["main"]
priority = 700
gpgkeys = ["`+keyURL+`", """`+pasted+`"""]
install_from = true

[[customizations.repositories]]
id = "later"
baseurls = ["https://apt.example.org/later"]
suite = "stable"
components = ["main"]
enabled = false
gpgkeys = ["`+keyURL+`"]
`)
	opts := Options{GPGKeys: map[string]keyfetch.Key{keyURL: {URL: keyURL, SHA256: strings.Repeat("ab", 32), Armored: key}}}
	_, m := makeManifest(t, it, bp, opts)

	src := stageOf[*manifest.AptSources](t, m, "os").Sources
	require.Len(t, src, 4, "debian, debian-security and the blueprint's two")
	vendor, later := src[2], src[3]
	assert.Equal(t, "vendor", vendor.Name)
	assert.Empty(t, vendor.Filename, "vendor.repo names the file the id names already")
	assert.Equal(t, "Vendor packages", vendor.Title)
	require.NotNil(t, vendor.Priority)
	assert.Equal(t, 700, *vendor.Priority)
	assert.False(t, vendor.Disabled)
	merged, err := keyfetch.Merge([]string{key, pasted})
	require.NoError(t, err)
	assert.Equal(t, merged, vendor.SignedBy, "the fetched and the pasted key as one keyring")

	assert.True(t, later.Disabled, "written disabled, not dropped")
	assert.Equal(t, key, later.SignedBy)

	assert.Equal(t, []manifest.KeyPin{
		{Repository: "vendor", URL: keyURL, SHA256: strings.Repeat("ab", 32)},
		{Repository: "later", URL: keyURL, SHA256: strings.Repeat("ab", 32)},
	}, m.Sources.Keys)

	plan, err := it.Manifest(bp, Options{Mirrors: testMirrors, GPGKeys: opts.GPGKeys})
	require.NoError(t, err)
	var solved []string
	for _, r := range plan.Request.Repositories {
		solved = append(solved, r.ID)
	}
	assert.Equal(t, []string{"debian", "debian-security", "vendor"}, solved, "the disabled repository is not solved against")
	assert.Len(t, plan.Request.Repositories[2].SignedByKeys, 2)
	require.NotNil(t, plan.Request.Repositories[2].Priority, "the pin holds while solving too")
	assert.Equal(t, 700, *plan.Request.Repositories[2].Priority)
}

func TestBlueprintRepositoryFileName(t *testing.T) {
	t.Parallel()
	it := imageType(t, loadRegistry(t), "debian-12", "x86_64", "tar")
	bp := reposBlueprint(t, `
[[customizations.repositories]]
id = "vendor"
filename = "vendor-main.list"
baseurls = ["https://apt.example.org/vendor"]
suite = "stable"
components = ["main"]
gpgcheck = false
`)
	_, m := makeManifest(t, it, bp, Options{})
	src := stageOf[*manifest.AptSources](t, m, "os").Sources
	assert.Equal(t, "vendor-main", src[2].Filename)
	assert.True(t, src[2].Trusted)
}

// Problems only the distribution or the fetched keys reveal come back
// together, each at its field.
func TestBlueprintRepositoryProblems(t *testing.T) {
	t.Parallel()
	it := imageType(t, loadRegistry(t), "debian-12", "x86_64", "tar")
	bp := reposBlueprint(t, `
[[customizations.repositories]]
id = "debian"
baseurls = ["https://apt.example.org/a"]
suite = "stable"
components = ["main"]
gpgcheck = false

[[customizations.repositories]]
id = "b"
filename = "debian-security.sources"
baseurls = ["https://apt.example.org/b"]
suite = "stable"
components = ["main"]
enabled = false
install_from = true
gpgkeys = ["https://keys.example.org/b.asc"]

[[customizations.repositories]]
id = "damaged"
baseurls = ["https://apt.example.org/d"]
suite = "stable"
components = ["main"]
gpgkeys = ["""`+damagedKey(t)+`"""]
`)
	_, err := it.Manifest(bp, Options{Mirrors: testMirrors})
	var errs blueprint.Errors
	require.True(t, errors.As(err, &errs), "%v", err)
	byPath := map[string]string{}
	for _, p := range errs {
		byPath[p.Path] = p.Message
	}
	assert.Contains(t, byPath["customizations.repositories[0].id"], "own repositories")
	assert.Contains(t, byPath["customizations.repositories[1].filename"], "would replace the sources file")
	assert.Contains(t, byPath["customizations.repositories[1].install_from"], "switched off")
	assert.Contains(t, byPath["customizations.repositories[2].gpgkeys[0]"], "checksum does not match")

	// With the distribution's checks clean, a key URL nobody fetched is a
	// problem at its field rather than a key dropped.
	bp = reposBlueprint(t, `
[[customizations.repositories]]
id = "c"
baseurls = ["https://apt.example.org/c"]
suite = "stable"
components = ["main"]
gpgkeys = ["https://keys.example.org/c.asc"]
`)
	_, err = it.Manifest(bp, Options{Mirrors: testMirrors, GPGKeys: map[string]keyfetch.Key{}})
	require.True(t, errors.As(err, &errs), "%v", err)
	require.Len(t, errs, 1)
	assert.Equal(t, "customizations.repositories[0].gpgkeys[0]", errs[0].Path)
	assert.Contains(t, errs[0].Message, "not fetched")

	// Planned only to check the blueprint (no fetch at all), the key URL
	// is left out with a warning naming its field.
	plan, err := it.Manifest(bp, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	assert.Contains(t, strings.Join(plan.Warnings, "\n"), "customizations.repositories[0].gpgkeys[0]: the key was not fetched")
}

// damagedKey is the test key with one data character changed, which its
// armor checksum reveals.
func damagedKey(t *testing.T) string {
	lines := strings.Split(testKey(t, "key.asc"), "\n")
	lines[2] = strings.Replace(lines[2], "m", "n", 1)
	return strings.Join(lines, "\n")
}

// A pin on the mirror's host pins the distribution too: the plan says so.
func TestPinOnTheMirrorHostWarns(t *testing.T) {
	t.Parallel()
	it := imageType(t, loadRegistry(t), "debian-12", "x86_64", "tar")
	bp := reposBlueprint(t, `
[[customizations.repositories]]
id = "local"
baseurls = ["http://mirror.example/extra"]
suite = "stable"
components = ["main"]
gpgcheck = false
priority = 900

[[customizations.repositories]]
id = "elsewhere"
baseurls = ["http://apt.example.org/extra"]
suite = "stable"
components = ["main"]
gpgcheck = false
priority = 900
`)
	plan, err := it.Manifest(bp, Options{Mirrors: testMirrors})
	require.NoError(t, err)
	var pins []string
	for _, w := range plan.Warnings {
		if strings.Contains(w, "apt pins by host") {
			pins = append(pins, w)
		}
	}
	require.Len(t, pins, 1, "%v", plan.Warnings)
	assert.Contains(t, pins[0], "customizations.repositories[0].priority")
	assert.Contains(t, pins[0], "debian and debian-security mirror")
}
