package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesTheAssets(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{
		"/":                      "text/html; charset=utf-8",
		"/index.html":            "text/html; charset=utf-8",
		"/app.js":                "text/javascript; charset=utf-8",
		"/api.js":                "text/javascript; charset=utf-8",
		"/pages/images.js":       "text/javascript; charset=utf-8",
		"/pages/wizard.js":       "text/javascript; charset=utf-8",
		"/pages/wizard/state.js": "text/javascript; charset=utf-8",
		"/style.css":             "text/css; charset=utf-8",
		"/favicon.svg":           "image/svg+xml",
	} {
		rec := get(t, h, "GET", path)
		require.Equal(t, http.StatusOK, rec.Code, path)
		assert.Equal(t, ctype, rec.Header().Get("Content-Type"), path)
		assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), path)
		assert.Equal(t, CSP, rec.Header().Get("Content-Security-Policy"), path)
		assert.Equal(t, "no-cache", rec.Header().Get("Cache-Control"), path)
		assert.NotEmpty(t, rec.Header().Get("ETag"), path)
	}
	index := get(t, h, "GET", "/").Body.String()
	assert.Contains(t, index, `<script type="module" src="/app.js"></script>`)
	assert.Contains(t, index, `href="/wizard.css"`)
	assert.NotRegexp(t, `<script>|<script type="module">|\sstyle=|\son[a-z]+=`, index, "no inline script, style or handler")
}

// A module that imports a file the binary does not carry fails only in
// the browser, and only on the page that loads it; every relative import
// of every module must name an embedded file.
func TestModuleImportsResolve(t *testing.T) {
	h := Handler()
	imports := regexp.MustCompile(`(?:\bfrom\s*|\bimport\s*\(\s*|^import\s*)'([^']+)'`)
	modules := 0
	err := fs.WalkDir(embedded, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		modules++
		src, err := fs.ReadFile(embedded, p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(src), "\n") {
			for _, m := range imports.FindAllStringSubmatch(strings.TrimSpace(line), -1) {
				spec := m[1]
				if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
					t.Errorf("%s imports %q: modules import files of the UI by relative path", p, spec)
					continue
				}
				target := path.Join("/", strings.TrimPrefix(path.Dir(p), "assets"), spec)
				rec := get(t, h, "GET", target)
				assert.Equal(t, http.StatusOK, rec.Code, "%s imports %s (%s)", p, spec, target)
				assert.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"), "%s imports %s", p, spec)
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, modules, 10, "the modules under assets/")
}

func TestCSPAllowsOnlyThisOrigin(t *testing.T) {
	for _, d := range strings.Split(CSP, ";") {
		f := strings.Fields(d)
		require.NotEmpty(t, f)
		for _, src := range f[1:] {
			assert.Contains(t, []string{"'self'", "'none'"}, src, d)
		}
	}
	assert.Contains(t, CSP, "frame-ancestors 'none'")
	assert.Contains(t, CSP, "script-src 'self'")
}

func TestHandlerRevalidatesWithETag(t *testing.T) {
	h := Handler()
	first := get(t, h, "GET", "/app.js")
	etag := first.Header().Get("ETag")
	again := get(t, h, "GET", "/app.js", "If-None-Match", etag)
	assert.Equal(t, http.StatusNotModified, again.Code)
	assert.Empty(t, again.Body.String())
	changed := get(t, h, "GET", "/app.js", "If-None-Match", `"other"`)
	assert.Equal(t, http.StatusOK, changed.Code)
	assert.NotEqual(t, etag, get(t, h, "GET", "/style.css").Header().Get("ETag"))
}

func TestHandlerUnknownPaths(t *testing.T) {
	h := Handler()
	rec := get(t, h, "GET", "/no/such/page")
	assert.Equal(t, http.StatusNotFound, rec.Code)

	api := get(t, h, "GET", "/api/other/v1/thing")
	assert.Equal(t, http.StatusNotFound, api.Code)
	assert.Equal(t, "application/json", api.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"errors":[{"title":"Not Found","detail":"no API operation at /api/other/v1/thing"}]}`, api.Body.String())

	post := get(t, h, "POST", "/")
	assert.Equal(t, http.StatusMethodNotAllowed, post.Code)
	head := get(t, h, "HEAD", "/style.css")
	assert.Equal(t, http.StatusOK, head.Code)
	assert.Empty(t, head.Body.String())
}
