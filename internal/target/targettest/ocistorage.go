package targettest

import (
	"bytes"
	"crypto"
	"crypto/md5"
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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/target"
)

// OCIObjectStorage is a test server for Oracle Cloud's Object Storage,
// for which no emulator exists. It speaks exactly the requests of the
// official Go SDK (github.com/oracle/oci-go-sdk/v65/objectstorage) that
// oci.objectstorage makes, with the SDK's paths, query parameters,
// headers and JSON bodies:
//
//   - PutObject (PUT /n/{ns}/b/{bucket}/o/{object}), checking Content-MD5
//   - HeadObject (HEAD …/o/{object}), with content-md5 or
//     opc-multipart-md5, and the opc-meta-* metadata
//   - CreateMultipartUpload (POST …/u), UploadPart (PUT …/u/{object}
//     ?uploadId&uploadPartNum, checking Content-MD5),
//     CommitMultipartUpload (POST …/u/{object}?uploadId, checking each
//     part's ETag), AbortMultipartUpload (DELETE …/u/{object}?uploadId)
//     and ListMultipartUploads (GET …/u)
//   - CreatePreauthenticatedRequest (POST …/p/, ObjectRead only),
//     ListPreauthenticatedRequests (GET …/p/?objectNamePrefix) and
//     DeletePreauthenticatedRequest (DELETE …/p/{parId})
//   - GET of a pre-authenticated request's URL (/p/{token}/n/…/o/…),
//     unsigned, serving the object's bytes until the request expires.
//
// Every other request is answered 404 and fails the test. Each signed
// request's Authorization header is checked as the service does: the
// keyId is the configured tenancy/user/fingerprint, the signed headers
// include date, (request-target) and host (and, for a JSON body,
// content-length, content-type and x-content-sha256, whose hash must be
// the body's), and the RSA-SHA256 signature verifies with the API key's
// public key; a request that fails is answered 401 NotAuthenticated.
type OCIObjectStorage struct {
	// Config is the [targets.oci] section for the server (its private
	// key in a file of the test's temporary directory).
	Config target.OCIConfig
	// URL is the server's address.
	URL string

	tb     testing.TB
	srv    *httptest.Server
	keyID  string
	public *rsa.PublicKey

	mu        sync.Mutex
	objects   map[string]*ociObject
	uploads   map[string]*ociUpload
	pars      map[string]*ociPAR
	calls     []string
	failParts int
	failed    int
	nextID    int
}

type ociObject struct {
	data         []byte
	md5          string // of a PutObject
	multipartMD5 string // of a committed multipart upload
	meta         map[string]string
	etag         string
}

type ociUpload struct {
	object  string
	created time.Time
	meta    map[string]string
	parts   map[int][]byte
	etags   map[int]string
}

type ociPAR struct {
	id, name, object, token string
	expires, created        time.Time
}

// Test values of the server's account.
const (
	OCITestNamespace = "kilntest"
	OCITestBucket    = "images"
	ociTestTenancy   = "ocid1.tenancy.oc1..kilntest"
	ociTestUser      = "ocid1.user.oc1..kilntest"
)

// StartOCIObjectStorage starts the server for the test, with an empty
// bucket and an API key of its own.
func StartOCIObjectStorage(tb testing.TB) *OCIObjectStorage {
	tb.Helper()
	dir := tb.TempDir()
	key, fingerprint := writeOCIKey(tb, filepath.Join(dir, "oci-api-key.pem"))
	s := &OCIObjectStorage{
		tb:      tb,
		keyID:   ociTestTenancy + "/" + ociTestUser + "/" + fingerprint,
		public:  &key.PublicKey,
		objects: map[string]*ociObject{},
		uploads: map[string]*ociUpload{},
		pars:    map[string]*ociPAR{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.Config = target.OCIConfig{
		Tenancy:        ociTestTenancy,
		User:           ociTestUser,
		Fingerprint:    fingerprint,
		PrivateKeyFile: filepath.Join(dir, "oci-api-key.pem"),
		Region:         "eu-frankfurt-1",
		Namespace:      OCITestNamespace,
		Bucket:         OCITestBucket,
		Endpoint:       s.URL,
	}
	return s
}

// WrongKeyConfig is Config with another API key in place of the one the
// server knows (same key id): the server refuses its requests.
func (s *OCIObjectStorage) WrongKeyConfig(tb testing.TB) target.OCIConfig {
	tb.Helper()
	cfg := s.Config
	cfg.PrivateKeyFile = filepath.Join(tb.TempDir(), "other-key.pem")
	writeOCIKey(tb, cfg.PrivateKeyFile)
	return cfg
}

// writeOCIKey writes a new RSA key as PEM at p and returns it with its
// fingerprint as the console shows it (the MD5 of the public key's DER,
// in colon-separated hex).
func writeOCIKey(tb testing.TB, p string) (*rsa.PrivateKey, string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	sum := md5.Sum(pub)
	hexed := hex.EncodeToString(sum[:])
	var parts []string
	for i := 0; i < len(hexed); i += 2 {
		parts = append(parts, hexed[i:i+2])
	}
	return key, strings.Join(parts, ":")
}

// Object is an object's bytes, and whether it is there.
func (s *OCIObjectStorage) Object(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[name]
	if !ok {
		return nil, false
	}
	return bytes.Clone(o.data), true
}

// Objects are the names of the bucket's objects, sorted.
func (s *OCIObjectStorage) Objects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.objects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OpenMultipartUploads are the multipart uploads neither committed nor
// aborted, as "object uploadId".
func (s *OCIObjectStorage) OpenMultipartUploads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var open []string
	for id, u := range s.uploads {
		open = append(open, u.object+" "+id)
	}
	sort.Strings(open)
	return open
}

// PARs are the pre-authenticated requests, as "name object".
func (s *OCIObjectStorage) PARs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pars []string
	for _, p := range s.pars {
		pars = append(pars, p.name+" "+p.object)
	}
	sort.Strings(pars)
	return pars
}

// Calls are the operations the server answered, in order, by the SDK's
// names ("PutObject", "UploadPart", ...).
func (s *OCIObjectStorage) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// FailUploadParts answers the next n UploadPart requests with 500
// InternalServerError; n < 0 fails every one from now on, 0 stops.
func (s *OCIObjectStorage) FailUploadParts(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failParts = n
}

// Failed is how many requests the server failed on purpose.
func (s *OCIObjectStorage) Failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// ociError answers as the service does: a JSON body with code and
// message, and opc-request-id.
func ociError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": message})
}

func ociJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ociSignature is an Authorization header's parameters.
var ociSignature = regexp.MustCompile(`(\w+)="([^"]*)"`)

// checkSignature verifies a request's signature, as the service does;
// body is the request's body, read already.
func (s *OCIObjectStorage) checkSignature(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Signature ") {
		return fmt.Errorf("no Signature authorization header")
	}
	params := map[string]string{}
	for _, m := range ociSignature.FindAllStringSubmatch(auth, -1) {
		params[m[1]] = m[2]
	}
	if params["version"] != "1" || params["algorithm"] != "rsa-sha256" {
		return fmt.Errorf("signature version %q algorithm %q, not 1 rsa-sha256", params["version"], params["algorithm"])
	}
	if params["keyId"] != s.keyID {
		return fmt.Errorf("unknown keyId %q", params["keyId"])
	}
	headers := strings.Fields(params["headers"])
	for _, need := range []string{"date", "(request-target)", "host"} {
		if !ociContains(headers, need) {
			return fmt.Errorf("the signature does not cover %s", need)
		}
	}
	if date, err := http.ParseTime(r.Header.Get("Date")); err != nil || time.Since(date).Abs() > 5*time.Minute {
		return fmt.Errorf("the date %q is missing or more than 5 minutes off", r.Header.Get("Date"))
	}
	if ociContains(headers, "x-content-sha256") {
		sum := sha256.Sum256(body)
		if r.Header.Get("x-content-sha256") != base64.StdEncoding.EncodeToString(sum[:]) {
			return fmt.Errorf("x-content-sha256 is not the body's hash")
		}
		if r.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			return fmt.Errorf("content-length is not the body's length")
		}
	}
	lines := make([]string, len(headers))
	for i, h := range headers {
		var v string
		switch h {
		case "(request-target)":
			v = strings.ToLower(r.Method) + " " + r.RequestURI
		case "host":
			v = r.Host
		case "content-length":
			v = r.Header.Get("Content-Length")
			if v == "" && r.ContentLength >= 0 {
				v = strconv.FormatInt(r.ContentLength, 10)
			}
		default:
			v = r.Header.Get(h)
		}
		lines[i] = h + ": " + v
	}
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil {
		return fmt.Errorf("the signature is not base64")
	}
	digest := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	if err := rsa.VerifyPKCS1v15(s.public, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("the signature does not verify with the API key")
	}
	return nil
}

func ociContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unexpected answers a request the SDK never sends for these calls, and
// fails the test.
func (s *OCIObjectStorage) unexpected(w http.ResponseWriter, r *http.Request, why string) {
	s.tb.Errorf("OCI Object Storage test server: unexpected request %s %s: %s", r.Method, r.RequestURI, why)
	ociError(w, http.StatusNotFound, "NotFound", "unexpected request: "+why)
}

func (s *OCIObjectStorage) call(name string) {
	s.mu.Lock()
	s.calls = append(s.calls, name)
	s.mu.Unlock()
}

func (s *OCIObjectStorage) serve(w http.ResponseWriter, r *http.Request) {
	segments := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segments) >= 7 && segments[0] == "p" && r.Method == http.MethodGet {
		s.servePAR(w, r, segments)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		ociError(w, http.StatusBadRequest, "InvalidParameter", err.Error())
		return
	}
	if err := s.checkSignature(r, body); err != nil {
		s.call("refused")
		ociError(w, http.StatusUnauthorized, "NotAuthenticated", "The required information to complete authentication was not provided or was incorrect: "+err.Error())
		return
	}
	// /n/{namespace}/b/{bucket}/{o|u|p}[/{name}]
	if len(segments) < 5 || segments[0] != "n" || segments[2] != "b" {
		s.unexpected(w, r, "not an object storage path")
		return
	}
	if segments[1] != OCITestNamespace || segments[3] != OCITestBucket {
		ociError(w, http.StatusNotFound, "BucketNotFound", fmt.Sprintf("Either the bucket named '%s' does not exist in the namespace '%s' or you are not authorized to access it", segments[3], segments[1]))
		return
	}
	name, err := url.PathUnescape(strings.Join(segments[5:], "/"))
	if err != nil {
		s.unexpected(w, r, "bad escaping")
		return
	}
	q := r.URL.Query()
	switch kind := segments[4]; {
	case kind == "o" && name != "" && r.Method == http.MethodPut:
		s.call("PutObject")
		s.putObject(w, r, name, body)
	case kind == "o" && name != "" && r.Method == http.MethodHead:
		s.call("HeadObject")
		s.headObject(w, name)
	case kind == "u" && name == "" && r.Method == http.MethodPost:
		s.call("CreateMultipartUpload")
		s.createMultipartUpload(w, r, body)
	case kind == "u" && name == "" && r.Method == http.MethodGet:
		s.call("ListMultipartUploads")
		s.listMultipartUploads(w)
	case kind == "u" && name != "" && r.Method == http.MethodPut && q.Has("uploadId") && q.Has("uploadPartNum"):
		s.call("UploadPart")
		s.uploadPart(w, r, name, q.Get("uploadId"), q.Get("uploadPartNum"), body)
	case kind == "u" && name != "" && r.Method == http.MethodPost && q.Has("uploadId"):
		s.call("CommitMultipartUpload")
		s.commitMultipartUpload(w, r, name, q.Get("uploadId"), body)
	case kind == "u" && name != "" && r.Method == http.MethodDelete && q.Has("uploadId"):
		s.call("AbortMultipartUpload")
		s.abortMultipartUpload(w, name, q.Get("uploadId"))
	case kind == "p" && name == "" && r.Method == http.MethodPost:
		s.call("CreatePreauthenticatedRequest")
		s.createPAR(w, r, body)
	case kind == "p" && name == "" && r.Method == http.MethodGet:
		s.call("ListPreauthenticatedRequests")
		s.listPARs(w, q.Get("objectNamePrefix"))
	case kind == "p" && name != "" && r.Method == http.MethodDelete:
		s.call("DeletePreauthenticatedRequest")
		s.deletePAR(w, name)
	default:
		s.unexpected(w, r, "not an operation oci.objectstorage uses")
	}
}

// ociCheckMD5 checks a Content-MD5 header against data, if the request has
// one, and answers 400 when they differ.
func ociCheckMD5(w http.ResponseWriter, r *http.Request, data []byte) (string, bool) {
	sum := md5.Sum(data)
	got := base64.StdEncoding.EncodeToString(sum[:])
	if want := r.Header.Get("Content-MD5"); want != "" && want != got {
		ociError(w, http.StatusBadRequest, "InvalidContentMD5", "The computed MD5 of the request body ("+got+") does not match the Content-MD5 header ("+want+")")
		return "", false
	}
	return got, true
}

func (s *OCIObjectStorage) putObject(w http.ResponseWriter, r *http.Request, name string, body []byte) {
	if r.Header.Get("Content-Length") != strconv.Itoa(len(body)) && r.ContentLength != int64(len(body)) {
		ociError(w, http.StatusBadRequest, "InvalidParameter", "Content-Length does not match the body")
		return
	}
	sum, ok := ociCheckMD5(w, r, body)
	if !ok {
		return
	}
	meta := map[string]string{}
	for k, v := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "opc-meta-") {
			meta[strings.TrimPrefix(lk, "opc-meta-")] = v[0]
		}
	}
	s.mu.Lock()
	s.nextID++
	o := &ociObject{data: body, md5: sum, meta: meta, etag: fmt.Sprintf("etag-%d", s.nextID)}
	s.objects[name] = o
	s.mu.Unlock()
	w.Header().Set("opc-content-md5", sum)
	w.Header().Set("ETag", o.etag)
	w.Header().Set("last-modified", time.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(http.StatusOK)
}

func (s *OCIObjectStorage) headObject(w http.ResponseWriter, name string) {
	s.mu.Lock()
	o, ok := s.objects[name]
	s.mu.Unlock()
	w.Header().Set("opc-request-id", "kiln-test")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(o.data)))
	w.Header().Set("ETag", o.etag)
	if o.md5 != "" {
		w.Header().Set("Content-MD5", o.md5)
	}
	if o.multipartMD5 != "" {
		w.Header().Set("opc-multipart-md5", o.multipartMD5)
	}
	for k, v := range o.meta {
		w.Header().Set("opc-meta-"+k, v)
	}
	w.WriteHeader(http.StatusOK)
}

func (s *OCIObjectStorage) createMultipartUpload(w http.ResponseWriter, r *http.Request, body []byte) {
	var details struct {
		Object   *string           `json:"object"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(body, &details); err != nil || details.Object == nil || *details.Object == "" {
		s.unexpected(w, r, "CreateMultipartUploadDetails without an object")
		return
	}
	s.mu.Lock()
	s.nextID++
	id := fmt.Sprintf("upload-%d", s.nextID)
	u := &ociUpload{object: *details.Object, created: time.Now().UTC(), meta: details.Metadata, parts: map[int][]byte{}, etags: map[int]string{}}
	s.uploads[id] = u
	s.mu.Unlock()
	ociJSON(w, http.StatusOK, s.multipartUpload(id, u))
}

func (s *OCIObjectStorage) multipartUpload(id string, u *ociUpload) map[string]any {
	return map[string]any{
		"namespace": OCITestNamespace, "bucket": OCITestBucket, "object": u.object,
		"uploadId": id, "timeCreated": u.created.Format(time.RFC3339Nano), "storageTier": "Standard",
	}
}

func (s *OCIObjectStorage) listMultipartUploads(w http.ResponseWriter) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.uploads))
	for id := range s.uploads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	items := []map[string]any{}
	for _, id := range ids {
		items = append(items, s.multipartUpload(id, s.uploads[id]))
	}
	s.mu.Unlock()
	ociJSON(w, http.StatusOK, items)
}

func (s *OCIObjectStorage) upload(w http.ResponseWriter, name, id string) *ociUpload {
	u, ok := s.uploads[id]
	if !ok || u.object != name {
		ociError(w, http.StatusNotFound, "NoSuchUpload", fmt.Sprintf("The upload %s of %s does not exist", id, name))
		return nil
	}
	return u
}

func (s *OCIObjectStorage) uploadPart(w http.ResponseWriter, r *http.Request, name, id, num string, body []byte) {
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 10000 {
		ociError(w, http.StatusBadRequest, "InvalidParameter", "uploadPartNum must be 1 to 10000")
		return
	}
	s.mu.Lock()
	if s.failParts != 0 {
		if s.failParts > 0 {
			s.failParts--
		}
		s.failed++
		s.mu.Unlock()
		ociError(w, http.StatusInternalServerError, "InternalServerError", "injected failure")
		return
	}
	u := s.upload(w, name, id)
	if u == nil {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	sum, ok := ociCheckMD5(w, r, body)
	if !ok {
		return
	}
	s.mu.Lock()
	s.nextID++
	etag := fmt.Sprintf("part-etag-%d", s.nextID)
	u.parts[n], u.etags[n] = body, etag
	s.mu.Unlock()
	w.Header().Set("opc-content-md5", sum)
	w.Header().Set("ETag", etag)
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(http.StatusOK)
}

func (s *OCIObjectStorage) commitMultipartUpload(w http.ResponseWriter, r *http.Request, name, id string, body []byte) {
	var details struct {
		PartsToCommit []struct {
			PartNum *int    `json:"partNum"`
			Etag    *string `json:"etag"`
		} `json:"partsToCommit"`
	}
	if err := json.Unmarshal(body, &details); err != nil || len(details.PartsToCommit) == 0 {
		s.unexpected(w, r, "CommitMultipartUploadDetails without parts")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.upload(w, name, id)
	if u == nil {
		return
	}
	sort.Slice(details.PartsToCommit, func(i, j int) bool {
		return *details.PartsToCommit[i].PartNum < *details.PartsToCommit[j].PartNum
	})
	var data []byte
	all := md5.New()
	for _, p := range details.PartsToCommit {
		if p.PartNum == nil || p.Etag == nil || u.etags[*p.PartNum] != *p.Etag {
			ociError(w, http.StatusBadRequest, "InvalidParameter", "a part to commit does not match an uploaded part's number and ETag")
			return
		}
		part := u.parts[*p.PartNum]
		sum := md5.Sum(part)
		all.Write(sum[:])
		data = append(data, part...)
	}
	s.nextID++
	o := &ociObject{
		data:         data,
		multipartMD5: fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(all.Sum(nil)), len(details.PartsToCommit)),
		meta:         u.meta,
		etag:         fmt.Sprintf("etag-%d", s.nextID),
	}
	s.objects[name] = o
	delete(s.uploads, id)
	w.Header().Set("opc-multipart-md5", o.multipartMD5)
	w.Header().Set("ETag", o.etag)
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(http.StatusOK)
}

func (s *OCIObjectStorage) abortMultipartUpload(w http.ResponseWriter, name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upload(w, name, id) == nil {
		return
	}
	delete(s.uploads, id)
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(http.StatusNoContent)
}

func (s *OCIObjectStorage) createPAR(w http.ResponseWriter, r *http.Request, body []byte) {
	var details struct {
		Name        string `json:"name"`
		ObjectName  string `json:"objectName"`
		AccessType  string `json:"accessType"`
		TimeExpires string `json:"timeExpires"`
	}
	if err := json.Unmarshal(body, &details); err != nil {
		s.unexpected(w, r, "CreatePreauthenticatedRequestDetails: "+err.Error())
		return
	}
	expires, err := time.Parse(time.RFC3339Nano, details.TimeExpires)
	switch {
	case details.Name == "" || details.ObjectName == "":
		ociError(w, http.StatusBadRequest, "InvalidParameter", "name and objectName are required")
		return
	case details.AccessType != "ObjectRead":
		s.unexpected(w, r, "accessType "+details.AccessType+", not ObjectRead")
		return
	case err != nil || !expires.After(time.Now()):
		ociError(w, http.StatusBadRequest, "InvalidParameter", "timeExpires must be a time in the future")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[details.ObjectName]; !ok {
		ociError(w, http.StatusNotFound, "ObjectNotFound", "The object "+details.ObjectName+" does not exist")
		return
	}
	s.nextID++
	token := make([]byte, 24)
	rand.Read(token)
	p := &ociPAR{
		id:      fmt.Sprintf("par-%d", s.nextID),
		name:    details.Name,
		object:  details.ObjectName,
		token:   base64.RawURLEncoding.EncodeToString(token),
		expires: expires.UTC(),
		created: time.Now().UTC(),
	}
	s.pars[p.id] = p
	ociJSON(w, http.StatusOK, map[string]any{
		"id": p.id, "name": p.name, "objectName": p.object, "accessType": "ObjectRead",
		"accessUri":   "/p/" + p.token + "/n/" + OCITestNamespace + "/b/" + OCITestBucket + "/o/" + url.PathEscape(p.object),
		"timeExpires": p.expires.Format(time.RFC3339Nano), "timeCreated": p.created.Format(time.RFC3339Nano),
	})
}

func (s *OCIObjectStorage) listPARs(w http.ResponseWriter, prefix string) {
	s.mu.Lock()
	var items []map[string]any
	ids := make([]string, 0, len(s.pars))
	for id := range s.pars {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := s.pars[id]
		if !strings.HasPrefix(p.object, prefix) {
			continue
		}
		items = append(items, map[string]any{
			"id": p.id, "name": p.name, "objectName": p.object, "accessType": "ObjectRead",
			"timeExpires": p.expires.Format(time.RFC3339Nano), "timeCreated": p.created.Format(time.RFC3339Nano),
		})
	}
	s.mu.Unlock()
	if items == nil {
		items = []map[string]any{}
	}
	ociJSON(w, http.StatusOK, items)
}

func (s *OCIObjectStorage) deletePAR(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pars[id]; !ok {
		ociError(w, http.StatusNotFound, "NotFound", "no pre-authenticated request "+id)
		return
	}
	delete(s.pars, id)
	w.Header().Set("opc-request-id", "kiln-test")
	w.WriteHeader(http.StatusNoContent)
}

// servePAR serves GET /p/{token}/n/{ns}/b/{bucket}/o/{object}.
func (s *OCIObjectStorage) servePAR(w http.ResponseWriter, r *http.Request, segments []string) {
	s.call("GetObject (pre-authenticated)")
	name, err := url.PathUnescape(strings.Join(segments[7:], "/"))
	if err != nil || segments[2] != "n" || segments[4] != "b" || segments[6] != "o" {
		s.unexpected(w, r, "not a pre-authenticated object URL")
		return
	}
	s.mu.Lock()
	var data []byte
	found := false
	for _, p := range s.pars {
		if p.token == segments[1] && p.object == name && segments[3] == OCITestNamespace && segments[5] == OCITestBucket && time.Now().Before(p.expires) {
			if o, ok := s.objects[name]; ok {
				data, found = o.data, true
			}
		}
	}
	s.mu.Unlock()
	if !found {
		ociError(w, http.StatusNotFound, "NotFound", "no such pre-authenticated request, or it has expired")
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}
