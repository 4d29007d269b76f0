package apiclient_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/apiclient"
	"github.com/kiln-project/kiln/internal/apimodel"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service/api"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

// newService runs the real API handler over a fresh SQLite database and
// returns its address and a token of org acme.
func newService(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kiln.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	reg, err := distro.Load()
	require.NoError(t, err)
	s, err := api.New(api.Config{Store: db, Distros: reg, MaxBodyBytes: 64 << 10})
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	secret, hash := store.NewSecret("kiln_")
	require.NoError(t, db.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: "acme", Name: "test", Hash: hash, CreatedAt: time.Now()}))
	return srv.URL, secret
}

// webCustomizations are a small blueprint's customizations in the API's
// names.
func webCustomizations(t *testing.T) map[string]any {
	t.Helper()
	bp, err := blueprint.Parse([]byte(`
name = "web"
[[packages]]
name = "nginx"
[customizations]
hostname = "web01"
[[customizations.user]]
name = "ops"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"
`), blueprint.FormatTOML)
	require.NoError(t, err)
	cust, err := apimodel.CustomizationsFromBlueprint(bp)
	require.NoError(t, err)
	return cust
}

func qcow2(types ...string) []apimodel.ImageRequest {
	var out []apimodel.ImageRequest
	for _, t := range types {
		out = append(out, apimodel.ImageRequest{Architecture: "x86_64", ImageType: t, UploadRequest: apimodel.UploadRequest{Type: "local"}})
	}
	return out
}

// A compose's life through the client: submitted, pending, listed, its
// image not there yet, deleted, then gone.
func TestComposeLifecycle(t *testing.T) {
	url, token := newService(t)
	c := &apiclient.Client{Server: url + "/", Token: token}
	ctx := context.Background()

	id, err := c.CreateCompose(ctx, apimodel.ComposeRequest{Distribution: "debian-12", ImageName: "web", ClientID: "api",
		ImageRequests: qcow2("qcow2"), Customizations: webCustomizations(t)})
	require.NoError(t, err)
	require.Regexp(t, `^[0-9a-f-]{36}$`, id)

	st, err := c.ComposeStatus(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "pending", st.ImageStatus.Status)
	assert.Nil(t, st.ImageStatus.Error)
	assert.Contains(t, string(st.Request), `"hostname":"web01"`)
	require.NotEmpty(t, st.ImageStatus.Timeline)
	assert.Equal(t, "queued", st.ImageStatus.Timeline[0].Step)

	page, err := c.Composes(ctx, 10, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, page.Meta.Count)
	require.Len(t, page.Data, 1)
	assert.Equal(t, id, page.Data[0].ID)
	assert.Equal(t, "web", page.Data[0].ImageName)

	_, err = c.Download(ctx, id)
	var e *apiclient.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusNotFound, e.StatusCode)
	assert.Contains(t, err.Error(), "no image (yet)")

	require.NoError(t, c.DeleteCompose(ctx, id))
	_, err = c.ComposeStatus(ctx, id)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusNotFound, e.StatusCode)
	assert.Contains(t, err.Error(), "404")
}

// The service's refusals come back as an *Error with each problem's
// detail, naming the request's field.
func TestRefusalsNameTheField(t *testing.T) {
	url, token := newService(t)
	ctx := context.Background()
	c := &apiclient.Client{Server: url, Token: token}

	cust := webCustomizations(t)
	cust["users"].([]any)[0].(map[string]any)["ssh_key"] = "not a key"
	_, err := c.CreateCompose(ctx, apimodel.ComposeRequest{Distribution: "debian-12", ImageRequests: qcow2("floppy"), Customizations: cust})
	var e *apiclient.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusBadRequest, e.StatusCode)
	// Both problems in one answer: the customizations' and the image
	// request's.
	require.Len(t, e.Details, 2)
	assert.Regexp(t, `^customizations\.users\[0\]\.ssh_key: `, e.Details[0])
	assert.Regexp(t, `^image_requests\[0\]\.image_type: unknown image type "floppy"`, e.Details[1])
	assert.Contains(t, err.Error(), "the service refused (400 Bad Request):\n  customizations.users[0].ssh_key: ")

	_, err = c.CreateCompose(ctx, apimodel.ComposeRequest{Distribution: "debian-12", ImageRequests: qcow2("floppy"), Customizations: webCustomizations(t)})
	require.ErrorAs(t, err, &e)
	assert.Contains(t, e.Details[0], `unknown image type "floppy"`)

	wrong := &apiclient.Client{Server: url, Token: "kiln_wrong"}
	_, err = wrong.Composes(ctx, 10, 0)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusUnauthorized, e.StatusCode)
}

// A blueprint pushed twice is one blueprint with two versions; its export
// is the TOML file.
func TestPushAndExportBlueprint(t *testing.T) {
	url, token := newService(t)
	ctx := context.Background()
	c := &apiclient.Client{Server: url, Token: token}
	req := apimodel.BlueprintRequest{Name: "web", Description: "a web server", Distribution: "debian-12",
		ImageRequests: qcow2("qcow2"), Customizations: webCustomizations(t)}

	id, version, err := c.PushBlueprint(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 1, version)
	req.ImageRequests = qcow2("qcow2", "raw")
	again, version, err := c.PushBlueprint(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, id, again)
	assert.Equal(t, 2, version)

	found, err := c.FindBlueprints(ctx, "web")
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, id, found[0].ID)
	none, err := c.FindBlueprints(ctx, "db")
	require.NoError(t, err)
	assert.Empty(t, none)

	stored, err := c.Blueprint(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "web01", stored.Customizations["hostname"])
	assert.Len(t, stored.ImageRequests, 2)

	file, err := c.ExportBlueprint(ctx, id)
	require.NoError(t, err)
	bp, err := blueprint.Parse(file, blueprint.FormatTOML)
	require.NoError(t, err, string(file))
	assert.Equal(t, "web01", *bp.Customizations.Hostname)
	assert.Equal(t, "ops", bp.Customizations.User[0].Name)
}

// The log and the image stream from the reply, with the token sent and
// the image's name taken from Content-Disposition; a refusal without an
// error body gives the status, and a service that cannot be reached is
// named.
func TestStreams(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer kiln_t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case apimodel.Prefix + "/composes/c1/logs":
			io.WriteString(w, "line 1\nline 2\n")
		case apimodel.Prefix + "/composes/c1/download":
			w.Header().Set("Content-Disposition", `attachment; filename="../web-debian-12-x86_64.qcow2"`)
			io.WriteString(w, "QFI\xfb")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := &apiclient.Client{Server: srv.URL, Token: "kiln_t"}

	log, err := c.ComposeLogs(ctx, "c1")
	require.NoError(t, err)
	data, err := io.ReadAll(log)
	require.NoError(t, err)
	log.Close()
	assert.Equal(t, "line 1\nline 2\n", string(data))

	img, err := c.Download(ctx, "c1")
	require.NoError(t, err)
	data, err = io.ReadAll(img.Body)
	require.NoError(t, err)
	img.Body.Close()
	assert.Equal(t, "QFI\xfb", string(data))
	assert.Equal(t, "web-debian-12-x86_64.qcow2", img.Filename, "no directory of the service's choosing")

	// A reply without an error body still says what the service answered.
	_, err = (&apiclient.Client{Server: srv.URL}).Download(ctx, "c1")
	var e *apiclient.Error
	require.ErrorAs(t, err, &e)
	assert.Empty(t, e.Details)
	assert.EqualError(t, err, "the service refused: 401 Unauthorized")

	srv.Close()
	_, err = c.ComposeLogs(ctx, "c1")
	assert.ErrorContains(t, err, "reaching the service at "+srv.URL)
}
