package targettest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ARMSecretEnv is the variable AzureConfig's section reads the client
// secret from.
const ARMSecretEnv = "KILN_TEST_AZURE_CLIENT_SECRET"

// armAPIVersion is the Compute API version armcompute v6 sends.
const armAPIVersion = "2024-11-01"

// ARM is a small Azure Resource Manager and Microsoft Entra ID token
// endpoint for the calls kiln's azure target makes through the official
// SDK (azcore's ARM pipeline and armcompute's ImagesClient), since no
// emulator of them exists. It covers exactly:
//
//   - POST {authority}/{tenant}/oauth2/v2.0/token: the client credentials
//     grant (grant_type, client_id, client_secret, and the scope
//     "https://management.core.windows.net//.default"), answering a
//     bearer token (or invalid_client, or 503, see the knobs);
//   - GET .../resourceGroups/{rg}/providers/Microsoft.Compute/images/{name}
//     (Images_Get): the image, or 404 ResourceNotFound;
//   - PUT of the same path (Images_CreateOrUpdate): the body must carry a
//     location, storageProfile.osDisk with osType Linux, osState
//     Generalized and a blobUri, and hyperVGeneration V1 or V2; it answers
//     201 with an Azure-AsyncOperation header, as Azure does;
//   - GET .../providers/Microsoft.Compute/locations/{loc}/operations/{id}
//     (the long-running operation's status, which the SDK's poller reads):
//     InProgress once, then Succeeded (or Failed, see FailCreation);
//   - DELETE of the image path (Images_Delete): 204.
//
// Every other request, a request without the api-version the SDK sends,
// or without a bearer token this server issued, fails the test. Each
// request is recorded (Calls).
type ARM struct {
	// URL is the ARM endpoint, AuthorityHost the token endpoint's host.
	URL           string
	AuthorityHost string
	// The service principal and subscription the server knows.
	TenantID, SubscriptionID, ClientID, ClientSecret string
	// Location is the region images are made in.
	Location string

	tb     testing.TB
	mu     sync.Mutex
	calls  []ARMCall
	images map[string]*ARMImage
	tokens map[string]bool
	scopes []string
	ops    map[string]*armOp
	// behaviour knobs
	refuse       bool
	tokenOutages int
	failPut      bool
	failCreation bool
	onCreate     func(ARMImage) error
}

// ARMCall is one request the server received: method and path.
type ARMCall struct {
	Method string
	Path   string
}

// ARMImage is a managed image as the server holds it.
type ARMImage struct {
	ResourceGroup    string
	Name             string
	Location         string
	BlobURI          string
	OSType           string
	OSState          string
	HyperVGeneration string
	Tags             map[string]string
	// State is the provisioning state: Creating, Succeeded or Failed.
	State string
}

type armOp struct {
	key   string
	polls int
}

var (
	armTokenPath = regexp.MustCompile(`^/([^/]+)/oauth2/v2\.0/token$`)
	armImagePath = regexp.MustCompile(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/images/([^/]+)$`)
	armOpPath    = regexp.MustCompile(`^/subscriptions/([^/]+)/providers/Microsoft\.Compute/locations/([^/]+)/operations/([^/]+)$`)
)

// StartARM starts the server on a loopback port for the test.
func StartARM(tb testing.TB) *ARM {
	tb.Helper()
	s := &ARM{
		TenantID:       "5c7ef5b6-1c3f-4da0-a622-0b060239d7d7",
		SubscriptionID: "4e5d8b2c-ab24-4413-90c5-612306e809e2",
		ClientID:       "0f8b9d0e-6b8e-4a55-9c1e-3c2d9a4f7e21",
		ClientSecret:   "test-client-secret",
		Location:       "westeurope",
		tb:             tb,
		images:         map[string]*ARMImage{},
		tokens:         map[string]bool{},
		ops:            map[string]*armOp{},
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	s.AuthorityHost = srv.URL + "/"
	return s
}

// RefuseCredentials makes the token endpoint refuse the client secret,
// as Entra ID does a wrong or expired one.
func (s *ARM) RefuseCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = true
}

// FailTokenRequests makes the token endpoint answer the next n
// requests with 503 Service Unavailable, as a brief outage.
func (s *ARM) FailTokenRequests(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenOutages = n
}

// FailPut makes every image PUT answer 500 Internal Server Error.
func (s *ARM) FailPut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPut = true
}

// FailCreation makes image creation accepted, then end Failed (the VHD
// could not be read), as the long-running operation reports it.
func (s *ARM) FailCreation() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCreation = true
}

// OnCreate runs f when an image PUT arrives, before the server answers
// (a test checks the source blob there, as Azure reads it then); an
// error from f fails the creation.
func (s *ARM) OnCreate(f func(ARMImage) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCreate = f
}

// AddImage puts an image there, as if made before (by this compose or
// something else, as its tags say).
func (s *ARM) AddImage(img ARMImage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if img.State == "" {
		img.State = "Succeeded"
	}
	s.images[strings.ToLower(img.ResourceGroup+"/"+img.Name)] = &img
}

// Calls lists the requests received, in order.
func (s *ARM) Calls() []ARMCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ARMCall(nil), s.calls...)
}

// TokenScopes lists the scopes of the tokens issued, in order.
func (s *ARM) TokenScopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.scopes...)
}

// Images lists the images held.
func (s *ARM) Images() []ARMImage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ARMImage
	for _, img := range s.images {
		out = append(out, *img)
	}
	return out
}

func (s *ARM) fail(w http.ResponseWriter, r *http.Request, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.tb.Errorf("fake ARM: %s %s: %s", r.Method, r.URL, msg)
	armError(w, http.StatusBadRequest, "InvalidRequest", msg)
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (s *ARM) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, ARMCall{Method: r.Method, Path: r.URL.Path})
	s.mu.Unlock()

	if m := armTokenPath.FindStringSubmatch(r.URL.Path); m != nil {
		s.token(w, r, m[1])
		return
	}
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	known := strings.HasPrefix(auth, "Bearer ") && s.tokens[strings.TrimPrefix(auth, "Bearer ")]
	s.mu.Unlock()
	if !known {
		s.fail(w, r, "no bearer token this server issued (Authorization %q)", auth)
		return
	}
	if v := r.URL.Query().Get("api-version"); v != armAPIVersion {
		s.fail(w, r, "api-version %q, want %q", v, armAPIVersion)
		return
	}
	if m := armImagePath.FindStringSubmatch(r.URL.Path); m != nil {
		if m[1] != s.SubscriptionID {
			s.fail(w, r, "subscription %q, want %q", m[1], s.SubscriptionID)
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.getImage(w, m[2], m[3])
		case http.MethodPut:
			s.putImage(w, r, m[2], m[3])
		case http.MethodDelete:
			s.mu.Lock()
			delete(s.images, strings.ToLower(m[2]+"/"+m[3]))
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			s.fail(w, r, "unexpected method")
		}
		return
	}
	if m := armOpPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		s.operation(w, m[3])
		return
	}
	s.fail(w, r, "not a call the azure target makes")
}

func (s *ARM) token(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodPost {
		s.fail(w, r, "the token endpoint takes POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, "form: %v", err)
		return
	}
	f := r.PostForm
	s.mu.Lock()
	refuse, outage := s.refuse, s.tokenOutages > 0
	if outage {
		s.tokenOutages--
	}
	s.mu.Unlock()
	if outage {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred."})
		return
	}
	switch {
	case f.Get("grant_type") != "client_credentials":
		s.fail(w, r, "grant_type %q", f.Get("grant_type"))
		return
	case f.Get("scope") != "https://management.core.windows.net//.default" && f.Get("scope") != "https://storage.azure.com/.default":
		s.fail(w, r, "scope %q", f.Get("scope"))
		return
	case tenant != s.TenantID || f.Get("client_id") != s.ClientID:
		s.fail(w, r, "tenant %q client %q, want %q %q", tenant, f.Get("client_id"), s.TenantID, s.ClientID)
		return
	}
	if refuse || f.Get("client_secret") != s.ClientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"error":             "invalid_client",
			"error_description": "AADSTS7000215: Invalid client secret provided.",
		})
		return
	}
	s.mu.Lock()
	tok := fmt.Sprintf("test-token-%d", len(s.tokens)+1)
	if f.Get("scope") == "https://storage.azure.com/.default" {
		// Storage reads the token's claims (Azurite checks issuer,
		// audience and lifetime, not the signature).
		tok = s.storageJWT(len(s.tokens) + 1)
	}
	s.tokens[tok] = true
	s.scopes = append(s.scopes, f.Get("scope"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": tok})
}

// storageJWT is a token for the storage audience with the claims a
// storage service checks.
func (s *ARM) storageJWT(n int) string {
	now := time.Now().Unix()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	header := enc(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims := enc(map[string]any{
		"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/" + s.TenantID + "/",
		"iat": now, "nbf": now - 60, "exp": now + 3600,
		"appid": s.ClientID, "tid": s.TenantID, "oid": fmt.Sprintf("test-%d", n),
	})
	return header + "." + claims + "." + base64.RawURLEncoding.EncodeToString([]byte("unsigned"))
}

func (s *ARM) imageJSON(img *ARMImage) map[string]any {
	tags := map[string]string{}
	for k, v := range img.Tags {
		tags[k] = v
	}
	return map[string]any{
		"id":       fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/%s", s.SubscriptionID, img.ResourceGroup, img.Name),
		"name":     img.Name,
		"type":     "Microsoft.Compute/images",
		"location": img.Location,
		"tags":     tags,
		"properties": map[string]any{
			"provisioningState": img.State,
			"hyperVGeneration":  img.HyperVGeneration,
			"storageProfile": map[string]any{"osDisk": map[string]any{
				"osType": img.OSType, "osState": img.OSState, "blobUri": img.BlobURI,
			}},
		},
	}
}

func (s *ARM) getImage(w http.ResponseWriter, group, name string) {
	s.mu.Lock()
	img, ok := s.images[strings.ToLower(group+"/"+name)]
	var body map[string]any
	if ok {
		body = s.imageJSON(img)
	}
	s.mu.Unlock()
	if !ok {
		armError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource 'Microsoft.Compute/images/%s' under resource group '%s' was not found.", name, group))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *ARM) putImage(w http.ResponseWriter, r *http.Request, group, name string) {
	var body struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties struct {
			HyperVGeneration string `json:"hyperVGeneration"`
			StorageProfile   struct {
				OSDisk struct {
					OSType  string `json:"osType"`
					OSState string `json:"osState"`
					BlobURI string `json:"blobUri"`
				} `json:"osDisk"`
			} `json:"storageProfile"`
		} `json:"properties"`
	}
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		s.fail(w, r, "body: %v", err)
		return
	}
	d := body.Properties.StorageProfile.OSDisk
	var problems []string
	if body.Location == "" {
		problems = append(problems, "no location")
	}
	if d.OSType != "Linux" {
		problems = append(problems, fmt.Sprintf("osType %q, want Linux", d.OSType))
	}
	if d.OSState != "Generalized" {
		problems = append(problems, fmt.Sprintf("osState %q, want Generalized", d.OSState))
	}
	if d.BlobURI == "" {
		problems = append(problems, "no blobUri")
	}
	if g := body.Properties.HyperVGeneration; g != "V1" && g != "V2" {
		problems = append(problems, fmt.Sprintf("hyperVGeneration %q, want V1 or V2", g))
	}
	if len(problems) > 0 {
		s.fail(w, r, "%s", strings.Join(problems, "; "))
		return
	}
	s.mu.Lock()
	failPut, onCreate := s.failPut, s.onCreate
	s.mu.Unlock()
	if failPut {
		armError(w, http.StatusInternalServerError, "InternalServerError", "An internal error occurred in the processing of this request.")
		return
	}
	img := &ARMImage{
		ResourceGroup: group, Name: name, Location: body.Location, BlobURI: d.BlobURI,
		OSType: d.OSType, OSState: d.OSState, HyperVGeneration: body.Properties.HyperVGeneration,
		Tags: body.Tags, State: "Creating",
	}
	if onCreate != nil {
		if err := onCreate(*img); err != nil {
			s.tb.Errorf("fake ARM: the image's source: %v", err)
			img.State = "Failed"
		}
	}
	s.mu.Lock()
	key := strings.ToLower(group + "/" + name)
	s.images[key] = img
	opID := fmt.Sprintf("op-%d", len(s.ops)+1)
	s.ops[opID] = &armOp{key: key}
	resp := s.imageJSON(img)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Azure-AsyncOperation", fmt.Sprintf("%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=%s", s.URL, s.SubscriptionID, body.Location, opID, armAPIVersion))
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *ARM) operation(w http.ResponseWriter, id string) {
	s.mu.Lock()
	op, ok := s.ops[id]
	status := "InProgress"
	if ok {
		op.polls++
		img := s.images[op.key]
		switch {
		case img == nil:
			status = "Failed"
		case img.State == "Failed" || (op.polls > 1 && s.failCreation):
			img.State, status = "Failed", "Failed"
		case op.polls > 1:
			img.State, status = "Succeeded", "Succeeded"
		}
	}
	s.mu.Unlock()
	if !ok {
		armError(w, http.StatusNotFound, "NotFound", "no such operation")
		return
	}
	body := map[string]any{"name": id, "status": status}
	if status == "Failed" {
		body["error"] = map[string]string{"code": "InvalidVhd", "message": "The VHD could not be read."}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
