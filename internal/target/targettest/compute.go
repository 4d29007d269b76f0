package targettest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/kiln-project/kiln/internal/target"
)

// Compute is a Compute Engine API server for the gcp target's tests: no
// emulator of Compute Engine exists, so it speaks the wire protocol the
// official REST client (google.golang.org/api/compute/v1) sends for the
// calls the target makes, and Google's OAuth 2.0 token endpoint for a
// service account's key (the JWT-bearer grant), and nothing else:
//
//   - POST   /token                                          (a token for a signed JWT)
//   - GET    /compute/v1/projects/P/global/images/NAME          images.get
//   - POST   /compute/v1/projects/P/global/images?requestId=ID  images.insert
//   - DELETE /compute/v1/projects/P/global/images/NAME          images.delete
//   - GET    /compute/v1/projects/P/global/operations/OP        globalOperations.get
//   - GET    /compute/v1/projects/P/global/images/NAME/getIamPolicy  images.getIamPolicy
//   - POST   /compute/v1/projects/P/global/images/NAME/setIamPolicy  images.setIamPolicy
//
// Every request is checked: the method and path, the project, a bearer
// token it issued, images.insert's body (a valid name, rawDisk.source an
// object of the GCS server holding a gzipped tar whose first member is
// disk.raw, the request id) and setIamPolicy's etag; anything else fails
// the test. An insert reads the object at once and records its SHA-256,
// so a test can check the bytes Compute Engine would import even after
// the object is deleted. Operations are RUNNING for OperationPolls gets,
// then DONE, and the image goes from PENDING to READY.
type Compute struct {
	// URL is the server's address, for a compute_endpoint.
	URL string
	// Project is the only project it has.
	Project string
	// CredentialsFile is a service account key file whose token_uri is
	// this server's token endpoint.
	CredentialsFile string
	// OperationPolls is how many globalOperations.get see an insert
	// RUNNING before it is DONE (default 2).
	OperationPolls int

	tb       testing.TB
	http     *httptest.Server
	gcs      *GCS
	key      *rsa.PrivateKey
	email    string
	mu       sync.Mutex
	tokens   map[string]bool
	refuse   bool
	calls    []string
	images   map[string]*compute.Image
	policies map[string]*compute.Policy
	ops      map[string]*fakeOperation
	requests map[string]string
	imports  map[string]Import
	failures map[string][]int
	pending  map[string]int
	seq      int
}

// Import is what an images.insert asked for and the object it read.
type Import struct {
	Source          string
	SHA256          string
	Size            int64
	GuestOSFeatures []string
	Architecture    string
	Labels          map[string]string
	RequestID       string
}

type fakeOperation struct {
	op    *compute.Operation
	polls int
	image string
	fail  string
}

var gceImageName = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// StartCompute starts a Compute Engine server for project "kiln-test"
// whose inserts read their disks from gcs. It stops when the test ends.
func StartCompute(tb testing.TB, gcs *GCS) *Compute {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Compute{
		Project:        "kiln-test",
		OperationPolls: 2,
		tb:             tb,
		gcs:            gcs,
		key:            key,
		email:          "kiln-uploader@kiln-test.iam.gserviceaccount.com",
		tokens:         map[string]bool{},
		images:         map[string]*compute.Image{},
		policies:       map[string]*compute.Policy{},
		ops:            map[string]*fakeOperation{},
		requests:       map[string]string{},
		imports:        map[string]Import{},
		failures:       map[string][]int{},
		pending:        map[string]int{},
	}
	c.http = httptest.NewServer(http.HandlerFunc(c.serve))
	c.URL = c.http.URL
	tb.Cleanup(c.http.Close)

	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	sa, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     c.Project,
		"private_key_id": "kiln-test-key",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   c.email,
		"client_id":      "1",
		"token_uri":      c.URL + "/token",
	})
	c.CredentialsFile = filepath.Join(tb.TempDir(), "gcp-service-account.json")
	if err := os.WriteFile(c.CredentialsFile, sa, 0o600); err != nil {
		tb.Fatal(err)
	}
	return c
}

// GCP is a GCS and a Compute Engine server that share one service
// account, and the configuration that points the gcp target at them.
type GCP struct {
	GCS     *GCS
	Compute *Compute
	// Config is a [targets] configuration with the gcp section set;
	// retries and polls are quick.
	Config target.Config
}

// StartGCP starts both servers, the GCS one requiring the tokens the
// Compute one issues, as Google's APIs share one token endpoint.
func StartGCP(tb testing.TB) *GCP {
	tb.Helper()
	gcs := StartGCS(tb)
	c := StartCompute(tb, gcs)
	gcs.RequireToken(c.TokenValid)
	return &GCP{GCS: gcs, Compute: c, Config: target.Config{GCP: &target.GCPConfig{
		Project:         c.Project,
		Bucket:          gcs.Bucket,
		Prefix:          "kiln/",
		CredentialsFile: c.CredentialsFile,
		StorageEndpoint: gcs.URL,
		ComputeEndpoint: c.URL,
		PartSize:        4 << 20,
		MaxAttempts:     3,
		RetryDelay:      10 * time.Millisecond,
		PollInterval:    10 * time.Millisecond,
	}}}
}

// TokenValid reports whether token is one this server issued.
func (c *Compute) TokenValid(token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[token]
}

// RefuseCredentials makes the token endpoint refuse the service account
// (as for a deleted key).
func (c *Compute) RefuseCredentials() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = true
	c.tokens = map[string]bool{}
}

// Fail answers the next calls of a kind ("images.insert",
// "globalOperations.get", "images.setIamPolicy", ...) with these status
// codes, one a call. The kind "operation" makes the next inserts'
// operations end with an error (the code is not used), as an import of
// a bad disk does.
func (c *Compute) Fail(call string, codes ...int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[call] = append(c.failures[call], codes...)
}

// Calls are the calls received, in order, by name ("token",
// "images.insert", ...).
func (c *Compute) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// Images are the images the project has, by name.
func (c *Compute) Images() map[string]compute.Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]compute.Image{}
	for n, img := range c.images {
		out[n] = *img
	}
	return out
}

// Imports are the inserts received, by image name.
func (c *Compute) Imports() map[string]Import {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Import{}
	for n, i := range c.imports {
		out[n] = i
	}
	return out
}

// Members are the members an image's policy binds to role.
func (c *Compute) Members(image, role string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.policies[image]
	if p == nil {
		return nil
	}
	for _, b := range p.Bindings {
		if b.Role == role {
			return slices.Clone(b.Members)
		}
	}
	return nil
}

func (c *Compute) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" && r.Method == http.MethodPost {
		c.token(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/compute/v1/projects/")
	if !ok {
		c.unexpected(w, r)
		return
	}
	project, rest, _ := strings.Cut(rest, "/")
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !c.TokenValid(token) {
		c.tb.Errorf("compute: %s %s without a valid bearer token", r.Method, r.URL.Path)
		googleError(w, http.StatusUnauthorized, "authError", "Request had invalid authentication credentials.")
		return
	}
	if project != c.Project {
		c.tb.Errorf("compute: %s %s: project %q, the server has %q", r.Method, r.URL.Path, project, c.Project)
		googleError(w, http.StatusForbidden, "forbidden", "Required 'compute.images.create' permission for 'projects/"+project+"'")
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "global" && parts[1] == "images" && r.Method == http.MethodPost:
		c.handle(w, "images.insert", c.insert, r)
	case len(parts) == 3 && parts[1] == "images" && r.Method == http.MethodGet:
		c.handle(w, "images.get", c.getImage, r, parts[2])
	case len(parts) == 3 && parts[1] == "images" && r.Method == http.MethodDelete:
		c.handle(w, "images.delete", c.deleteImage, r, parts[2])
	case len(parts) == 3 && parts[1] == "operations" && r.Method == http.MethodGet:
		c.handle(w, "globalOperations.get", c.getOperation, r, parts[2])
	case len(parts) == 4 && parts[1] == "images" && parts[3] == "getIamPolicy" && r.Method == http.MethodGet:
		c.handle(w, "images.getIamPolicy", c.getPolicy, r, parts[2])
	case len(parts) == 4 && parts[1] == "images" && parts[3] == "setIamPolicy" && r.Method == http.MethodPost:
		c.handle(w, "images.setIamPolicy", c.setPolicy, r, parts[2])
	default:
		c.unexpected(w, r)
	}
}

func (c *Compute) unexpected(w http.ResponseWriter, r *http.Request) {
	c.tb.Errorf("compute: unexpected request %s %s", r.Method, r.URL)
	googleError(w, http.StatusNotFound, "notFound", "unexpected request")
}

// handle records the call, answers an injected failure, else runs h,
// whose result is written as JSON (or an error with its status).
func (c *Compute) handle(w http.ResponseWriter, call string, h func(*http.Request, ...string) (any, int, error), r *http.Request, args ...string) {
	c.mu.Lock()
	c.calls = append(c.calls, call)
	code := 0
	if f := c.failures[call]; len(f) > 0 && f[0] > 0 {
		code, c.failures[call] = f[0], f[1:]
	}
	c.mu.Unlock()
	if code != 0 {
		googleError(w, code, "injected", fmt.Sprintf("injected failure %d of %s", code, call))
		return
	}
	v, status, err := h(r, args...)
	if err != nil {
		googleError(w, status, http.StatusText(status), err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// token answers the JWT-bearer grant a service account's key makes: the
// assertion must be signed by the key, for this endpoint, with a scope.
func (c *Compute) token(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.calls = append(c.calls, "token")
	refuse := c.refuse
	c.mu.Unlock()
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		c.tb.Errorf("token: unexpected grant %q", r.PostForm.Get("grant_type"))
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	if err := c.checkAssertion(r.PostForm.Get("assertion")); err != nil {
		c.tb.Errorf("token: %v", err)
		http.Error(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if refuse {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid grant: account not found"}`)
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := "ya29.test-" + hex.EncodeToString(b)
	c.mu.Lock()
	c.tokens[tok] = true
	c.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func (c *Compute) checkAssertion(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("the assertion is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&c.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("the assertion is not signed by the service account's key: %v", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Exp   int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return err
	}
	if claims.Iss != c.email || claims.Aud != c.URL+"/token" || claims.Scope == "" || claims.Exp < time.Now().Unix() {
		return fmt.Errorf("the assertion's claims are wrong: %s", raw)
	}
	return nil
}

func (c *Compute) newOperation(kind, image string, polls int) *compute.Operation {
	c.seq++
	name := fmt.Sprintf("operation-%d", c.seq)
	op := &compute.Operation{
		Kind:          "compute#operation",
		Name:          name,
		OperationType: kind,
		Status:        "RUNNING",
		TargetLink:    c.URL + "/compute/v1/projects/" + c.Project + "/global/images/" + image,
		SelfLink:      c.URL + "/compute/v1/projects/" + c.Project + "/global/operations/" + name,
	}
	if polls <= 0 {
		op.Status = "DONE"
	}
	c.ops[name] = &fakeOperation{op: op, polls: polls, image: image}
	return op
}

func (c *Compute) insert(r *http.Request, _ ...string) (any, int, error) {
	requestID := r.URL.Query().Get("requestId")
	var img compute.Image
	if err := json.NewDecoder(r.Body).Decode(&img); err != nil {
		c.tb.Errorf("images.insert: body: %v", err)
		return nil, http.StatusBadRequest, err
	}
	if requestID == "" {
		c.tb.Errorf("images.insert without a requestId")
	}
	if !gceImageName.MatchString(img.Name) {
		c.tb.Errorf("images.insert: invalid image name %q", img.Name)
		return nil, http.StatusBadRequest, fmt.Errorf("Invalid value for field 'resource.name': '%s'", img.Name)
	}
	c.mu.Lock()
	if opName, ok := c.requests[requestID]; ok && requestID != "" {
		op := c.ops[opName].op
		c.mu.Unlock()
		return op, 0, nil
	}
	_, exists := c.images[img.Name]
	c.mu.Unlock()
	if exists {
		return nil, http.StatusConflict, fmt.Errorf("The resource 'projects/%s/global/images/%s' already exists", c.Project, img.Name)
	}
	if img.RawDisk == nil {
		c.tb.Errorf("images.insert: no rawDisk")
		return nil, http.StatusBadRequest, fmt.Errorf("Required field 'rawDisk' not specified")
	}
	imp := Import{Source: img.RawDisk.Source, Architecture: img.Architecture, Labels: img.Labels, RequestID: requestID}
	for _, f := range img.GuestOsFeatures {
		imp.GuestOSFeatures = append(imp.GuestOSFeatures, f.Type)
	}
	fail := ""
	if data, err := c.readSource(img.RawDisk.Source); err != nil {
		fail = err.Error()
	} else {
		sum := sha256.Sum256(data)
		imp.SHA256, imp.Size = hex.EncodeToString(sum[:]), int64(len(data))
		if err := checkDiskTarball(data); err != nil {
			fail = err.Error()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.failures["operation"]; len(f) > 0 {
		c.failures["operation"] = f[1:]
		fail = "injected failure of the import"
	}
	img.Status = "PENDING"
	img.Kind = "compute#image"
	img.SelfLink = c.URL + "/compute/v1/projects/" + c.Project + "/global/images/" + img.Name
	c.images[img.Name] = &img
	c.imports[img.Name] = imp
	op := c.newOperation("insert", img.Name, c.OperationPolls)
	c.ops[op.Name].fail = fail
	if op.Status == "DONE" {
		c.finish(c.ops[op.Name])
	}
	c.requests[requestID] = op.Name
	return op, 0, nil
}

// readSource reads an image's rawDisk.source from the GCS server, as
// Compute Engine reads it from Cloud Storage.
func (c *Compute) readSource(source string) ([]byte, error) {
	rest, ok := strings.CutPrefix(source, "https://storage.googleapis.com/")
	if !ok {
		c.tb.Errorf("images.insert: rawDisk.source %q is not a Cloud Storage URL", source)
		return nil, fmt.Errorf("invalid rawDisk.source %q", source)
	}
	bucket, object, _ := strings.Cut(rest, "/")
	data, err := c.gcs.Object(bucket, object)
	if err != nil {
		return nil, fmt.Errorf("The resource '%s' of type 'Cloud Storage object' was not found: %v", source, err)
	}
	return data, nil
}

// checkDiskTarball checks what Compute Engine requires of an imported
// disk: a gzipped tar whose first member is disk.raw.
func checkDiskTarball(data []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("the image file is not gzipped: %v", err)
	}
	h, err := tar.NewReader(zr).Next()
	if err != nil {
		return fmt.Errorf("the image file is not a tar: %v", err)
	}
	if h.Name != "disk.raw" {
		return fmt.Errorf("the image file's first member is %q, not disk.raw", h.Name)
	}
	return nil
}

// finish ends an operation; c.mu is held.
func (c *Compute) finish(o *fakeOperation) {
	o.op.Status = "DONE"
	img := c.images[o.image]
	switch {
	case o.op.OperationType == "delete":
		delete(c.images, o.image)
		delete(c.policies, o.image)
	case o.fail != "":
		o.op.Error = &compute.OperationError{Errors: []*compute.OperationErrorErrors{{Code: "INVALID_IMAGE_FILE", Message: o.fail}}}
		if img != nil {
			img.Status = "FAILED"
		}
	case img != nil:
		img.Status = "READY"
	}
}

func (c *Compute) getOperation(_ *http.Request, args ...string) (any, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.ops[args[0]]
	if !ok {
		c.tb.Errorf("globalOperations.get: no operation %q", args[0])
		return nil, http.StatusNotFound, fmt.Errorf("The resource 'operations/%s' was not found", args[0])
	}
	if o.op.Status != "DONE" {
		o.polls--
		if o.polls <= 0 {
			c.finish(o)
		}
	}
	op := *o.op
	return &op, 0, nil
}

// SeedPendingImage makes an image that is being imported, as an upload
// that stopped after its insert leaves it: it is PENDING for gets more
// images.get, then READY.
func (c *Compute) SeedPendingImage(img compute.Image, gets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img.Status = "PENDING"
	img.Kind = "compute#image"
	c.images[img.Name] = &img
	c.pending[img.Name] = gets
}

func (c *Compute) getImage(_ *http.Request, args ...string) (any, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.images[args[0]]
	if !ok {
		return nil, http.StatusNotFound, fmt.Errorf("The resource 'projects/%s/global/images/%s' was not found", c.Project, args[0])
	}
	if n, ok := c.pending[args[0]]; ok {
		if n <= 0 {
			img.Status = "READY"
			delete(c.pending, args[0])
		} else {
			c.pending[args[0]] = n - 1
		}
	}
	cp := *img
	return &cp, 0, nil
}

func (c *Compute) deleteImage(_ *http.Request, args ...string) (any, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.images[args[0]]; !ok {
		return nil, http.StatusNotFound, fmt.Errorf("The resource 'projects/%s/global/images/%s' was not found", c.Project, args[0])
	}
	op := c.newOperation("delete", args[0], 1)
	return op, 0, nil
}

func (c *Compute) getPolicy(_ *http.Request, args ...string) (any, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if img, ok := c.images[args[0]]; !ok || img.Status != "READY" {
		c.tb.Errorf("images.getIamPolicy: image %q is not there and ready", args[0])
		return nil, http.StatusNotFound, fmt.Errorf("The resource 'projects/%s/global/images/%s' was not found", c.Project, args[0])
	}
	p := c.policies[args[0]]
	if p == nil {
		p = &compute.Policy{Etag: "BwYAAAA=", Version: 1}
		c.policies[args[0]] = p
	}
	cp := *p
	return &cp, 0, nil
}

func (c *Compute) setPolicy(r *http.Request, args ...string) (any, int, error) {
	var req compute.GlobalSetPolicyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Policy == nil {
		c.tb.Errorf("images.setIamPolicy: body without a policy (%v)", err)
		return nil, http.StatusBadRequest, fmt.Errorf("no policy")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.policies[args[0]]
	if old == nil || req.Policy.Etag != old.Etag {
		c.tb.Errorf("images.setIamPolicy: etag %q does not match the policy read", req.Policy.Etag)
		return nil, http.StatusConflict, fmt.Errorf("etag mismatch")
	}
	for _, b := range req.Policy.Bindings {
		for _, m := range b.Members {
			if !regexp.MustCompile(`^(user|serviceAccount|group|domain):.+`).MatchString(m) {
				c.tb.Errorf("images.setIamPolicy: invalid member %q", m)
				return nil, http.StatusBadRequest, fmt.Errorf("Invalid member %q", m)
			}
		}
	}
	p := *req.Policy
	c.seq++
	p.Etag = base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("etag-%d", c.seq)))
	c.policies[args[0]] = &p
	return &p, 0, nil
}
