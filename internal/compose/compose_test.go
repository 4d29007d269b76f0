package compose

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/manifest"
)

func tarImageType(t *testing.T) *distro.ImageType {
	t.Helper()
	reg, err := distro.Load()
	require.NoError(t, err)
	bp := &blueprint.Blueprint{Name: "k"}
	it, err := ImageType(reg, bp, Request{ImageType: "tar"}, Defaults{Distro: "debian-12", Arch: "x86_64"})
	require.NoError(t, err)
	return it
}

var testMirrors = map[string]string{"debian": "http://mirror.example/debian", "debian-security": "http://mirror.example/debian-security"}

// A key the blueprint names by URL is fetched while the manifest is
// written and pinned into it; the apt sources carry its content.
func TestManifestPinsKeysNamedByURL(t *testing.T) {
	t.Parallel()
	key, err := os.ReadFile("../keyfetch/testdata/key.asc")
	require.NoError(t, err)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/key.asc" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(key)
	}))
	t.Cleanup(srv.Close)
	bp, err := blueprint.Parse([]byte(`name = "k"
[[customizations.repositories]]
id = "vendor"
baseurls = ["https://apt.example.org/vendor"]
suite = "stable"
components = ["main"]
gpgkeys = ["`+srv.URL+`/key.asc"]
install_from = true
`), blueprint.FormatTOML)
	require.NoError(t, err)
	it := tarImageType(t)
	res, err := Manifest(context.Background(), it, bp, distro.Options{Mirrors: testMirrors, KeyClient: srv.Client()}, depsolve.Fake{})
	require.NoError(t, err)
	require.Len(t, res.Manifest.Sources.Keys, 1)
	pin := res.Manifest.Sources.Keys[0]
	assert.Equal(t, srv.URL+"/key.asc", pin.URL)
	assert.Len(t, pin.SHA256, 64)
	var sources *manifest.AptSources
	for _, p := range res.Manifest.Pipelines {
		for _, s := range p.Stages {
			if a, ok := s.Options.(*manifest.AptSources); ok {
				sources = a
			}
		}
	}
	require.NotNil(t, sources)
	assert.True(t, strings.HasPrefix(sources.Sources[2].SignedBy, "-----BEGIN PGP PUBLIC KEY BLOCK-----"))

	// A key that cannot be fetched is a problem at its field, reported
	// with the image type's own findings about the blueprint.
	bp.Customizations.Repositories[0].GPGKeys = []string{srv.URL + "/gone.asc"}
	bp.Customizations.Repositories = append(bp.Customizations.Repositories, bp.Customizations.Repositories[0])
	bp.Customizations.Repositories[1].ID = "debian"
	_, err = Manifest(context.Background(), it, bp, distro.Options{Mirrors: testMirrors, KeyClient: srv.Client()}, depsolve.Fake{})
	var errs blueprint.Errors
	require.True(t, errors.As(err, &errs), "%v", err)
	var paths []string
	for _, p := range errs {
		paths = append(paths, p.Path)
	}
	assert.Equal(t, []string{
		"customizations.repositories[0].gpgkeys[0]",
		"customizations.repositories[1].gpgkeys[0]",
		"customizations.repositories[1].id",
	}, paths)
}
