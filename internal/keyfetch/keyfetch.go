// Package keyfetch fetches the OpenPGP public keys a blueprint's
// repositories name by URL, so that they can be pinned into the manifest
// by SHA-256 with their content: the build then needs no network for
// them and gives the same image every time.
//
// Only https is fetched, a response is limited in size and time, and it
// must be an OpenPGP public key, ASCII-armored or binary. A binary key is
// armored, so that it can be written inline into apt's sources.
package keyfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kiln-project/kiln/blueprint"
)

// DefaultMaxSize is the largest key file fetched when Fetcher.MaxSize is
// zero: 1 MiB, far above any real keyring of a repository.
const DefaultMaxSize = 1 << 20

// DefaultTimeout bounds one fetch with the clients of this package.
const DefaultTimeout = 30 * time.Second

// Key is a fetched public key, pinned by the SHA-256 of the bytes the
// server sent.
type Key struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	// Armored is the key as an ASCII-armored public key block.
	Armored string `json:"armored"`
}

// Fetcher fetches keys over https.
type Fetcher struct {
	// Client does the requests; nil means PublicClient(), which reaches
	// public addresses only.
	Client *http.Client
	// MaxSize is the largest response accepted, in bytes; 0 means
	// DefaultMaxSize.
	MaxSize int64
}

// Fetch downloads the key at rawURL and checks that it is an OpenPGP
// public key.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (Key, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return Key{}, fmt.Errorf("%q is not a URL", rawURL)
	}
	if u.Scheme != "https" {
		return Key{}, fmt.Errorf("%q is not an https URL: a key fetched without TLS can be replaced on the way; give its https URL or paste the armored key", rawURL)
	}
	client := f.Client
	if client == nil {
		client = PublicClient()
	}
	// A redirect may not leave TLS: refuse it before it is followed.
	c := *client
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirected to %s, which is not https", req.URL.Redacted())
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	client = &c
	limit := f.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Key{}, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Key{}, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Key{}, fmt.Errorf("fetching %s: the server answered %s; check the URL", rawURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Key{}, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	if int64(len(data)) > limit {
		return Key{}, fmt.Errorf("fetching %s: the key is larger than %d bytes, more than a repository key can be; check the URL", rawURL, limit)
	}
	sum := sha256.Sum256(data)
	armored, err := Normalize(data)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", rawURL, err)
	}
	return Key{URL: rawURL, SHA256: hex.EncodeToString(sum[:]), Armored: armored}, nil
}

// IsURL reports whether a blueprint gpgkeys entry is a key URL rather
// than a pasted key.
func IsURL(entry string) bool {
	return !strings.Contains(entry, "-----BEGIN") && strings.Contains(entry, "://")
}

// Blueprint fetches every key URL of bp's repositories, each once. The
// map goes from URL to key; a failed fetch is a problem at the field
// customizations.repositories[i].gpgkeys[j] that names it, and every
// failure is reported (the returned error is blueprint.Errors).
func (f *Fetcher) Blueprint(ctx context.Context, bp *blueprint.Blueprint) (map[string]Key, error) {
	if bp == nil || bp.Customizations == nil {
		return nil, nil
	}
	keys := map[string]Key{}
	failed := map[string]error{}
	var problems blueprint.Errors
	for i, r := range bp.Customizations.Repositories {
		if !r.ChecksSignatures() {
			continue // apt is told not to check, so the keys are not written
		}
		for j, k := range r.GPGKeys {
			if !IsURL(k) {
				continue
			}
			if _, done := keys[k]; !done && failed[k] == nil {
				key, err := f.Fetch(ctx, k)
				if err != nil {
					failed[k] = err
				} else {
					keys[k] = key
				}
			}
			if err := failed[k]; err != nil {
				problems = append(problems, blueprint.Problem{Path: fmt.Sprintf("customizations.repositories[%d].gpgkeys[%d]", i, j), Message: err.Error()})
			}
		}
	}
	if len(problems) > 0 {
		return keys, problems
	}
	return keys, nil
}

// errNotKey is the message for data that is not a public key.
var errNotKey = errors.New(`is not an OpenPGP public key (neither an armored "PUBLIC KEY BLOCK" nor binary key packets); check that the URL names the key file itself`)
