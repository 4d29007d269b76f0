// Package browser tests kiln's web UI in a real headless Chromium driven
// through the DevTools protocol (chromedp), against a real `kiln serve`
// process whose in-process worker builds fake images: a kiln built with
// the kilnfake tag, whose builder (internal/compose/composetest) runs the
// manifest's stages in moments and writes an artifact that carries the
// manifest it was built from. The service around the builder is the real
// one (depsolving, the queue, the artifact store, the API). The tests
// check what the user chose in the UI on that manifest; what a real
// image then contains is proven by test/e2e.
//
// The harness: TestMain builds the kiln binary once; StartServer runs it;
// Token makes API tokens; NewBrowser opens a tab that records every
// network request (a request to any other host fails the test), fails the
// test on an uncaught exception or a Content-Security-Policy violation,
// and saves a full-page screenshot of every page it visits; Field, Button
// and Link find controls by their label or text, CheckLabels finds
// controls that have none, and Axe checks the page with axe-core.
//
// Screenshots go to a temporary directory, or to $KILN_SCREENSHOTS (a
// path relative to the module root, e.g. docs/screenshots), which keeps
// them.
package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
)

var (
	// kilnBin is the kiln binary TestMain built for this run, with the
	// kilnfake tag: its workers build fake images.
	kilnBin string
	// moduleRoot is the directory of go.mod.
	moduleRoot string
	// shutdown runs at the end of the run (servers shared by tests).
	shutdownMu sync.Mutex
	shutdown   []func()
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "kiln-browser-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kilnBin = filepath.Join(dir, "kiln")
	build := exec.Command("go", "build", "-tags", "kilnfake", "-o", kilnBin, "./cmd/kiln")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building kiln: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	shutdownMu.Lock()
	for i := len(shutdown) - 1; i >= 0; i-- {
		shutdown[i]()
	}
	shutdownMu.Unlock()
	return code
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ---- the server ----

// Server is a running `kiln serve`.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Data string // its --data directory

	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer = testhost.SyncBuffer

// Log is the tail of the server's log.
func (s *Server) Log(lines int) string {
	all := strings.Split(strings.TrimRight(s.stderr.String(), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// Stop ends the server (SIGTERM, then SIGKILL after 30 s).
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// cacheDir is a build cache of the server's own whose package downloads
// and repository metadata are shared with the rest of the test run.
func cacheDir(dir string) (string, error) {
	shared := os.Getenv("KILN_TEST_CACHE_DIR")
	if shared == "" {
		shared = filepath.Join(os.TempDir(), "kiln-test-cache")
	}
	for _, sub := range []string{"debs", "metadata"} {
		if err := os.MkdirAll(filepath.Join(shared, sub), 0o755); err != nil {
			return "", err
		}
		if err := os.Symlink(filepath.Join(shared, sub), filepath.Join(dir, sub)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// FakeStageTime is how long each stage of a fake build takes on the
// servers the tests start unless told otherwise: short, since these tests
// wait for builds to end and look at what they produced. A test that must
// see a build running starts its own server with longer stages
// (TestImagesFollowsABuild: with nothing building, the Images page polls
// every 10 s; TestCancelAndDelete: builds that outlast the test).
const FakeStageTime = 250 * time.Millisecond

// StartServer runs `kiln serve` on a free loopback port with a fresh data
// directory and one in-process worker, and flags (e.g.
// "--trust-identity-header"); the test's end stops it.
func StartServer(t testing.TB, flags ...string) *Server {
	t.Helper()
	return StartServerStaging(t, FakeStageTime, flags...)
}

// StartServerStaging is StartServer whose fake builds take stageTime for
// each stage (e.g. longer than the test, for a build that must still run
// when the test acts on it).
func StartServerStaging(t testing.TB, stageTime time.Duration, flags ...string) *Server {
	t.Helper()
	testhost.CacheDir(t) // the shared cache exists
	cache, err := cacheDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(t.TempDir(), cache, stageTime, flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("kiln serve's log:\n%s", s.Log(40))
		}
	})
	return s
}

func startServer(data, cache string, stageTime time.Duration, flags ...string) (*Server, error) {
	s := &Server{Data: data, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(kilnBin, append([]string{"--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", data,
		"--workers", "1", "--rate-limit", "-1"}, flags...)...)
	s.cmd.Env = append(os.Environ(), "KILN_FAKE_STAGE_TIME="+stageTime.String())
	s.cmd.Stderr = s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`kiln serves on (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.URL = <-addr:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("kiln serve exited at start:\n%s", s.stderr.String())
	case <-time.After(2 * time.Minute):
		s.Stop()
		return nil, fmt.Errorf("kiln serve did not start:\n%s", s.stderr.String())
	}
}

// Token creates an API token of org with `kiln token create`.
func (s *Server) Token(t testing.TB, org, name string) string {
	t.Helper()
	out, err := exec.Command(kilnBin, "token", "create", "--org", org, "--name", name, "--data", s.Data).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kiln token create: %v: %s", err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// API calls the image-builder API as token and decodes the answer into
// out (when not nil). It returns the HTTP status.
func (s *Server) API(t testing.TB, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/api/image-builder/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		t.Logf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	return resp.StatusCode
}

// ---- the browser ----

// Browser is one Chromium tab on a kiln server.
type Browser struct {
	Ctx    context.Context
	Server *Server
	Width  int

	t        testing.TB
	shots    string
	shotN    int
	mu       sync.Mutex
	foreign  []string // requests to other hosts
	requests []string
	problems []string // exceptions and CSP violations
	cancel   func()
}

// chromium is the browser the tests drive: Debian's chromium package.
func chromium(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (scripts/setup installs it)")
	}
	return p
}

// screenshotDir is $KILN_SCREENSHOTS (relative to the module root), or a
// temporary directory that the run removes.
func screenshotDir(t testing.TB) string {
	if d := os.Getenv("KILN_SCREENSHOTS"); d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join(moduleRoot, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// NewBrowser starts a headless Chromium (1280x900) for s. The test's end
// closes it and fails the test if the page requested another host,
// threw an uncaught exception or broke the Content-Security-Policy.
func NewBrowser(t testing.TB, s *Server) *Browser {
	t.Helper()
	exe := chromium(t)
	server, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{Server: s, Width: 1280, t: t, shots: screenshotDir(t)}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("lang", "en-US"))
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u, err := url.Parse(ev.Request.URL)
			b.requests = append(b.requests, ev.Request.Method+" "+ev.Request.URL)
			if err != nil || (u.Scheme != "blob" && u.Scheme != "data" && u.Host != server.Host) {
				b.foreign = append(b.foreign, ev.Request.URL)
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += ": " + d.Exception.Description
			}
			b.problems = append(b.problems, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
		case *cdplog.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") || strings.Contains(ev.Entry.Text, "Content-Security-Policy") {
				b.problems = append(b.problems, "CSP violation: "+ev.Entry.Text)
			}
		}
	}))
	ctx, cancelTimeout := context.WithTimeout(ctx, 12*time.Minute)
	b.Ctx = ctx
	b.cancel = func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		b.cancel()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		b.cancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, f := range b.foreign {
			t.Errorf("the page requested another host: %s", f)
		}
		for _, p := range b.problems {
			t.Errorf("%s", p)
		}
	})
	return b
}

// Requests are the requests the page made so far ("METHOD URL").
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// Do runs actions, failing the test on error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates a JavaScript expression and decodes its value.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// WaitFor waits until the JavaScript expression is truthy (at most
// within), failing the test with what, and returns its value.
func WaitFor[T any](b *Browser, what string, within time.Duration, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		b.Shot("failed-" + slug(what))
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
	return v
}

// Visit opens a route of the UI (e.g. "#/blueprints"), waits until the
// page shows what (a JavaScript condition) and takes a screenshot.
func (b *Browser) Visit(route, what string) {
	b.t.Helper()
	b.Do(chromedp.Navigate(b.Server.URL + "/" + route))
	WaitFor[bool](b, "the page "+route, 30*time.Second, what)
	b.Shot(slug(route))
}

// Shot saves a full-page screenshot as NN-name.png in a directory named
// after the test.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	b.shotN++
	dir := filepath.Join(b.shots, slug(b.t.Name()))
	b.save(filepath.Join(dir, fmt.Sprintf("%02d-%s-%d.png", b.shotN, name, b.Width)))
}

// ShotAs saves a full-page screenshot as name.png in the screenshot
// directory itself: the pictures the documentation shows.
func (b *Browser) ShotAs(name string) {
	b.t.Helper()
	// The page as it rests: no passing notice, no focused field.
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('.toast').forEach(t => t.remove()); document.activeElement && document.activeElement.blur()`))
	b.save(filepath.Join(b.shots, name+".png"))
}

func (b *Browser) save(path string) {
	b.t.Helper()
	// Let fonts and layout settle: the screenshot waits for the fonts.
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.fonts.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
		b.t.Fatalf("waiting for fonts: %v", err)
	}
	// From the top, so that the sticky top bar is where it belongs.
	b.Do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// CheckLabels fails the test for each control of the page that has no
// accessible name (a label, an aria-label or text).
func (b *Browser) CheckLabels() {
	b.t.Helper()
	unlabelled := Eval[[]string](b, `[...document.querySelectorAll('main input, main select, main textarea, main button, header button, main a[href], main summary')]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby') && !e.textContent.trim())
		.map(e => e.outerHTML.slice(0, 120))`)
	for _, u := range unlabelled {
		b.t.Errorf("a control without a label: %s", u)
	}
}

// ---- accessibility ----

// axeInstallDir is where scripts/setup installs axe-core with npm.
const axeInstallDir = "/opt/kiln-test/axe"

// axeTags are the rule sets Axe runs: WCAG 2.0 and 2.1, levels A and AA,
// and axe's best practices.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// axeScript is the source of axe.min.js: $KILN_AXE, or the copy
// scripts/setup installed, read once per run.
func axeScript() (string, error) {
	axeOnce.Do(func() {
		path := os.Getenv("KILN_AXE")
		if path == "" {
			path = filepath.Join(axeInstallDir, "node_modules", "axe-core", "axe.min.js")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			axeErr = fmt.Errorf("axe-core is not installed (run ./scripts/setup, which installs it with npm, or set KILN_AXE to an axe.min.js): %w", err)
			return
		}
		axeSource = string(data)
	})
	return axeSource, axeErr
}

// AxeViolation is one rule axe-core found broken, with the elements that
// break it.
type AxeViolation struct {
	ID     string    `json:"id"`
	Impact string    `json:"impact"` // minor, moderate, serious or critical
	Help   string    `json:"help"`
	Nodes  []AxeNode `json:"nodes"`
}

// AxeNode is one element breaking a rule.
type AxeNode struct {
	Target  []string `json:"target"`  // CSS selectors, outermost first
	HTML    string   `json:"html"`    // the element's opening markup
	Failure string   `json:"failure"` // what is wrong with it, in axe's words
}

// axeDetailed is how many elements of each violation Axe shows with
// their markup and axe's explanation; the rest by their selector only.
const axeDetailed = 3

// axeRun runs axe-core on the whole document and answers its violations.
var axeRun = `axe.run(document, {runOnly: {type: 'tag', values: ` + mustJSON(axeTags) + `}, resultTypes: ['violations']})
	.then((r) => r.violations.map((v) => ({id: v.id, impact: v.impact || '', help: v.help,
		nodes: v.nodes.map((n) => ({target: n.target.map((t) => [].concat(t).join(' >>> ')), html: n.html, failure: n.failureSummary || ''}))})))`

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Axe checks the page as it is now with axe-core (WCAG 2.1 A and AA and
// axe's best practices) and fails the test, naming what (the page and its
// state), with every violation of serious or critical impact: its rule,
// what it asks for, and each element's selector and markup. Violations of
// lesser impact are logged. axe-core is injected through the DevTools
// protocol, so the page's Content-Security-Policy stays the one it has in
// production. Without axe-core installed the test fails: scripts/setup
// installs it.
func (b *Browser) Axe(what string) []AxeViolation {
	b.t.Helper()
	src, err := axeScript()
	if err != nil {
		b.t.Fatal(err)
	}
	if !Eval[bool](b, `typeof window.axe === 'object' && typeof window.axe.run === 'function'`) {
		if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[chromedp.Void](src+"\n;undefined")); err != nil {
			b.t.Fatalf("injecting axe-core: %v", err)
		}
	}
	violations, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]AxeViolation](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("running axe-core on %s: %v", what, err)
	}
	var serious []string
	for _, v := range violations {
		var text strings.Builder
		fmt.Fprintf(&text, "%s (%s): %s", v.ID, v.Impact, v.Help)
		for i, n := range v.Nodes {
			fmt.Fprintf(&text, "\n    %s", strings.Join(n.Target, " "))
			if i >= axeDetailed {
				continue // the selector is enough: the first ones show what is wrong
			}
			fmt.Fprintf(&text, "\n      %s", n.HTML)
			if n.Failure != "" {
				fmt.Fprintf(&text, "\n      %s", strings.ReplaceAll(n.Failure, "\n", "\n      "))
			}
		}
		if v.Impact == "serious" || v.Impact == "critical" {
			serious = append(serious, text.String())
		} else {
			b.t.Logf("axe on %s at %d px: %s", what, b.Width, text.String())
		}
	}
	if len(serious) > 0 {
		b.Shot("axe-" + slug(what))
		b.t.Errorf("axe on %s at %d px: %d serious or critical violations:\n  %s", what, b.Width, len(serious), strings.Join(serious, "\n  "))
	}
	return violations
}

// Resize sets the viewport's width (the height stays 900).
func (b *Browser) Resize(width int) {
	b.t.Helper()
	b.Width = width
	b.Do(chromedp.EmulateViewport(int64(width), 900))
}

// SignIn signs in through the sign-in page with token and waits for the
// Images page.
func (b *Browser) SignIn(token string) {
	b.t.Helper()
	b.Do(chromedp.Navigate(b.Server.URL + "/#/signin"))
	b.Do(chromedp.WaitVisible(Field("API token")))
	b.Type("API token", token)
	b.Do(chromedp.Click(Button("Sign in")))
	WaitFor[bool](b, "the Images page", 30*time.Second, `location.hash === '#/' && !!document.querySelector('main h1') && document.querySelector('main h1').textContent === 'Images'`)
}

// Type replaces what the control labelled label holds with text, typed
// key by key.
func (b *Browser) Type(label, text string) {
	b.t.Helper()
	b.Do(chromedp.WaitVisible(Field(label)),
		chromedp.Evaluate[chromedp.Void](`((c) => { c.focus(); c.select && c.select(); c.value = ''; c.dispatchEvent(new Event('input', {bubbles: true})); })(`+control(label)+`)`),
		chromedp.SendKeys(Field(label), text))
}

// Select chooses the option value of the select labelled label.
func (b *Browser) Select(label, value string) {
	b.t.Helper()
	b.Do(chromedp.WaitVisible(Field(label)),
		chromedp.Evaluate[chromedp.Void](`((c) => { c.value = `+jsString(value)+`; c.dispatchEvent(new Event('change', {bubbles: true})); })(`+control(label)+`)`))
}

// control is the JavaScript expression of the control labelled label.
func control(label string) string {
	return `document.getElementById([...document.querySelectorAll('label')].find(l => l.textContent.trim() === ` + jsString(label) + `).htmlFor)`
}

// DownloadTo makes the browser save downloads in dir and returns a
// channel that receives each finished download's path.
func (b *Browser) DownloadTo(dir string) <-chan string {
	b.t.Helper()
	events := chromedp.BrowserEvents(b.Ctx, browser.DownloadProgress)
	if _, err := chromedp.CallBrowser(b.Ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		b.t.Fatalf("setting the download directory: %v", err)
	}
	done := make(chan string, 4)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				p := ev.FilePath
				if p == "" {
					p = filepath.Join(dir, ev.GUID)
				}
				done <- p
			}
		}
	}()
	return done
}

// DownloadImage clicks the page's "Download image" button and returns the
// path of the file the browser saved.
func (b *Browser) DownloadImage() string {
	b.t.Helper()
	done := b.DownloadTo(b.t.TempDir())
	b.Do(chromedp.Click(Button("Download image")))
	select {
	case path := <-done:
		return path
	case <-time.After(3 * time.Minute):
		b.t.Fatal("the download did not finish")
		return ""
	}
}

// readFakeImage reads the image the browser downloaded to path, a fake
// one, and returns the manifest it was built from (its header and
// checksum checked).
func readFakeImage(t *testing.T, path string) *manifest.Manifest {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := composetest.ParseArtifact(data)
	require.NoError(t, err, "the download is the image the build wrote")
	return m
}

// stagesOf are the options of every stage of type T in m's pipelines, in
// order.
func stagesOf[T manifest.StageOptions](m *manifest.Manifest) []T {
	var out []T
	for _, p := range m.Pipelines {
		for _, st := range p.Stages {
			if o, ok := st.Options.(T); ok {
				out = append(out, o)
			}
		}
	}
	return out
}

// servedManifest is the manifest the API serves for the compose id (the
// one the compose page shows).
func (s *Server) servedManifest(t *testing.T, token, id string) *manifest.Manifest {
	t.Helper()
	var list []json.RawMessage
	require.Equal(t, http.StatusOK, s.API(t, token, "GET", "/composes/"+id+"/manifests", nil, &list))
	require.Len(t, list, 1)
	m, err := manifest.Parse(list[0])
	require.NoError(t, err)
	return m
}

// ---- one server for the whole run ----

// Env is a server shared by the tests of a run, with a token for each of
// two organizations, so that one image build serves many tests.
type Env struct {
	*Server
	TokenA, TokenB string // orgs "acme" and "globex"

	mu      sync.Mutex
	tarID   string
	tarDone bool
}

var (
	envOnce sync.Once
	env     *Env
	envErr  error
)

// SharedEnv starts the run's shared server the first time it is called;
// TestMain stops it after the last test.
func SharedEnv(t testing.TB) *Env {
	t.Helper()
	envOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kiln-browser-env-")
		if err != nil {
			envErr = err
			return
		}
		testhost.CacheDir(t) // the shared cache exists
		cache := filepath.Join(dir, "cache")
		if err = os.MkdirAll(cache, 0o755); err == nil {
			cache, err = cacheDir(cache)
		}
		if err != nil {
			envErr = err
			return
		}
		s, err := startServer(filepath.Join(dir, "data"), cache, FakeStageTime)
		if err != nil {
			envErr = err
			return
		}
		shutdownMu.Lock()
		shutdown = append(shutdown, func() { s.Stop(); _ = os.RemoveAll(dir) })
		shutdownMu.Unlock()
		env = &Env{Server: s}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	testhost.CacheDir(t)
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.TokenA == "" {
		env.TokenA = env.Token(t, "acme", "browser-a")
		env.TokenB = env.Token(t, "globex", "browser-b")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kiln serve's log:\n%s", env.Log(40))
		}
	})
	return env
}

// TarCustomizations are the customizations of the run's tar image; the
// imported blueprint file has the same.
var TarCustomizations = map[string]any{
	"hostname": "kiln-ui-test",
	"packages": []string{"curl"},
}

// SubmitTar submits the run's one tar image for org acme, once, and
// returns its compose ID.
func (e *Env) SubmitTar(t testing.TB) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tarID == "" {
		e.tarID = e.submitTarImage(t, e.TokenA)
	}
	return e.tarID
}

// submitTarImage submits a tar image (debian-12, x86_64, named
// ui-test-rootfs, with TarCustomizations) through the API as token and
// returns its compose ID.
func (s *Server) submitTarImage(t testing.TB, token string) string {
	t.Helper()
	var res struct {
		ID string `json:"id"`
	}
	code := s.API(t, token, "POST", "/compose", map[string]any{
		"distribution": "debian-12",
		"image_name":   "ui-test-rootfs",
		"image_requests": []map[string]any{{
			"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local"},
		}},
		"customizations": TarCustomizations,
	}, &res)
	if code != http.StatusCreated {
		t.Fatalf("submitting the tar compose: %d", code)
	}
	return res.ID
}

// BuiltTar is the ID of the run's tar image once it is built (submitting
// and waiting for it through the API if no test did yet).
func (e *Env) BuiltTar(t testing.TB) string {
	t.Helper()
	id := e.SubmitTar(t)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var st struct {
			ImageStatus struct {
				Status string `json:"status"`
				Error  any    `json:"error"`
			} `json:"image_status"`
		}
		if code := e.API(t, e.TokenA, "GET", "/composes/"+id, nil, &st); code != http.StatusOK {
			t.Fatalf("compose status: %d", code)
		}
		switch st.ImageStatus.Status {
		case "success":
			return id
		case "failure":
			t.Fatalf("the tar build failed: %v\n%s", st.ImageStatus.Error, e.Log(60))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tar build did not finish in 3 minutes (status %s)", st.ImageStatus.Status)
		}
		time.Sleep(time.Second) // polling the API for the build's end
	}
}

// ---- finding things the way a user does ----

// xq quotes s as an XPath string literal.
func xq(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return `'` + s + `'`
}

// Field is the control whose <label> reads label.
func Field(label string) string {
	return `//*[@id=//label[normalize-space(.)=` + xq(label) + `]/@for]`
}

// Button is the button whose visible text is text.
func Button(text string) string {
	return `//button[normalize-space(.)=` + xq(text) + `]`
}

// Link is the link whose visible text is text.
func Link(text string) string {
	return `//a[normalize-space(.)=` + xq(text) + `]`
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func slug(s string) string {
	s = strings.ToLower(s)
	s = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(s, "-")
	s = strings.Trim(s, "-")
	if s == "" {
		s = "images"
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}
