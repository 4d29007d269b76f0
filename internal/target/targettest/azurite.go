package targettest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/kiln-project/kiln/internal/target"
)

// Azurite's well-known development account: public, the same in every
// Azurite, and good for nothing else.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	// AzuriteKeyEnv is the variable the test configuration reads the
	// account key from.
	AzuriteKeyEnv = "KILN_TEST_AZURE_STORAGE_KEY"
	// AzuriteContainer is the container StartAzurite creates.
	AzuriteContainer = "kiln-images"
)

// azuriteInstallDir is where ./scripts/setup installs Azurite.
const azuriteInstallDir = "/opt/kiln-test/azurite"

// Azurite is a running Azurite blob service (the Azure Storage emulator)
// with the container AzuriteContainer in its development account.
type Azurite struct {
	// Endpoint is the account's blob address,
	// http://127.0.0.1:<port>/devstoreaccount1.
	Endpoint string
	// Container is the container this value's tests use.
	Container string
	// CAFile is the PEM certificate Azurite serves https with
	// (StartAzuriteOAuth), for the target's ca_file; empty for http.
	CAFile string

	tb   testing.TB
	bin  string
	dir  string
	port int
	log  *bytes.Buffer
	proc *azuriteProc
	// args are extra arguments (https and OAuth).
	args []string
	// client reaches Azurite (trusting its certificate).
	client *http.Client
}

// azuriteProc is the process, shared by the values NewContainer makes.
type azuriteProc struct {
	mu         sync.Mutex
	cmd        *exec.Cmd
	containers atomic.Int64
}

// AzuriteBinary finds azurite-blob: $KILN_AZURITE_BLOB, then $PATH, then
// where ./scripts/setup installs it.
func AzuriteBinary() (string, error) {
	if p := os.Getenv("KILN_AZURITE_BLOB"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	p := filepath.Join(azuriteInstallDir, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("azurite-blob is not installed (run ./scripts/setup, which installs Azurite with npm, or set KILN_AZURITE_BLOB)")
}

// StartAzurite starts Azurite's blob service on a free loopback port,
// keeping its data in a temporary directory, and creates the container.
// A missing Azurite fails the test, naming ./scripts/setup.
func StartAzurite(tb testing.TB) *Azurite {
	tb.Helper()
	bin, err := AzuriteBinary()
	if err != nil {
		tb.Fatal(err)
	}
	port, err := azuriteFreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return startAzurite(tb, bin, port, false)
}

// StartAzuriteOAuth is StartAzurite serving https with a certificate of
// its own (CAFile) and taking OAuth bearer tokens besides the account
// key, as a storage account does with Microsoft Entra ID; StartARM's
// token endpoint issues tokens it takes.
func StartAzuriteOAuth(tb testing.TB) *Azurite {
	tb.Helper()
	bin, err := AzuriteBinary()
	if err != nil {
		tb.Fatal(err)
	}
	port, err := azuriteFreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return startAzurite(tb, bin, port, true)
}

func startAzurite(tb testing.TB, bin string, port int, oauth bool) *Azurite {
	tb.Helper()
	a := &Azurite{tb: tb, bin: bin, dir: tb.TempDir(), port: port, log: &bytes.Buffer{}, proc: &azuriteProc{}, client: http.DefaultClient}
	scheme := "http"
	if oauth {
		scheme = "https"
		certFile, keyFile, client := azuriteCert(tb, tb.TempDir())
		a.CAFile, a.client = certFile, client
		a.args = []string{"--cert", certFile, "--key", keyFile, "--oauth", "basic"}
	}
	a.Endpoint = fmt.Sprintf("%s://127.0.0.1:%d/%s", scheme, port, AzuriteAccount)
	tb.Cleanup(a.Stop)
	a.Start()
	a.createContainer(tb, AzuriteContainer)
	return a
}

// NewContainer gives the same Azurite with a new, empty container of
// its own, so the subtests of one test can share one Azurite (it takes
// seconds to start) without seeing each other's blobs.
func (a *Azurite) NewContainer(tb testing.TB) *Azurite {
	tb.Helper()
	b := *a
	b.tb = tb
	name := fmt.Sprintf("kiln-%d", a.proc.containers.Add(1))
	b.createContainer(tb, name)
	return &b
}

func (a *Azurite) createContainer(tb testing.TB, name string) {
	tb.Helper()
	resp, err := a.do(http.MethodPut, "/"+name, url.Values{"restype": {"container"}})
	if err != nil {
		tb.Fatalf("azurite: create the container: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("azurite: create the container: %s", resp.Status)
	}
	a.Container = name
}

// Start starts Azurite (again, after Stop) on the same port and data,
// and waits until it answers.
func (a *Azurite) Start() {
	a.tb.Helper()
	a.proc.mu.Lock()
	defer a.proc.mu.Unlock()
	if a.proc.cmd != nil {
		return
	}
	args := append([]string{
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(a.port),
		"--location", a.dir, "--skipApiVersionCheck", "--disableTelemetry", "--silent"}, a.args...)
	cmd := exec.Command(a.bin, args...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	// Its own process group, so Stop ends all of it; and it dies with
	// the test binary should that be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		a.tb.Fatalf("azurite: %v", err)
	}
	a.proc.cmd = cmd
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", a.port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			a.tb.Fatalf("azurite did not start on port %d: %s", a.port, a.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops Azurite; its data stays for Start.
func (a *Azurite) Stop() {
	a.proc.mu.Lock()
	defer a.proc.mu.Unlock()
	cmd := a.proc.cmd
	if cmd == nil {
		return
	}
	// Azurite closes (saving its data for Start) on an interrupt; end
	// its process group, which is ours, and kill it if it lingers.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	a.proc.cmd = nil
}

func (a *Azurite) sharedKey() *blob.SharedKeyCredential {
	k, err := blob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		a.tb.Fatal(err)
	}
	return k
}

// Env gives the target's configuration the account key.
func (a *Azurite) Env() map[string]string {
	return map[string]string{AzuriteKeyEnv: AzuriteKey}
}

// BlobInfo is a blob as Azurite holds it.
type BlobInfo struct {
	Name string
	// Type is "PageBlob", "BlockBlob" or "AppendBlob".
	Type string
	Size int64
}

// Blobs lists the container's blobs (List Blobs).
func (a *Azurite) Blobs(tb testing.TB) []BlobInfo {
	tb.Helper()
	var out []BlobInfo
	marker := ""
	for {
		q := url.Values{"restype": {"container"}, "comp": {"list"}}
		if marker != "" {
			q.Set("marker", marker)
		}
		resp, err := a.do(http.MethodGet, "/"+a.Container, q)
		if err != nil {
			tb.Fatalf("azurite: list the blobs: %v", err)
		}
		var list struct {
			Blobs []struct {
				Name       string `xml:"Name"`
				Properties struct {
					BlobType      string `xml:"BlobType"`
					ContentLength int64  `xml:"Content-Length"`
				} `xml:"Properties"`
			} `xml:"Blobs>Blob"`
			NextMarker string `xml:"NextMarker"`
		}
		err = xml.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			tb.Fatalf("azurite: list the blobs: %s %v", resp.Status, err)
		}
		for _, b := range list.Blobs {
			out = append(out, BlobInfo{Name: b.Name, Type: b.Properties.BlobType, Size: b.Properties.ContentLength})
		}
		if list.NextMarker == "" {
			return out
		}
		marker = list.NextMarker
	}
}

// do sends a bodiless request to the account, signed with its Shared Key
// as the Blob service's protocol has it.
func (a *Azurite) do(method, path string, query url.Values) (*http.Response, error) {
	req, err := http.NewRequest(method, a.Endpoint+path+"?"+query.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", "2021-12-02")
	var headers []string
	for k := range req.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-ms-") {
			headers = append(headers, lk+":"+req.Header.Get(k))
		}
	}
	sort.Strings(headers)
	resource := "/" + AzuriteAccount + "/" + AzuriteAccount + path
	var params []string
	for k, v := range query {
		params = append(params, strings.ToLower(k)+":"+strings.Join(v, ","))
	}
	sort.Strings(params)
	// The fields a bodiless request sends none of are empty (a zero
	// Content-Length too, since version 2015-02-21).
	toSign := strings.Join([]string{method, "", "", "", "", "", "", "", "", "", "", ""}, "\n") + "\n" +
		strings.Join(headers, "\n") + "\n" + resource
	if len(params) > 0 {
		toSign += "\n" + strings.Join(params, "\n")
	}
	key, err := base64.StdEncoding.DecodeString(AzuriteKey)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(toSign))
	req.Header.Set("Authorization", "SharedKey "+AzuriteAccount+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return a.client.Do(req)
}

// ReadBlob reads a blob of the container whole (name as in the
// container, or its full URL) and gives its type.
func (a *Azurite) ReadBlob(name string) ([]byte, string, error) {
	var b []byte
	typ, err := a.downloadBlob(name, func(r io.Reader) (err error) {
		b, err = io.ReadAll(r)
		return err
	})
	return b, typ, err
}

// downloadBlob downloads a blob of the container (name as in the
// container, or its full URL), hands its body to read and gives its type.
func (a *Azurite) downloadBlob(name string, read func(io.Reader) error) (string, error) {
	u := name
	if p, err := url.Parse(name); err != nil || p.Scheme == "" {
		u = a.Endpoint + "/" + a.Container + "/" + name
	}
	opts := &blob.ClientOptions{}
	opts.Transport = a.client
	c, err := blob.NewClientWithSharedKeyCredential(u, a.sharedKey(), opts)
	if err != nil {
		return "", err
	}
	resp, err := c.DownloadStream(context.Background(), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	typ := ""
	if resp.BlobType != nil {
		typ = string(*resp.BlobType)
	}
	return typ, read(resp.Body)
}

// BlobSHA256 reads a blob of the container (name as in the container, or
// its full URL) as a stream and gives the SHA-256 (hex) and size of its
// bytes and its type, without holding it in memory: the blobs of a real
// image are gigabytes.
func (a *Azurite) BlobSHA256(name string) (string, int64, string, error) {
	h := sha256.New()
	var n int64
	typ, err := a.downloadBlob(name, func(r io.Reader) (err error) {
		n, err = io.Copy(h, r)
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), n, typ, err
}

// AzureConfig is the [targets.azure] section for this Azurite and arm
// (see StartARM), with fast retries and polling for tests; Env gives it
// its secrets.
func AzureConfig(az *Azurite, arm *ARM) target.AzureConfig {
	return target.AzureConfig{
		TenantID:        arm.TenantID,
		SubscriptionID:  arm.SubscriptionID,
		ClientID:        arm.ClientID,
		ClientSecretEnv: ARMSecretEnv,
		StorageAccount:  AzuriteAccount,
		Container:       az.Container,
		StorageKeyEnv:   AzuriteKeyEnv,
		Location:        arm.Location,
		BlobEndpoint:    az.Endpoint,
		ARMEndpoint:     arm.URL,
		AuthorityHost:   arm.AuthorityHost,
		CAFile:          az.CAFile,
		MaxRetries:      2,
		RetryDelay:      10 * time.Millisecond,
		PollInterval:    10 * time.Millisecond,
		CleanupWait:     20 * time.Second,
	}
}

// AzureEnv is the environment AzureConfig's section reads its secrets
// from.
func AzureEnv(az *Azurite, arm *ARM) target.Env {
	env := az.Env()
	env[ARMSecretEnv] = arm.ClientSecret
	return func(k string) string { return env[k] }
}

// FaultProxy stands between a target and Azurite, passing every request
// through until it is told to fail Put Page requests.
type FaultProxy struct {
	// Endpoint is the account's address through the proxy.
	Endpoint string

	mu        sync.Mutex
	passPages int // Put Page requests still passed through; <0: all
	passed    int
	failed    int
}

// FaultProxy (for StartAzurite's http Azurite) starts a proxy to it that passes passPages Put Page
// requests and answers every later one with 500 Internal Server Error,
// as a storage account that fails mid-upload; everything else passes.
// A negative passPages passes them all (a test then counts them).
func (a *Azurite) FaultProxy(tb testing.TB, passPages int) *FaultProxy {
	tb.Helper()
	backend, err := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", a.port))
	if err != nil {
		tb.Fatal(err)
	}
	fp := &FaultProxy{passPages: passPages}
	rp := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Get("comp") == "page" {
			fp.mu.Lock()
			fail := fp.passPages == 0
			if fail {
				fp.failed++
			} else {
				fp.passed++
				if fp.passPages > 0 {
					fp.passPages--
				}
			}
			fp.mu.Unlock()
			if fail {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.Header().Set("x-ms-error-code", "InternalError")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>InternalError</Code><Message>The server encountered an internal error.</Message></Error>`)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	fp.Endpoint = srv.URL + "/" + AzuriteAccount
	return fp
}

// Passed is how many Put Page requests the proxy passed to Azurite.
func (fp *FaultProxy) Passed() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.passed
}

// Failed is how many Put Page requests the proxy failed.
func (fp *FaultProxy) Failed() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.failed
}

// azuriteCert writes a certificate for 127.0.0.1 and its key into dir
// and gives a client that trusts it.
func azuriteCert(tb testing.TB, dir string) (certFile, keyFile string, client *http.Client) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "azurite"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return certFile, keyFile, &http.Client{Transport: tr}
}

func azuriteFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
