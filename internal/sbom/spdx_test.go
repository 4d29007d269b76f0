package sbom

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func testManifest() *manifest.Manifest {
	return &manifest.Manifest{
		Version: manifest.Version,
		Target:  manifest.Target{Distro: "debian-12", Arch: "x86_64", ImageType: "qcow2", Name: "web", Version: "1.0.0"},
		Sources: manifest.Sources{Debs: []manifest.Deb{
			{Name: "bash", Version: "5.2.15-2+b2", Arch: "amd64", Source: "bash", SourceVersion: "5.2.15-2", URL: "http://mirror.example/debian/pool/main/b/bash/bash_5.2.15-2+b2_amd64.deb", SHA256: strings.Repeat("a", 64), Size: 1},
			{Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64", Source: "glibc", SourceVersion: "2.36-9+deb12u4", URL: "http://mirror.example/x.deb", SHA256: strings.Repeat("b", 64), Size: 1},
			{Name: "diffutils", Version: "1:3.8-4", Arch: "amd64", Source: "diffutils", SourceVersion: "1:3.8-4", URL: "http://mirror.example/y.deb", SHA256: strings.Repeat("c", 64), Size: 1},
		}},
		Output: manifest.Output{Filename: "web-debian-12-x86_64.qcow2"},
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	write := func(pkg, text string) {
		require.NoError(t, os.MkdirAll(filepath.Join(tree, "usr/share/doc", pkg), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(tree, "usr/share/doc", pkg, "copyright"), []byte(text), 0o644))
	}
	write("bash", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-3+\n\nFiles: lib/*\nLicense: GPL-2+ or BSD-3-clause\n\nFiles: x\nLicense: Weird License\n")
	write("libc6", "This is not machine-readable.\nLicense: GPL\n")

	created := time.Unix(1700000000, 0)
	facts, err := ScanLicenses(tree)
	require.NoError(t, err)
	doc := New(testManifest(), facts, created)
	b, err := doc.Marshal()
	require.NoError(t, err)
	assert.Equal(t, "NOASSERTION", New(testManifest(), nil, created).Packages[1].LicenseDeclared, "no facts, no assertion")
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	for _, field := range []string{"spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo", "packages", "relationships"} {
		assert.Contains(t, raw, field)
	}
	assert.Equal(t, "SPDX-2.3", doc.SPDXVersion)
	assert.Equal(t, "2023-11-14T22:13:20Z", doc.CreationInfo.Created, "the build's epoch, not the clock")
	require.Len(t, doc.Packages, 4, "the image and its three packages")

	bash := doc.Packages[1]
	assert.Equal(t, "SPDXRef-Package-deb-bash-amd64", bash.SPDXID)
	assert.Equal(t, "(BSD-3-Clause AND GPL-2.0-or-later AND GPL-3.0-or-later AND LicenseRef-Debian-Weird-License)", bash.LicenseDeclared)
	assert.Equal(t, "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12", bash.ExternalRefs[0].Locator)
	assert.Equal(t, []Checksum{{"SHA256", strings.Repeat("a", 64)}}, bash.Checksums)
	assert.Equal(t, "NOASSERTION", doc.Packages[2].LicenseDeclared, "a free-form copyright file asserts nothing")
	assert.Equal(t, "pkg:deb/debian/diffutils@1%3A3.8-4?arch=amd64&distro=debian-12", doc.Packages[3].ExternalRefs[0].Locator, "the epoch colon is escaped")

	var refs []string
	for _, e := range doc.ExtractedLicenses {
		refs = append(refs, e.LicenseID)
	}
	assert.Equal(t, []string{"LicenseRef-Debian-Weird-License"}, refs, "every LicenseRef used is declared")
	assert.Len(t, doc.Relationships, 4)

	again, err := New(testManifest(), facts, created).Marshal()
	require.NoError(t, err)
	assert.Equal(t, string(b), string(again), "the same build gives the same SBOM")
}
