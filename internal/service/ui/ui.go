// Package ui serves kiln's web interface: static ES modules, a stylesheet
// and one HTML page, embedded in the binary and served at / by kiln serve.
// There is no build step: what is in assets/ is what the browser gets.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var embedded embed.FS

// CSP allows nothing but this origin: scripts and styles come from files
// here (no inline code), API calls go to the same server, and no other
// site may frame the UI.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// types are the content types of the files the UI ships, set here rather
// than taken from the host's MIME database, which differs between hosts.
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the UI: / is index.html, every other path is a file of
// assets/ or 404. Paths under /api/ that reach it answer a JSON 404, like
// the API's own, so a client never gets HTML where it expects JSON.
func Handler() http.Handler {
	files := map[string]asset{}
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		panic(err)
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := types[path.Ext(p)]
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		files["/"+p] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{
				{"title": "Not Found", "detail": "no API operation at " + r.URL.Path}}})
			return
		}
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == "/" {
			p = "/index.html"
		}
		a, ok := files[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		// The file names carry no hash, so the browser asks every time
		// and gets 304 while a file is unchanged.
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
