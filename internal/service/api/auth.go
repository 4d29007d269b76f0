package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/kiln-project/kiln/internal/service/store"
)

type ctxKey int

const (
	orgKey ctxKey = iota
	requestIDKey
)

// orgOf is the organization the request acts for.
func orgOf(ctx context.Context) string {
	s, _ := ctx.Value(orgKey).(string)
	return s
}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// identityHeader is the x-rh-identity document a trusted gateway sends.
type identityHeader struct {
	Identity struct {
		OrgID    string `json:"org_id"`
		Internal struct {
			OrgID string `json:"org_id"`
		} `json:"internal"`
	} `json:"identity"`
}

// authenticate finds the request's organization: from a bearer API token,
// or (only when the server trusts a gateway) from x-rh-identity.
func (s *Server) authenticate(r *http.Request) (string, *apiError) {
	if h := r.Header.Get("Authorization"); h != "" {
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || secret == "" {
			return "", errUnauthorized
		}
		tok, err := s.cfg.Store.TokenByHash(r.Context(), store.HashSecret(strings.TrimSpace(secret)))
		if errors.Is(err, store.ErrNotFound) {
			return "", newError(http.StatusUnauthorized, "the API token is unknown or revoked")
		}
		if err != nil {
			s.cfg.Log.Error("looking up a token", "err", err, "request_id", requestID(r.Context()))
			return "", newError(http.StatusInternalServerError)
		}
		return tok.OrgID, nil
	}
	if s.cfg.TrustIdentityHeader {
		if h := r.Header.Get("x-rh-identity"); h != "" {
			raw, err := base64.StdEncoding.DecodeString(h)
			if err != nil {
				return "", newError(http.StatusUnauthorized, "x-rh-identity is not base64")
			}
			var id identityHeader
			if err := json.Unmarshal(raw, &id); err != nil {
				return "", newError(http.StatusUnauthorized, "x-rh-identity is not an identity document")
			}
			org := id.Identity.OrgID
			if org == "" {
				org = id.Identity.Internal.OrgID
			}
			if org == "" {
				return "", newError(http.StatusUnauthorized, "x-rh-identity names no org_id")
			}
			return org, nil
		}
	}
	return "", errUnauthorized
}
