package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/apimodel"
)

// The architectures listing names each type by every name a request may
// use: kiln's and image-builder's, which the hosted frontend's target
// picker reads.
func TestArchitecturesListImageBuilderNames(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "", "GET", "/architectures/debian-12", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	items := r.json2(t)
	var x86, arm map[string]any
	for _, it := range items {
		switch it["arch"] {
		case "x86_64":
			x86 = it
		case "aarch64":
			arm = it
		}
	}
	require.NotNil(t, x86, string(r.body))
	types := x86["image_types"].([]any)
	for _, name := range []string{"qcow2", "guest-image", "ami", "aws", "gce", "gcp", "vhd", "azure", "vmdk", "vsphere", "ova", "vsphere-ova", "wsl", "image-installer", "container", "oci"} {
		assert.Contains(t, types, name)
	}
	require.NotNil(t, arm, "aarch64 is listed: %s", r.body)
	types = arm["image_types"].([]any)
	for _, name := range []string{"qcow2", "guest-image", "raw", "ami", "aws", "tar", "container", "oci", "vhd", "azure"} {
		assert.Contains(t, types, name, "aarch64")
	}
}

// The distribution keys its architectures by name, each with its image
// types by name in image-builder's ImageTypeInfo shape.
func TestDistributionInImageBuilderShape(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "", "GET", "/distributions/debian-12", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	d := r.json(t)
	assert.Equal(t, "debian-12", d["name"])
	assert.Equal(t, "bookworm", d["codename"])
	assert.Equal(t, "12", d["releasever"])
	arches := d["architectures"].(map[string]any)
	x86 := arches["x86_64"].(map[string]any)
	assert.Equal(t, "x86_64", x86["name"])
	ami := x86["image_types"].(map[string]any)["ami"].(map[string]any)
	assert.Equal(t, "ami", ami["name"])
	assert.Equal(t, []any{"aws"}, ami["aliases"])
	assert.Contains(t, []any{"legacy", "uefi", "hybrid"}, ami["boot_mode"])
	assert.NotEmpty(t, ami["mime_type"])
	assert.Greater(t, ami["default_size"], float64(0))
	conforms(t, "GET", "/distributions/debian-12", r)
}

// The filters narrow the answer; a name the distribution lacks is refused
// at its parameter, never ignored.
func TestDistributionFilters(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "", "GET", "/distributions/debian-12?image_type=aws&image_type=guest-image&architecture=x86_64", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	d := r.json(t)
	arches := d["architectures"].(map[string]any)
	require.Len(t, arches, 1)
	types := arches["x86_64"].(map[string]any)["image_types"].(map[string]any)
	assert.Len(t, types, 2)
	assert.Contains(t, types, "ami")
	assert.Contains(t, types, "qcow2")
	assert.Len(t, d["image_types"], 2)

	r = ts.do(t, "", "GET", "/distributions/debian-12?image_type=qcow2&architecture=aarch64", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	arches = r.json(t)["architectures"].(map[string]any)
	require.Len(t, arches, 1)
	assert.Contains(t, arches["aarch64"].(map[string]any)["image_types"], "qcow2", "aarch64 is built")

	for _, tc := range []struct{ query, want string }{
		{"image_type=edge-commit", "query parameter image_type: edge-commit is an image type of image-builder that this service does not build"},
		{"image_type=nonesuch", `query parameter image_type: debian-12 has no image type or alias "nonesuch"`},
		{"architecture=riscv64&image_type=qcow2", "query parameter architecture"},
	} {
		r := ts.do(t, "", "GET", "/distributions/debian-12?"+tc.query, nil)
		assert.Equal(t, http.StatusBadRequest, r.status, tc.query)
		assert.Contains(t, r.details(t), tc.want, tc.query)
	}
	for _, q := range []string{"kind=bootc", "type=aws", "arch=x86_64", "distro=debian-12"} {
		r := ts.do(t, "", "GET", "/distributions?"+q, nil)
		assert.Equal(t, http.StatusBadRequest, r.status, q)
		errorShape(t, r)
	}
}

// Image-builder's types kiln has no type for are refused at the request's
// field, saying why.
func TestUnbuiltImageBuilderTypesRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, name := range []string{"edge-commit", "edge-installer", "pxe-tar-xz", "network-installer"} {
		body := composeBody()
		body["image_requests"].([]any)[0].(map[string]any)["image_type"] = name
		r := ts.do(t, "acme", "POST", "/compose", body)
		assert.Equal(t, http.StatusBadRequest, r.status, name)
		f := r.fields(t)
		require.NotEmpty(t, f, name)
		assert.Equal(t, "image_requests[0].image_type", f[0].Field, name)
		assert.Contains(t, f[0].Detail, "does not build", name)
	}
}

// Every image-builder type name is either a name of the kiln type the
// table says, in the distribution data, or one kiln says it does not
// build, and why.
func TestImageBuilderTypeNamesResolve(t *testing.T) {
	ts := newTestServer(t, nil)
	for ib, kiln := range apimodel.ImageBuilderImageTypes {
		if kiln == "" {
			assert.NotEmpty(t, apimodel.UnbuiltImageTypes[ib], "%s says why kiln does not build it", ib)
			assert.Empty(t, ts.server.imageTypeName(ib), "%s names no kiln type", ib)
			continue
		}
		assert.Equal(t, kiln, ts.server.imageTypeName(ib), "%s names kiln's %s", ib, kiln)
	}
	for ib := range apimodel.UnbuiltImageTypes {
		assert.Contains(t, apimodel.ImageBuilderImageTypes, ib)
	}
}
