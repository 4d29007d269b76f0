package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/service/artifacts"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/internal/workerproto"
)

const image = "0123456789abcdefghij"

// finishedCompose submits a compose and runs its jobs as a worker would,
// storing its image in arts.
func finishedCompose(t *testing.T, ts *testServer, arts artifacts.Store) string {
	t.Helper()
	ctx := context.Background()
	r := ts.do(t, "acme", "POST", "/compose", composeBody())
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	id := r.json(t)["id"].(string)
	for _, kind := range []string{workerproto.KindDepsolve, workerproto.KindBuild, workerproto.KindUpload} {
		l, err := ts.db.Dequeue(ctx, []string{kind}, []string{"x86_64"}, store.Worker{Name: "test"}, time.Minute)
		require.NoError(t, err, kind)
		var result any = map[string]any{}
		if kind == workerproto.KindBuild {
			_, err := arts.Put(ctx, id, "disk.qcow2", strings.NewReader(image))
			require.NoError(t, err)
			result = workerproto.BuildResult{Filename: "disk.qcow2", Size: int64(len(image)), SHA256: "c0ffee"}
		}
		b, _ := json.Marshal(result)
		require.NoError(t, ts.db.Finish(ctx, l.Job.ID, l.Token, b, nil))
	}
	return id
}

func uploadOptions(t *testing.T, ts *testServer, id string) map[string]any {
	t.Helper()
	r := ts.do(t, "acme", "GET", "/composes/"+id, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	st := r.json(t)["image_status"].(map[string]any)
	require.Equal(t, "success", st["status"])
	return st["upload_status"].(map[string]any)["options"].(map[string]any)
}

// The local store serves the image itself, with ranges; its link lasts
// until retention removes the image.
func TestDownloadLocal(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	ts := newTestServer(t, func(c *Config) { c.Artifacts = arts; c.RetentionMaxAge = 14 * 24 * time.Hour })
	id := finishedCompose(t, ts, arts)

	r := ts.do(t, "acme", "GET", "/composes/"+id+"/download", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, image, string(r.body))
	assert.Equal(t, `attachment; filename="disk.qcow2"`, r.header.Get("Content-Disposition"))
	assert.Equal(t, "c0ffee", r.header.Get("X-Checksum-Sha256"))
	r = ts.do(t, "acme", "GET", "/composes/"+id+"/download", nil, "Range", "bytes=10-14")
	require.Equal(t, http.StatusPartialContent, r.status)
	assert.Equal(t, "abcde", string(r.body))
	assert.Equal(t, "bytes 10-14/20", r.header.Get("Content-Range"))

	opts := uploadOptions(t, ts, id)
	assert.Equal(t, Prefix+"/composes/"+id+"/download", opts["url"])
	expires, err := time.Parse(time.RFC3339, opts["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(14*24*time.Hour), expires, time.Minute)

	// Without the retention known, no expiry is claimed.
	ts = newTestServer(t, func(c *Config) { c.Artifacts = arts })
	id = finishedCompose(t, ts, arts)
	assert.NotContains(t, uploadOptions(t, ts, id), "expires_at")
}

// A store that presigns sends the client to the bucket.
func TestDownloadPresigned(t *testing.T) {
	spec, _ := testhost.StartS3(t)
	arts, err := artifacts.Open(spec, "")
	require.NoError(t, err)
	ts := newTestServer(t, func(c *Config) {
		c.Artifacts = arts
		c.DownloadExpiry = 2 * time.Hour
		c.RetentionMaxAge = 14 * 24 * time.Hour
	})
	id := finishedCompose(t, ts, arts)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest("GET", ts.url+Prefix+"/composes/"+id+"/download", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ts.tokens["acme"])
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	loc := resp.Header.Get("Location")
	assert.Contains(t, loc, "X-Amz-Expires=7200")
	assert.Equal(t, "c0ffee", resp.Header.Get("X-Checksum-Sha256"))

	// Followed, the redirect downloads the image, ranges included.
	r := ts.do(t, "acme", "GET", "/composes/"+id+"/download", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, image, string(r.body))
	assert.Equal(t, `attachment; filename="disk.qcow2"`, r.header.Get("Content-Disposition"))
	get, err := http.NewRequest("GET", loc, nil)
	require.NoError(t, err)
	get.Header.Set("Range", "bytes=10-14")
	resp, err = http.DefaultClient.Do(get)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, "abcde", string(body))

	// The status gives a presigned URL and when it expires.
	opts := uploadOptions(t, ts, id)
	assert.Contains(t, opts["url"], "X-Amz-Signature=")
	expires, err := time.Parse(time.RFC3339, opts["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), expires, time.Minute)
	resp, err = http.Get(opts["url"].(string))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, image, string(body))

	// Retention bounds the expiry.
	ts2 := newTestServer(t, func(c *Config) {
		c.Artifacts = arts
		c.RetentionMaxAge = time.Hour
	})
	id = finishedCompose(t, ts2, arts)
	expires, err = time.Parse(time.RFC3339, uploadOptions(t, ts2, id)["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), expires, time.Minute)

	// An image that is gone is a 404 here, not a redirect to a 404.
	require.NoError(t, arts.Delete(context.Background(), id))
	assert.Equal(t, http.StatusNotFound, ts2.do(t, "acme", "GET", "/composes/"+id+"/download", nil).status)
}

// With a download key, a local image's status links to a signed URL that
// downloads without a token, for that compose only, until it expires.
func TestDownloadLocalSignedLink(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	now := time.Now()
	ts := newTestServer(t, func(c *Config) {
		c.Artifacts = arts
		c.DownloadKey = []byte("0123456789abcdef0123456789abcdef")
		c.DownloadExpiry = time.Hour
		c.RetentionMaxAge = 14 * 24 * time.Hour
		c.Now = func() time.Time { return now }
	})
	id := finishedCompose(t, ts, arts)
	other := finishedCompose(t, ts, arts)

	opts := uploadOptions(t, ts, id)
	link := opts["url"].(string)
	require.True(t, strings.HasPrefix(link, Prefix+"/composes/"+id+"/download?"), link)
	expires, err := time.Parse(time.RFC3339, opts["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, now.Add(time.Hour), expires, time.Second, "the download expiry, being shorter than retention")

	get := func(u string, header ...string) (int, string) {
		req, err := http.NewRequest("GET", ts.url+u, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get(link)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, image, body, "no token needed")
	status, body = get(link, "Range", "bytes=10-14")
	assert.Equal(t, http.StatusPartialContent, status)
	assert.Equal(t, "abcde", body)

	// The same signature does not open another compose, another org's
	// view, or a later expiry.
	status, _ = get(strings.Replace(link, id, other, 1))
	assert.Equal(t, http.StatusForbidden, status)
	status, _ = get(strings.Replace(link, "org=acme", "org=globex", 1))
	assert.Equal(t, http.StatusForbidden, status)
	later := strings.Replace(link, "expires="+strconv.FormatInt(expires.Unix(), 10), "expires="+strconv.FormatInt(expires.Unix()+3600, 10), 1)
	require.NotEqual(t, link, later)
	status, _ = get(later)
	assert.Equal(t, http.StatusForbidden, status)
	status, body = get(Prefix + "/composes/" + id + "/download?signature=" + strings.Repeat("0", 64))
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, "incomplete")

	// Once expired, the link stops working.
	now = now.Add(2 * time.Hour)
	status, body = get(link)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, "expired")

	// A server without a key takes no signed links.
	ts2 := newTestServer(t, func(c *Config) { c.Artifacts = arts })
	req, err := http.NewRequest("GET", ts2.url+link, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
