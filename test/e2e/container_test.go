package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/target/targettest"
	"github.com/kiln-project/kiln/internal/testhost"
)

// wslPackages are the packages the wsl type adds. The container blueprint
// asks for them too, so both images install the same package set and the
// test installs it once.
const wslPackages = `
[[packages]]
name = "systemd-sysv"
[[packages]]
name = "dbus"
[[packages]]
name = "sudo"
[[packages]]
name = "passwd"
[[packages]]
name = "ca-certificates"
[[packages]]
name = "less"
[[packages]]
name = "procps"
[[packages]]
name = "iproute2"
[[packages]]
name = "netbase"
`

// containerBlueprint has no hostname: a container's hostname is the
// runtime's.
const containerBlueprint = `
name = "box"
version = "1.0.2"
[[packages]]
name = "jq"
` + wslPackages + `
[[customizations.user]]
name = "dev"
groups = ["users"]
`

const wslBlueprint = `
name = "wslbox"
[[packages]]
name = "jq"
[customizations]
hostname = "kiln-wsl"
[[customizations.user]]
name = "dev"
groups = ["users"]
`

// chrootIn runs a command inside root and returns its output.
func chrootIn(t *testing.T, root string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		return run(t, "chroot", append([]string{root}, args...)...)
	}
}

// requireNoKernel checks that the unpacked tree root has no kernel: none
// in /boot and no kernel package installed.
func requireNoKernel(t *testing.T, root string) {
	t.Helper()
	kernels, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz*"))
	require.NoError(t, err)
	assert.Empty(t, kernels, "no kernel in /boot")
	pkgs := strings.Fields(chrootIn(t, root)("dpkg-query", "-W", "-f", "${Package}\n"))
	require.Contains(t, pkgs, "jq", "the package list was read")
	for _, p := range pkgs {
		assert.False(t, strings.HasPrefix(p, "linux-image-"), "kernel package %s is installed", p)
		assert.False(t, strings.HasPrefix(p, "grub-"), "boot loader package %s is installed", p)
	}
}

// readOCILayout reads the unpacked OCI layout in dir: its index must
// hold one OCI image manifest, tagged tag; every blob must be named by its
// digest, and the image must validate (go-containerregistry reads every
// blob and checks the digests, diff IDs and sizes).
func readOCILayout(t *testing.T, dir, tag string) (v1.Image, v1.Hash) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(b))
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Len(t, blobs, 3, "config, manifest and the one layer")
	for _, blob := range blobs {
		assert.Equal(t, blob.Name(), sha256File(t, filepath.Join(dir, "blobs", "sha256", blob.Name())), "blob named by its digest")
	}
	idx, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	desc := im.Manifests[0]
	assert.Equal(t, types.OCIManifestSchema1, desc.MediaType)
	assert.Equal(t, tag, desc.Annotations["org.opencontainers.image.ref.name"])
	img, err := idx.Image(desc.Digest)
	require.NoError(t, err)
	require.NoError(t, validate.Image(img))
	return img, desc.Digest
}

// TestRootTreeImages builds the container and the wsl image of blueprints
// with the same packages in one cache, so the package installation is
// shared. The container image is read back as an OCI layout, its layer
// checked in a chroot and the image made again from its manifest in a
// second cache to the same digest and bytes; the wsl tree is checked for
// its wsl.conf and default user, and the wsl image rebuilt in the second
// cache to the same bytes.
func TestRootTreeImages(t *testing.T) {
	testhost.RequireBuildHost(t, engine.HostProblems(nil))
	t.Parallel()
	cache := sharedCache(t)
	again := newRebuilder(t) // the second cache: the two types share it too
	t.Run("container", func(t *testing.T) { testContainerImage(t, cache, again) })
	t.Run("wsl", func(t *testing.T) { testWSLImage(t, cache, again) })
}

func testContainerImage(t *testing.T, cache string, again *rebuilder) {
	m := plan(t, containerBlueprint, "container")
	// The manifest's own epoch, as the service's builds use: its compose
	// below finds the tree in the cache.
	epoch := engine.ManifestEpoch(m)
	a := build(t, m, cache, t.TempDir(), &epoch)
	assert.True(t, strings.HasSuffix(a, ".oci.tar"), a)

	dir := t.TempDir()
	run(t, "tar", "-xf", a, "-C", dir)
	img, digest := readOCILayout(t, dir, "box:1.0.2")
	mf, err := img.Manifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIConfigJSON, mf.Config.MediaType)
	require.Len(t, mf.Layers, 1)
	assert.Equal(t, types.OCILayer, mf.Layers[0].MediaType)

	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, "amd64", cf.Architecture)
	assert.True(t, cf.Created.Time.Equal(epoch), "created %s, not the epoch", cf.Created.Time)
	assert.Equal(t, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cf.Config.Env)
	assert.Equal(t, "dev", cf.Config.User, "runs as the blueprint's first user")
	assert.Equal(t, []string{"/bin/bash"}, cf.Config.Cmd)
	assert.Equal(t, map[string]string{
		"org.opencontainers.image.title":   "box",
		"org.opencontainers.image.version": "1.0.2",
	}, cf.Config.Labels)

	// The layer as a runtime unpacks it.
	root := t.TempDir()
	layer := filepath.Join(dir, "blobs", mf.Layers[0].Digest.Algorithm, mf.Layers[0].Digest.Hex)
	run(t, "tar", "--numeric-owner", "-xzf", layer, "-C", root)
	chroot := chrootIn(t, root)
	assert.Contains(t, chroot("dpkg-query", "-W", "-f", "${Package}\n", "jq"), "jq")
	assert.Equal(t, "debian\n", chroot("cat", "/etc/hostname"))
	assert.Contains(t, chroot("id", "dev"), "(users)")
	requireNoKernel(t, root)

	t.Run("skopeo", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("needs skopeo (apt-get install skopeo)")
		}
		var out struct {
			Digest       string
			Architecture string
			Os           string
		}
		require.NoError(t, json.Unmarshal([]byte(run(t, "skopeo", "inspect", "oci-archive:"+a)), &out))
		assert.Equal(t, digest.String(), out.Digest)
		assert.Equal(t, "amd64", out.Architecture)
		assert.Equal(t, "linux", out.Os)
		// Copying reads every blob and checks it against its digest.
		run(t, "skopeo", "copy", "--quiet", "oci-archive:"+a, "dir:"+t.TempDir())
	})

	// The image again from its manifest in a second cache, tree and all:
	// the same archive, so the same image digest.
	again.assertRebuildsIdentically(t, m, a, &epoch)

	// Through the service, to a registry: the compose's result names the
	// digest the registry holds under the tag, and the image in the
	// service's store is that image.
	t.Run("registry", func(t *testing.T) {
		reg := targettest.StartRegistry(t, targettest.RegistryOptions{Auth: true})
		k := startKiln(t, cache, target.Config{Registry: &reg.Config}, reg.Env)
		id := k.compose(t, containerBlueprint, "container", map[string]any{"type": "container", "options": map[string]any{"name": "e2e/box", "tag": "1.0.2"}})
		st, _ := k.wait(t, id, 15*time.Minute)
		opts := st.ImageStatus.UploadStatus.Options
		assert.Equal(t, "container", st.ImageStatus.UploadStatus.Type)
		digest := reg.Inspect(t, "e2e/box", "1.0.2")
		assert.Equal(t, digest, opts["digest"], "the registry holds what the compose says it pushed")
		assert.Contains(t, opts["url"], "/e2e/box:1.0.2")
		stored := k.download(t, id, filepath.Join(t.TempDir(), "box.oci.tar"))
		sdir := t.TempDir()
		run(t, "tar", "-xf", stored, "-C", sdir)
		img, err := layout.ImageIndexFromPath(sdir)
		require.NoError(t, err)
		im, err := img.IndexManifest()
		require.NoError(t, err)
		require.Len(t, im.Manifests, 1)
		assert.Equal(t, digest, im.Manifests[0].Digest.String(), "the pushed image is the built one")
	})
}

// testWSLImage builds the wsl image and checks the unpacked tree: gzip,
// /etc/wsl.conf naming the default user, no kernel and no boot loader.
func testWSLImage(t *testing.T, cache string, again *rebuilder) {
	m := plan(t, wslBlueprint, "wsl")
	epoch := engine.ManifestEpoch(m) // as the container's, sharing its package installation
	a := build(t, m, cache, t.TempDir(), &epoch)
	assert.True(t, strings.HasSuffix(a, ".wsl.tar.gz"), a)

	f, err := os.Open(a)
	require.NoError(t, err)
	magic := make([]byte, 2)
	_, err = f.Read(magic)
	f.Close()
	require.NoError(t, err)
	assert.Equal(t, []byte{0x1f, 0x8b}, magic, "gzip-compressed")

	root := t.TempDir()
	run(t, "tar", "--numeric-owner", "-xzf", a, "-C", root)
	wslConf, err := os.ReadFile(filepath.Join(root, "etc", "wsl.conf"))
	require.NoError(t, err)
	assert.Equal(t, map[string]map[string]string{
		"boot": {"systemd": "true"},
		"user": {"default": "dev"},
	}, parseINI(wslConf))

	chroot := chrootIn(t, root)
	assert.Equal(t, "kiln-wsl\n", chroot("cat", "/etc/hostname"))
	assert.Contains(t, chroot("id", "dev"), "(users)")
	assert.Contains(t, chroot("dpkg-query", "-W", "-f", "${Package}\n", "jq"), "jq")
	assert.NoDirExists(t, filepath.Join(root, "boot", "grub"))
	requireNoKernel(t, root)
	st, err := os.Stat(filepath.Join(root, "etc/machine-id"))
	require.NoError(t, err)
	assert.Zero(t, st.Size(), "machine-id is empty, so each instance gets its own")

	again.assertRebuildsIdentically(t, m, a, &epoch)
}

// parseINI reads wsl.conf's sections and keys; comments and blank lines
// are skipped and a key outside any section is kept under "".
func parseINI(b []byte) map[string]map[string]string {
	out := map[string]map[string]string{}
	section := ""
	for _, line := range strings.Split(string(bytes.TrimSpace(b)), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, _ := strings.Cut(line, "=")
			if out[section] == nil {
				out[section] = map[string]string{}
			}
			out[section][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
