package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A self-signed CA certificate.
const apiTestCACert = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUER5fsDMtNSYXPCweEuMiFtDnmRkwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTRXhhbXBsZSBJbnRlcm5hbCBDQTAgFw0yNjExMjUxOTQ1NDda
GA8yMTI2MTEwMTE5NDU0N1owHjEcMBoGA1UEAwwTRXhhbXBsZSBJbnRlcm5hbCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKAeQzVP1UbffquVXcfprQNz5G2h
LJg+zF1XG4syZuQRTUwWsbux6CqZYfaOd3TnJUDgOxYXh+F6GoAiJeBvFQyjUzBR
MB0GA1UdDgQWBBS+Y70mGUaCJ1bS9gTLH9crHD2TdjAfBgNVHSMEGDAWgBS+Y70m
GUaCJ1bS9gTLH9crHD2TdjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQC1QygIxk6IBfFH1TrQqRGGLd4PGjYTSoQrm7wYbUs+yQIgS43JGnfUtx/L
AuBmbwOOYFkracywoEOAptGZJeMLRH8=
-----END CERTIFICATE-----`

// image-builder's cacerts reach the build; its fips is taken when off,
// as its frontend sends it, and refused at its field when on.
func TestCACertsAndFIPS(t *testing.T) {
	ts := newTestServer(t, nil)
	body := composeBody()
	cust := body["customizations"].(map[string]any)
	cust["cacerts"] = map[string]any{"pem_certs": []any{apiTestCACert}}
	cust["fips"] = map[string]any{"enabled": false}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	js, err := ts.db.ComposeJobs(context.Background(), "acme", r.json(t)["id"].(string))
	require.NoError(t, err)
	assert.Contains(t, string(js[0].Args), `cacerts`)
	assert.NotContains(t, strings.ToLower(string(js[0].Args)), "fips")

	cust["fips"] = map[string]any{"enabled": true}
	cust["cacerts"] = map[string]any{"pem_certs": []any{"not a certificate"}}
	r = ts.do(t, "acme", "POST", "/compose", body)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	fields := itemFields(t, r)
	assert.Contains(t, fields, "customizations.fips.enabled")
	assert.Contains(t, fields, "customizations.cacerts.pem_certs[0]")
}

// image-builder's disk reaches the build as it is, and its problems name
// their field in the request.
func TestDiskLikeImageBuilder(t *testing.T) {
	ts := newTestServer(t, nil)
	body := composeBody()
	cust := body["customizations"].(map[string]any)
	delete(cust, "filesystem")
	cust["disk"] = map[string]any{"type": "gpt", "minsize": "12 GiB", "partitions": []any{
		map[string]any{"mountpoint": "/", "minsize": "4 GiB", "fs_type": "ext4"},
		map[string]any{"type": "plain", "mountpoint": "/srv", "minsize": "2 GiB", "fs_type": "ext4", "label": "srv",
			"part_type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
	}}
	r := ts.do(t, "acme", "POST", "/compose", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	js, err := ts.db.ComposeJobs(context.Background(), "acme", r.json(t)["id"].(string))
	require.NoError(t, err)
	assert.Contains(t, string(js[0].Args), `"mountpoint":"/srv"`)
	assert.Contains(t, string(js[0].Args), `0FC63DAF-8483-4772-8E79-3D69D8477DE4`)

	parts := cust["disk"].(map[string]any)["partitions"].([]any)
	parts[1].(map[string]any)["part_type"] = "not-a-guid"
	parts[0].(map[string]any)["fs_type"] = "ntfs"
	r = ts.do(t, "acme", "POST", "/compose", body)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	fields := itemFields(t, r)
	assert.Contains(t, fields, "customizations.disk.partitions[1].part_type")
	assert.Contains(t, fields, "customizations.disk.partitions[0].fs_type")
}

// image-builder's frontend sends file contents base64-encoded: they are
// decoded for the build and the osbuild export, and kept as sent in the
// stored request; data that does not decode is refused at its field.
func TestBase64FileData(t *testing.T) {
	ts := newTestServer(t, nil)
	body := blueprintBody("files")
	cust := body["customizations"].(map[string]any)
	cust["files"] = []any{map[string]any{"path": "/etc/motd", "data": base64.StdEncoding.EncodeToString([]byte("welcome\n")), "data_encoding": "base64"}}
	repo := customRepository()
	delete(repo, "suite")
	delete(repo, "components")
	cust["custom_repositories"] = []any{repo}
	r := ts.do(t, "acme", "POST", "/blueprints", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)

	r = ts.do(t, "acme", "GET", "/blueprints/"+id+"/export", nil, "Accept", "application/toml")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Contains(t, string(r.body), `data = "welcome\n"`)
	assert.Contains(t, string(r.body), `suite = "bookworm"`)
	assert.NotContains(t, string(r.body), "data_encoding")
	r = ts.do(t, "acme", "GET", "/blueprints/"+id, nil)
	assert.Contains(t, string(r.body), `"data_encoding":"base64"`)

	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	js, err := ts.db.ComposeJobs(context.Background(), "acme", r.json2(t)[0]["id"].(string))
	require.NoError(t, err)
	assert.Contains(t, string(js[0].Args), `"data":"welcome\n"`)

	cust["files"] = []any{
		map[string]any{"path": "/etc/a", "data": "not base64!", "data_encoding": "base64"},
		map[string]any{"path": "/etc/b", "data": base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}), "data_encoding": "base64"},
		map[string]any{"path": "/etc/c", "data": "plain text", "data_encoding": "plain"},
	}
	body["name"] = "files-bad"
	r = ts.do(t, "acme", "POST", "/blueprints", body)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	fields := itemFields(t, r)
	assert.ElementsMatch(t, []string{"customizations.files[0].data", "customizations.files[1].data"}, fields)
}
