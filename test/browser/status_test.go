package browser

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of what the pages say of an image's status and where it came
// from, and of the lists' small words.

// cutProxy is a TCP proxy to a server that can drop every connection it
// carries and refuse new ones for a while: the network between a browser
// and kiln failing, with neither of them told.
type cutProxy struct {
	URL string // http://127.0.0.1:PORT

	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]bool
	down  bool
}

// newCutProxy forwards a loopback port to s; the test's end closes it.
func newCutProxy(t *testing.T, s *Server) *cutProxy {
	t.Helper()
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{URL: "http://" + ln.Addr().String(), ln: ln, target: u.Host, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.cut(false) })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			_ = c.Close() // refused: the client's request fails at once
			continue
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
	go func() { defer wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut drops every open connection; down says whether new ones are
// refused until the next cut(false).
func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for c := range p.conns {
		_ = c.Close()
	}
}

// through is s as reached through the proxy: a browser made for it
// loads the pages and calls the API through the proxy.
func (p *cutProxy) through(s *Server) *Server {
	return &Server{URL: p.URL, Data: s.Data}
}

// composeBadge is the compose page's status badge's text.
const composeBadge = `((b) => b ? b.textContent.trim() : '')(document.querySelector('main h1 .badge'))`

// A build log whose connection drops while the build runs says it is
// reconnecting, follows on from where it was once the network is back,
// and ends with the whole log, each line once.
func TestLogReconnectsAfterADroppedConnection(t *testing.T) {
	// Six stages of 2 s: the build runs well past the cut.
	s := StartServerStaging(t, 2*time.Second)
	token := s.Token(t, "acme", "browser-reconnect")
	id := s.submitTarImage(t, token)
	proxy := newCutProxy(t, s)
	b := NewBrowser(t, proxy.through(s))
	b.SignIn(token)
	b.Visit("#/composes/"+id, `!!document.querySelector('pre.log')`)
	WaitFor[bool](b, "the first lines of the log", time.Minute, `document.querySelector('pre.log').textContent.includes('== ')`)
	before := Eval[string](b, `document.querySelector('pre.log').textContent`)

	proxy.cut(true)
	WaitFor[bool](b, "the page to say it reconnects", 15*time.Second, hasText(".log-state", "Reconnecting…"))
	b.Shot("reconnecting")
	time.Sleep(2 * time.Second) // the network stays down for a while
	proxy.cut(false)

	WaitFor[bool](b, "the build to end", 3*time.Minute, `['Success', 'Failure'].includes(`+composeBadge+`)`)
	require.Equal(t, "Success", Eval[string](b, composeBadge))
	WaitFor[bool](b, "the whole log", 30*time.Second, `document.querySelector('pre.log').dataset.complete === 'true'`)

	// What the API has, exactly: nothing lost, nothing twice.
	req, err := http.NewRequest(http.MethodGet, s.URL+"/api/image-builder/v1/composes/"+id+"/logs", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	whole, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	shown := Eval[string](b, `document.querySelector('pre.log').textContent`)
	assert.Equal(t, string(whole), shown)
	assert.True(t, strings.HasPrefix(shown, before), "the page kept what it had")
	assert.Greater(t, len(shown), len(before), "lines came after the cut")
	assert.Equal(t, "", Eval[string](b, `document.querySelector('.log-state').textContent`), "no reconnecting note once it is done")

	offsets := 0
	for _, r := range b.Requests() {
		if strings.Contains(r, "/composes/"+id+"/logs?offset=") {
			offsets++
		}
	}
	assert.Positive(t, offsets, "the page asked for the log from where it was")
}

// A finished compose without a log says "No log was written." and not
// also that it waits for the build to start.
func TestNoLogSaysSoOnce(t *testing.T) {
	s := StartServerStaging(t, time.Hour)
	token := s.Token(t, "acme", "browser-nolog")
	id := s.submitTarImage(t, token)
	require.Equal(t, http.StatusOK, s.API(t, token, "POST", "/composes/"+id+"/cancel", nil, &struct{}{}))
	b := NewBrowser(t, s)
	b.SignIn(token)
	b.Visit("#/composes/"+id, hasText(".log-state", "No log was written."))
	assert.Equal(t, "", Eval[string](b, `((p) => p.offsetParent === null ? '' : getComputedStyle(p, '::before').content + p.textContent)(document.querySelector('pre.log'))`),
		"no empty log box waiting for the build to start")
	assert.NotContains(t, Eval[string](b, `document.querySelector('main').innerText`), "Waiting for the build to start")
}

// A cancelled build has its own neutral badge in the list and on its
// page (not a red Failure), and its own filter.
func TestCancelledHasItsOwnBadgeAndFilter(t *testing.T) {
	s := StartServerStaging(t, time.Hour) // builds outlast the test
	token := s.Token(t, "acme", "browser-cancelled")
	running := s.submitTarImage(t, token)
	stopped := s.submitTarImage(t, token)
	require.Equal(t, http.StatusOK, s.API(t, token, "POST", "/composes/"+stopped+"/cancel", nil, &struct{}{}))
	t.Cleanup(func() { s.API(t, token, "POST", "/composes/"+running+"/cancel", nil, nil) })

	b := NewBrowser(t, s)
	b.SignIn(token)
	row := func(id string) string { return `document.querySelector('tr[data-id="` + id + `"]')` }
	WaitFor[bool](b, "both images", 15*time.Second, `!!(`+row(running)+` && `+row(stopped)+`)`)
	badge := Eval[[]string](b, `((e) => [e.textContent, e.className, getComputedStyle(e).color])(`+row(stopped)+`.querySelector('.badge'))`)
	assert.Equal(t, "Cancelled", badge[0])
	assert.Equal(t, "badge badge-cancelled", badge[1])
	danger := Eval[string](b, `((e) => { e.className = 'badge badge-failure'; const c = getComputedStyle(e).color; e.remove(); return c; })(document.body.appendChild(document.createElement('span')))`)
	assert.NotEqual(t, danger, badge[2], "not the failure's red")
	assert.NotEqual(t, "Cancelled", Eval[string](b, row(running)+`.querySelector('.badge').textContent`))

	b.Select("Status", "cancelled")
	WaitFor[bool](b, "the cancelled filter", 15*time.Second, `location.hash === '#/?status=cancelled' && !!document.querySelector('tbody tr')`)
	assert.Equal(t, []string{stopped}, Eval[[]string](b, `[...document.querySelectorAll('tbody tr')].map(r => r.dataset.id)`))
	assert.Equal(t, "Cancelled", Eval[string](b, `document.querySelector('.filters select').selectedOptions[0].textContent`))
	b.Shot("cancelled-filter")

	b.Visit("#/composes/"+stopped, `!!document.querySelector('.cancelled-note')`)
	assert.Equal(t, "Cancelled", Eval[string](b, composeBadge))
	assert.Equal(t, "status", Eval[string](b, `document.querySelector('.cancelled-note').getAttribute('role')`), "a cancellation is no error alert")
	assert.False(t, Eval[bool](b, `!!document.querySelector('.alert-error')`))
}

// A compose no connected worker can build says what it waits for as its
// status, in the list and on its page, not "Pending" or "Queued".
func TestWaitingIsTheStatus(t *testing.T) {
	e := SharedEnv(t)
	token := e.Server.Token(t, "waitco", "browser-wait") // an org of its own: its image never ends
	var res struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.Server.API(t, token, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "arm-waits",
		"image_requests": []map[string]any{{"architecture": "aarch64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}}},
	}, &res))
	t.Cleanup(func() { e.Server.API(t, token, "POST", "/composes/"+res.ID+"/cancel", nil, nil) })

	b := NewBrowser(t, e.Server)
	b.SignIn(token)
	want := "Waiting for a worker that builds aarch64"
	WaitFor[bool](b, "the waiting badge in the list", 30*time.Second, hasText("td .badge", want))
	b.Visit("#/composes/"+res.ID, `!!document.querySelector('.timeline')`)
	assert.Equal(t, want, Eval[string](b, composeBadge))
	// The step it stopped at (its packages are resolved by any worker)
	// says why it does not go on. The badge shows as soon as the compose
	// is queued; the page follows the package resolution when it ends.
	WaitFor[bool](b, "the current step once the packages are resolved", 30*time.Second,
		hasText(".timeline li.tl-current .tl-label", "Packages resolved: waiting for a worker that builds aarch64"))
	b.Resize(390)
	noHorizontalScroll(t, b, "the waiting compose")
}

// builtFromBlueprint creates a blueprint of org token with two versions
// and builds version 1; it returns the blueprint's and the compose's IDs.
func builtFromBlueprint(t *testing.T, s *Server, token, name string) (string, string) {
	t.Helper()
	bp := map[string]any{
		"name": name, "description": "built from a blueprint", "distribution": "debian-12",
		"image_requests": []map[string]any{{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}}},
		"customizations": map[string]any{"hostname": "from-bp"},
	}
	var created struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/blueprints", bp, &created))
	bp["customizations"] = map[string]any{"hostname": "from-bp2"}
	require.Equal(t, http.StatusOK, s.API(t, token, "PUT", "/blueprints/"+created.ID, bp, &struct{}{}))
	var built []struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/blueprints/"+created.ID+"/compose", map[string]any{"version": 1}, &built))
	require.Len(t, built, 1)
	return created.ID, built[0].ID
}

// The list and an image's page say which blueprint and version the image
// came from, linked to that version; the list says when each download
// expires; counts are in words that agree with their number.
func TestImagesSayWhereTheyCameFromAndWhenTheyExpire(t *testing.T) {
	s := StartServer(t)
	token := s.Token(t, "acme", "browser-origin")
	bpID, id := builtFromBlueprint(t, s, token, "origin-web")
	waitBuilt(t, s, token, id)

	b := NewBrowser(t, s)
	b.SignIn(token)
	row := `document.querySelector('tr[data-id="` + id + `"]')`
	WaitFor[bool](b, "the image in the list", 30*time.Second, row+` !== null`)
	link := row + `.querySelector('.from-blueprint a')`
	assert.Equal(t, "From origin-web, version 1", Eval[string](b, row+`.querySelector('.from-blueprint').textContent`))
	assert.Equal(t, "#/blueprints/"+bpID+"?version=1", Eval[string](b, link+`.getAttribute('href')`))
	assert.Equal(t, "1 image", Eval[string](b, `document.querySelector('.list-count').textContent`))

	// The download link lasts the download expiry (7 days by default,
	// sooner than retention removes the image).
	assert.Equal(t, "Expires", Eval[string](b, `[...document.querySelectorAll('thead th')].map(th => th.textContent)[7]`))
	exp := Eval[[]string](b, `((t) => [t.textContent, t.getAttribute('title'), t.getAttribute('datetime')])(`+row+`.querySelector('td[data-label="Expires"] time'))`)
	assert.Equal(t, "in 7 days", exp[0])
	at, err := time.Parse(time.RFC3339, exp[2])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(7*24*time.Hour), at, time.Hour)
	assert.True(t, strings.HasPrefix(exp[1], "Expires "), exp[1])
	b.CheckLabels()

	b.Visit("#/composes/"+id, `!!document.querySelector('dd.from-blueprint a')`)
	assert.Equal(t, "origin-web, version 1", Eval[string](b, `document.querySelector('dd.from-blueprint a').textContent`))
	b.Do(chromedp.Click(`dd.from-blueprint a`))
	WaitFor[bool](b, "the blueprint at version 1", 15*time.Second,
		`location.hash === '#/blueprints/`+bpID+`?version=1' && !!document.querySelector('tr[aria-current="true"]')`)
	assert.Equal(t, "Version 1", Eval[string](b, `document.querySelector('tr[aria-current="true"] .strong').textContent`))
	// The first version has none before it: the diff starts from it.
	assert.Equal(t, "1", Eval[string](b, control("From version")+`.value`))
	assert.Equal(t, "2", Eval[string](b, control("To version")+`.value`))

	b.Visit("#/blueprints", hasText("td a", "origin-web"))
	assert.Equal(t, "1 blueprint", Eval[string](b, `document.querySelector('.list-count').textContent`))
}

// An image whose download expired says so.
func TestExpiredSaysSo(t *testing.T) {
	b := NewBrowser(t, SharedEnv(t).Server)
	b.Visit("", `!!document.querySelector('main')`)
	got, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]string](`import('/status.js').then((m) => {
		const past = m.expiry({status: 'success', upload_status: {options: {expires_at: '2020-01-02T03:04:05Z'}}});
		const none = m.expiry({status: 'failure', upload_status: {options: {}}});
		return [past.textContent, past.getAttribute('title') || '', none.textContent];
	})`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, "Expired", got[0])
	assert.Contains(t, got[1], "2020")
	assert.Equal(t, "—", got[2])
}

// The "latest" badge stays beside its version on a narrow screen.
func TestLatestBadgeStaysWithItsVersion(t *testing.T) {
	e := SharedEnv(t)
	bpID, id := builtFromBlueprint(t, e.Server, e.TokenA, "latest-badge")
	t.Cleanup(func() { e.API(t, e.TokenA, "POST", "/composes/"+id+"/cancel", nil, nil) })
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Resize(390)
	b.Visit("#/blueprints/"+bpID, `!!document.querySelector('.tag')`)
	rects := Eval[[]float64](b, `((tag) => { const v = tag.parentElement.querySelector('.strong').getBoundingClientRect(); const t = tag.getBoundingClientRect();
		return [v.top, v.bottom, v.right, t.top, t.bottom, t.left]; })(document.querySelector('.tag'))`)
	require.Len(t, rects, 6)
	vMid, tMid := (rects[0]+rects[1])/2, (rects[3]+rects[4])/2
	assert.InDelta(t, vMid, tMid, 4, "the badge is on its version's line: %v", rects)
	assert.GreaterOrEqual(t, rects[5], rects[2], "the badge follows its version")
	assert.Equal(t, "Version 2", Eval[string](b, `document.querySelector('.tag').parentElement.querySelector('.strong').textContent`))
	noHorizontalScroll(t, b, "the blueprint page")
}

// The import form ticks no image type, as the wizard does: importing
// without one is stopped at the types box; the API's problems with a file
// are listed one by one at the file.
func TestImportFormDefaultsAndErrors(t *testing.T) {
	e := SharedEnv(t)
	file := filepath.Join(t.TempDir(), "two-problems.toml")
	require.NoError(t, os.WriteFile(file, []byte(`name = "two-problems"

[customizations]
hostname = "-bad-"

[[customizations.user]]
name = "Admin User"
`), 0o644))
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Visit("#/blueprints?import=1", `!!document.querySelector('input[type=checkbox][value=tar]')`)
	assert.Equal(t, 0, Eval[int](b, `document.querySelectorAll('.import-card input[type=checkbox]:checked').length`), "no type is chosen for the user")
	b.Do(chromedp.SetUploadFiles(Field("Blueprint file"), []string{file}))
	b.Do(chromedp.Click(Button("Import")))
	msg := WaitFor[string](b, "the error at the image types", 10*time.Second, `((p) => p && !p.hidden ? p.textContent : '')(document.querySelector('fieldset .field-error'))`)
	assert.Equal(t, "Choose at least one image type.", msg)
	assert.True(t, Eval[bool](b, `document.activeElement.closest('fieldset') === document.querySelector('.import-card fieldset')`), "the focus is at the types")

	b.Do(chromedp.Click(`input[type=checkbox][value=tar]`))
	b.Do(chromedp.Click(Button("Import")))
	items := WaitFor[[]string](b, "the problems at the file", 15*time.Second,
		`((p) => p && !p.hidden ? [...p.querySelectorAll('.error-item')].map(i => i.textContent) : null)(document.getElementById(`+control("Blueprint file")+`.id + '-error'))`)
	b.Shot("import-errors")
	require.Len(t, items, 2, "each problem is an item of its own: %q", items)
	assert.Contains(t, strings.Join(items, "\n"), "hostname")
	assert.Contains(t, strings.Join(items, "\n"), "Admin User")
}
