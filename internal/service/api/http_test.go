package api

import (
	"encoding/base64"
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
)

// errorShape checks a reply is the error catalogue's body.
func errorShape(t *testing.T, r reply) errorBody {
	t.Helper()
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	var e errorBody
	require.NoError(t, json.Unmarshal(r.body, &e), string(r.body))
	require.NotEmpty(t, e.Errors, string(r.body))
	assert.NotEmpty(t, e.RequestID)
	return e
}

// A body in a media type the operation does not take is 415, naming the
// types it does take.
func TestUnsupportedContentType(t *testing.T) {
	ts := newTestServer(t, nil)
	body, err := json.Marshal(composeBody())
	require.NoError(t, err)
	for _, tc := range []struct {
		name, method, path, ctype, takes string
	}{
		{"compose as text", "POST", "/compose", "text/plain", "application/json"},
		{"compose as form", "POST", "/compose", "application/x-www-form-urlencoded", "application/json"},
		{"blueprint as text", "POST", "/blueprints", "text/plain; charset=utf-8", "application/json"},
		{"import as text", "POST", "/blueprints/import?distribution=debian-12&architecture=x86_64&image_type=qcow2", "text/plain", "application/toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "acme", tc.method, tc.path, string(body), "Content-Type", tc.ctype)
			assert.Equal(t, http.StatusUnsupportedMediaType, r.status, string(r.body))
			e := errorShape(t, r)
			assert.Contains(t, e.Errors[0].Detail, tc.takes)
			assert.Equal(t, "Unsupported Media Type", e.Errors[0].Title)
		})
	}
	// With the right type the same body is taken.
	assert.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/compose", string(body), "Content-Type", "application/json; charset=utf-8").status)
}

// A wrong method on a known path is 405 with the methods it takes.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/composes/7f9b3ae8-5e8f-4c27-9a1a-2b6a5c3b1d10", "DELETE, GET"},
		{"GET", "/compose", "POST"},
		{"POST", "/composes/7f9b3ae8-5e8f-4c27-9a1a-2b6a5c3b1d10/download", "GET, HEAD"},
		{"PATCH", "/blueprints", "GET, POST"},
	} {
		r := ts.do(t, "acme", tc.method, tc.path, nil)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, "%s %s", tc.method, tc.path)
		assert.Equal(t, tc.allow, r.header.Get("Allow"), "%s %s", tc.method, tc.path)
		errorShape(t, r)
	}
}

// Every 401 says how to authenticate.
func TestUnauthorizedSaysHowToAuthenticate(t *testing.T) {
	ts := newTestServer(t, nil)
	trusted := newTestServer(t, func(c *Config) { c.TrustIdentityHeader = true })
	noOrg := base64.StdEncoding.EncodeToString([]byte(`{"identity":{}}`))
	for _, tc := range []struct {
		name    string
		ts      *testServer
		path    string
		headers []string
	}{
		{"no credentials", ts, "/composes", nil},
		{"unknown token", ts, "/composes", []string{"Authorization", "Bearer kiln_nope"}},
		{"not bearer", ts, "/composes", []string{"Authorization", "Basic Zm9vOmJhcg=="}},
		{"identity without org", trusted, "/composes", []string{"x-rh-identity", noOrg}},
		{"signed link without a key", ts, "/composes/7f9b3ae8-5e8f-4c27-9a1a-2b6a5c3b1d10/download?org=acme&expires=1&signature=" + strings.Repeat("0", 64), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.ts.do(t, "", "GET", tc.path, nil, tc.headers...)
			require.Equal(t, http.StatusUnauthorized, r.status, string(r.body))
			assert.Equal(t, `Bearer realm="kiln"`, r.header.Get("WWW-Authenticate"))
		})
	}
}

// A JSON body is one value: anything after it is refused, naming it.
func TestTrailingDataAfterJSONIsRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	compose, err := json.Marshal(composeBody())
	require.NoError(t, err)
	bp, err := json.Marshal(blueprintBody("trailing"))
	require.NoError(t, err)
	for _, tc := range []struct{ name, method, path, body string }{
		{"compose then object", "POST", "/compose", string(compose) + ` {"b":2}`},
		{"compose then garbage", "POST", "/compose", string(compose) + `xyz`},
		{"blueprint then object", "POST", "/blueprints", string(bp) + `{"b":2}`},
		{"render then garbage", "POST", "/blueprints/render", string(bp) + ` xyz`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "acme", tc.method, tc.path, tc.body)
			assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
			assert.Contains(t, errorShape(t, r).Errors[0].Detail, "after the JSON value")
		})
	}
	r := ts.do(t, "acme", "GET", "/composes", nil)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"], "nothing was stored")
	r = ts.do(t, "acme", "GET", "/blueprints", nil)
	assert.Equal(t, float64(0), r.json(t)["meta"].(map[string]any)["count"], "nothing was stored")

	// A blueprint's compose takes an optional body, held to the same rule.
	created := ts.do(t, "acme", "POST", "/blueprints", string(bp))
	require.Equal(t, http.StatusCreated, created.status, string(created.body))
	id := created.json(t)["id"].(string)
	r = ts.do(t, "acme", "POST", "/blueprints/"+id+"/compose", `{"image_types":["qcow2"]}{}`)
	assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	assert.Contains(t, errorShape(t, r).Errors[0].Detail, "after the JSON value")
	// Trailing white space is no value.
	assert.Equal(t, http.StatusCreated, ts.do(t, "acme", "POST", "/compose", string(compose)+" \n").status)
}

// HEAD on a download answers its headers and no body, with a token and
// through a signed link.
func TestHeadDownload(t *testing.T) {
	arts := artifacts.Local{Dir: t.TempDir()}
	ts := newTestServer(t, func(c *Config) {
		c.Artifacts = arts
		c.DownloadKey = []byte("0123456789abcdef0123456789abcdef")
	})
	id := finishedCompose(t, ts, arts)
	head := func(u string, header ...string) *http.Response {
		req, err := http.NewRequest("HEAD", ts.url+u, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Empty(t, b)
		return resp
	}
	resp := head(Prefix+"/composes/"+id+"/download", "Authorization", "Bearer "+ts.tokens["acme"])
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, strconv.Itoa(len(image)), resp.Header.Get("Content-Length"))
	assert.Equal(t, `attachment; filename="disk.qcow2"`, resp.Header.Get("Content-Disposition"))
	assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
	assert.Equal(t, "c0ffee", resp.Header.Get("X-Checksum-Sha256"))

	link := uploadOptions(t, ts, id)["url"].(string)
	require.Contains(t, link, "signature=")
	resp = head(link)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, strconv.Itoa(len(image)), resp.Header.Get("Content-Length"))

	resp = head(strings.Replace(link, "org=acme", "org=globex", 1))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a HEAD is checked as a GET is")
	resp = head(Prefix + "/composes/" + id + "/download")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer realm="kiln"`, resp.Header.Get("WWW-Authenticate"))
}

// An attacker cycling org identities does not grow the rate limiter's
// state without bound; the orgs in use keep their buckets.
func TestRateLimiterStateIsBounded(t *testing.T) {
	l := &limiters{cfg: RateLimit{PerSecond: 1, Burst: 2, MaxOrgs: 100}}
	now := time.Now()
	for range 2 {
		ok, _ := l.allow("acme", now)
		require.True(t, ok)
	}
	for i := range 10_000 {
		l.allow("org-"+strconv.Itoa(i), now)
		if i%50 == 0 {
			_, _ = l.allow("acme", now) // acme keeps being used
		}
	}
	assert.LessOrEqual(t, l.len(), 100)
	ok, _ := l.allow("acme", now)
	assert.False(t, ok, "acme's bucket, in use throughout, was kept and is empty")
}
