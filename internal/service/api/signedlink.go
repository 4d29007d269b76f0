package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Signed download links: when the artifact store cannot presign (a local
// directory), a compose's download URL carries its own credentials, as a
// presigned bucket URL does: the org, an expiry and an HMAC of both with
// the compose ID under the server's download key. A browser can then
// download a large image with a plain link, straight to disk, without the
// API token (which a link cannot carry). The link is good for that one
// compose of that one org until it expires, and no longer than the image
// is kept.

// signDownload is the signature of a link to org's compose id that lasts
// until expires (Unix seconds).
func (s *Server) signDownload(org, id string, expires int64) string {
	m := hmac.New(sha256.New, s.cfg.DownloadKey)
	m.Write([]byte("kiln download\x00" + org + "\x00" + id + "\x00" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// signedDownloadURL is the API path that downloads org's compose id until
// expires, with no other credentials.
func (s *Server) signedDownloadURL(org, id string, expires time.Time) string {
	q := url.Values{}
	q.Set("org", org)
	q.Set("expires", strconv.FormatInt(expires.Unix(), 10))
	q.Set("signature", s.signDownload(org, id, expires.Unix()))
	return Prefix + "/composes/" + id + "/download?" + q.Encode()
}

// signedDownloadOrg checks a download request's signed link and returns
// the org it was made for.
func (s *Server) signedDownloadOrg(r *http.Request, id string) (string, *apiError) {
	if len(s.cfg.DownloadKey) == 0 {
		return "", newError(http.StatusUnauthorized, "this server makes no signed download links: authenticate with an API token")
	}
	q := r.URL.Query()
	org, sig := q.Get("org"), q.Get("signature")
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if org == "" || err != nil {
		return "", newError(http.StatusForbidden, "the download link is incomplete: it needs org, expires and signature; ask the compose's status for a new one")
	}
	if !hmac.Equal([]byte(sig), []byte(s.signDownload(org, id, expires))) {
		return "", newError(http.StatusForbidden, "the download link's signature is wrong: ask the compose's status for a new link")
	}
	if s.cfg.Now().Unix() > expires {
		return "", newError(http.StatusForbidden, "the download link has expired: ask the compose's status for a new one")
	}
	return org, nil
}

// withOrg is r acting for org.
func withOrg(r *http.Request, org string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), orgKey, org))
}
