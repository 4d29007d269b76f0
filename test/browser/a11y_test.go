package browser

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/worker"
)

// Host names that tell the sweep's builder how a build goes.
const (
	heldHost   = "a11y-held"   // the build waits at its first stage until the test ends
	brokenHost = "a11y-broken" // the build fails on fields of its blueprint
)

// sweepBuilder builds fake images the way the image's host name asks:
// held, broken, or built in moments.
type sweepBuilder struct {
	built, held, broken *composetest.Builder
}

var _ worker.Builder = (*sweepBuilder)(nil)

func newSweepBuilder() *sweepBuilder {
	b := &sweepBuilder{
		built: &composetest.Builder{StageTime: FakeStageTime},
		held:  &composetest.Builder{StageTime: FakeStageTime},
		broken: &composetest.Builder{StageTime: FakeStageTime, FailAt: "kiln.hostname", FailProblems: blueprint.Errors{
			{Path: "customizations.services.enabled[0]", Message: "no installed unit is called cockpit.socket"},
			{Path: "customizations.user[0].shell", Message: "/bin/zsh is not in the image"},
		}},
	}
	b.held.Block()
	return b
}

// Build implements worker.Builder.
func (b *sweepBuilder) Build(ctx context.Context, m *manifest.Manifest, dir string, log io.Writer, progress engine.Reporter) (*compose.Built, error) {
	var host string
	if hs := stagesOf[*manifest.Hostname](m); len(hs) > 0 {
		host = hs[0].Hostname
	}
	switch host {
	case heldHost:
		return b.held.Build(ctx, m, dir, log, progress)
	case brokenHost:
		return b.broken.Build(ctx, m, dir, log, progress)
	}
	return b.built.Build(ctx, m, dir, log, progress)
}

// startSweepServer runs kiln serve's service in the test process with
// builder building its images (two x86_64 workers), so that the test
// decides which builds succeed, fail or keep running.
func startSweepServer(t *testing.T, builder worker.Builder) *Server {
	t.Helper()
	return startInProcess(t, builder)
}

// sweepBlueprint is a blueprint that fills every step of the wizard.
func sweepBlueprint(hostname string) map[string]any {
	return map[string]any{
		"name": "a11y-web", "description": "A web server, for the accessibility sweep", "distribution": "debian-12",
		"image_requests": []map[string]any{{"architecture": "x86_64", "image_type": "qcow2", "upload_request": map[string]any{"type": "local"}}},
		"customizations": map[string]any{
			"hostname": hostname,
			"packages": []string{"nginx", "curl"},
			"users": []map[string]any{{"name": "admin", "groups": []string{"sudo"},
				"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ0VBuVDvZcXEv3K1YD3EdTqSZ0uQGh+0hSt9XX9xvT admin@example.com"}},
			"groups":      []map[string]any{{"name": "web"}},
			"timezone":    map[string]any{"timezone": "Europe/Berlin"},
			"locale":      map[string]any{"languages": []string{"en_US.UTF-8"}, "keyboard": "us"},
			"services":    map[string]any{"enabled": []string{"nginx.service"}},
			"firewall":    map[string]any{"ports": []string{"443:tcp"}},
			"filesystem":  []map[string]any{{"mountpoint": "/var", "min_size": 2 << 30}},
			"files":       []map[string]any{{"path": "/etc/motd", "data": "Welcome\n"}},
			"directories": []map[string]any{{"path": "/srv/www"}},
		},
	}
}

// submitSweepImage submits a tar image whose host name is host and
// returns its compose ID.
func submitSweepImage(t *testing.T, s *Server, token, name, arch, host string) string {
	t.Helper()
	var res struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": name,
		"image_requests": []map[string]any{{"architecture": arch, "image_type": "tar", "upload_request": map[string]any{"type": "local"}}},
		"customizations": map[string]any{"hostname": host},
	}, &res))
	return res.ID
}

// waitForStatus polls the API until the compose id has one of statuses.
func waitForStatus(t *testing.T, s *Server, token, id string, statuses ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var st struct {
			ImageStatus struct {
				Status string `json:"status"`
			} `json:"image_status"`
		}
		require.Equal(t, http.StatusOK, s.API(t, token, "GET", "/composes/"+id, nil, &st))
		if slices.Contains(statuses, st.ImageStatus.Status) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("compose %s is %s, not %s, after 3 minutes", id, st.ImageStatus.Status, strings.Join(statuses, " or "))
		}
		time.Sleep(200 * time.Millisecond) // polling the API for the build's progress
	}
}

// TestAccessibility checks every page of the UI, and every step and
// state of the wizard, with axe-core at 1280 and at 390 px: no serious or
// critical violation of WCAG 2.1 A and AA or axe's best practices.
func TestAccessibility(t *testing.T) {
	builder := newSweepBuilder()
	s := startSweepServer(t, builder)
	t.Cleanup(builder.held.Release)
	token := s.Token(t, "a11yco", "browser-a11y")
	newcomer := s.Token(t, "a11y-new", "browser-a11y-new") // an organization with nothing yet

	// Images in every state: built, failed on its blueprint's fields,
	// cancelled, building, and waiting for a worker of its architecture.
	built := submitSweepImage(t, s, token, "a11y-built", "x86_64", "a11y-built")
	waitForStatus(t, s, token, built, "success")
	broken := submitSweepImage(t, s, token, "a11y-broken", "x86_64", brokenHost)
	waitForStatus(t, s, token, broken, "failure")
	cancelled := submitSweepImage(t, s, token, "a11y-cancelled", "x86_64", heldHost)
	waitForStatus(t, s, token, cancelled, "building")
	require.Equal(t, http.StatusOK, s.API(t, token, "POST", "/composes/"+cancelled+"/cancel", nil, &struct{}{}))
	waitForStatus(t, s, token, cancelled, "failure", "cancelled")
	running := submitSweepImage(t, s, token, "a11y-running", "x86_64", heldHost)
	waitForStatus(t, s, token, running, "building")
	waiting := submitSweepImage(t, s, token, "a11y-arm", "aarch64", "a11y-arm")
	t.Cleanup(func() {
		for _, id := range []string{running, waiting} {
			s.API(t, token, "POST", "/composes/"+id+"/cancel", nil, nil)
		}
	})

	// A blueprint with two versions, every step of the wizard filled.
	var bp struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/blueprints", sweepBlueprint("web01"), &bp))
	require.Equal(t, http.StatusOK, s.API(t, token, "PUT", "/blueprints/"+bp.ID, sweepBlueprint("web02"), &struct{}{}))
	var fromBlueprint []struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/blueprints/"+bp.ID+"/compose", nil, &fromBlueprint))
	require.Len(t, fromBlueprint, 1)
	waitForStatus(t, s, token, fromBlueprint[0].ID, "success")

	b := NewBrowser(t, s)
	for _, width := range []int{1280, 390} {
		b.Resize(width)
		sweepSignIn(t, b, token)
		b.Visit("#/", `document.querySelectorAll('tbody tr').length === 6`)
		b.Axe("the images list")
		sweepDialog(t, b, running)
		b.Visit("#/?status=uploading", `!!document.querySelector('main .empty-state')`)
		b.Axe("the images list filtered to nothing")
		for _, c := range []struct{ what, id, ready string }{
			{"a built image's page", built, `!!document.querySelector('pre.log') && document.querySelector('pre.log').dataset.complete === 'true'`},
			{"a failed image's page", broken, `!!document.querySelector('.error-reason')`},
			{"a cancelled image's page", cancelled, `!!document.querySelector('main h1 .badge') && !!document.querySelector('.timeline li')`},
			{"a building image's page", running, `!!document.querySelector('.timeline .tl-current')`},
			{"a waiting image's page", waiting, `!!document.querySelector('.waiting-reason')`},
		} {
			b.Visit("#/composes/"+c.id, c.ready)
			b.Axe(c.what)
		}
		b.Visit("#/composes/"+built, `!!document.querySelector('details.collapsible summary')`)
		b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('details.collapsible summary').click()`))
		WaitFor[bool](b, "the manifest", 15*time.Second, `document.querySelector('details.collapsible pre').textContent.length > 0`)
		b.Axe("a built image's page with its manifest open")
		b.Visit("#/blueprints", `document.querySelectorAll('tbody tr').length === 1`)
		b.Axe("the blueprints list")
		sweepImport(t, b)
		b.Visit("#/blueprints/"+bp.ID, `!!document.querySelector('.diff') && !!document.querySelector('main a[href="#/composes/`+fromBlueprint[0].ID+`"]')`)
		b.Axe("a blueprint's page with its versions' diff and images")
		b.Visit("#/create", `!!document.querySelector('main .stepper li[aria-current="step"]') && !!document.querySelector('main h2')`)
		b.Axe("a new wizard")
		b.Visit("#/no-such-page", `!!document.querySelector('main h1, main h2')`)
		b.Axe("an unknown route")
		sweepWizard(t, b, bp.ID)
		leaveWizard(t, b)
		signOut(b)

		// What a new organization sees first.
		b.SignIn(newcomer)
		WaitFor[bool](b, "the images list's empty state", 15*time.Second, `!!document.querySelector('main .empty-state')`)
		b.Axe("the images list of a new organization")
		b.Visit("#/blueprints", `!!document.querySelector('main .empty-state')`)
		b.Axe("the blueprints list of a new organization")
		signOut(b)
	}
}

// signOut signs out with the top bar's button.
func signOut(b *Browser) {
	b.t.Helper()
	b.Do(chromedp.Click(Button("Sign out")))
	WaitFor[bool](b, "the sign-in page", 15*time.Second, `!!document.querySelector('input[type=password]')`)
}

// sweepSignIn checks the sign-in page empty and with the error of a
// refused token, then signs in with token.
func sweepSignIn(t *testing.T, b *Browser, token string) {
	t.Helper()
	b.Visit("#/signin", `!!document.querySelector('input[type=password]')`)
	b.Axe("the sign-in page")
	b.Type("API token", "not-a-token")
	b.Do(chromedp.Click(Button("Sign in")))
	WaitFor[string](b, "the refused token's error", 15*time.Second, fieldError("API token"))
	b.Axe("the sign-in page with an error")
	b.SignIn(token)
}

// sweepDialog checks the images list with a confirmation open (cancelling
// the build id) and declines it.
func sweepDialog(t *testing.T, b *Browser, id string) {
	t.Helper()
	b.Do(chromedp.Click(`//tr[@data-id="` + id + `"]` + Button("Cancel")))
	WaitFor[bool](b, "the confirmation", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	b.Axe("the images list with a confirmation open")
	b.Do(chromedp.KeyEvent(kb.Escape))
	WaitFor[bool](b, "the dialog to close", 5*time.Second, `!document.querySelector('dialog')`)
}

// sweepImport checks the import form, empty and with its errors.
func sweepImport(t *testing.T, b *Browser) {
	t.Helper()
	b.Do(chromedp.Click(Button("Import blueprint")))
	b.Do(chromedp.WaitVisible(Field("Blueprint file")))
	b.Axe("the import form")
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('form input[type=checkbox]:checked').forEach((c) => c.click())`))
	b.Do(chromedp.Click(Button("Import")))
	WaitFor[string](b, "the import form's errors", 5*time.Second, fieldError("Blueprint file"))
	b.Axe("the import form with errors")
}

// stepperItems is the JavaScript expression of the wizard's steps (the
// stepper's list items).
const stepperItems = `[...document.querySelectorAll('main .stepper li')]`

// currentStep is the title of the step the wizard shows.
func currentStep(b *Browser) string {
	return Eval[string](b, `((li) => li ? (li.querySelector('.stepper-title') || li).textContent.trim() : '')(document.querySelector('main .stepper li[aria-current="step"]'))`)
}

// goToStep opens the wizard's step i (0-based) through the stepper, as
// a user does, and waits for it.
func goToStep(t *testing.T, b *Browser, i int) string {
	t.Helper()
	item := stepperItems + `[` + strconv.Itoa(i) + `]`
	if Eval[bool](b, `!!`+item+`.querySelector('button')`) {
		b.Do(chromedp.Evaluate[chromedp.Void](item + `.querySelector('button').click()`))
	}
	WaitFor[bool](b, fmt.Sprintf("the wizard's step %d", i+1), 15*time.Second, item+`.getAttribute('aria-current') === 'step'`)
	title := currentStep(b)
	WaitFor[bool](b, "the heading of the step "+title, 15*time.Second,
		`[...document.querySelectorAll('main h2')].some((h) => h.textContent.includes(`+jsString(title)+`))`)
	return title
}

// stepWith opens, one after the other, the wizard's steps until one has
// the control labelled label, and answers its title.
func stepWith(t *testing.T, b *Browser, label string) string {
	t.Helper()
	n := Eval[int](b, stepperItems+`.length`)
	for i := range n {
		title := goToStep(t, b, i)
		if Eval[bool](b, wizControl(label)+` !== null`) {
			return title
		}
	}
	t.Fatalf("no step of the wizard has a control labelled %q", label)
	return ""
}

// sweepWizard checks every step of the wizard editing the blueprint id,
// then a suggestion list open, then the wizard showing errors.
func sweepWizard(t *testing.T, b *Browser, id string) {
	t.Helper()
	b.Visit("#/create?blueprint="+id, `!!document.querySelector('main .stepper li[aria-current="step"]')`)
	n := Eval[int](b, stepperItems+`.length`)
	require.Greater(t, n, 1, "the wizard has steps")
	for i := range n {
		title := goToStep(t, b, i)
		b.Axe("the wizard's step " + title)
	}

	// A suggestion list open: the time zones matching what is typed.
	stepWith(t, b, "Time zone")
	b.Type("Time zone", "Berl")
	WaitFor[bool](b, "the time zone suggestions", 10*time.Second,
		`((c) => { const l = document.getElementById(c.getAttribute('aria-controls')); return !!l && !l.hidden && l.querySelectorAll('[role=option]').length > 0; })(`+wizControl("Time zone")+`)`)
	b.Axe("the wizard with a suggestion list open")
	b.Do(chromedp.KeyEvent(kb.Escape))

	// Errors: a host name the API refuses, sent with Build image.
	stepWith(t, b, "Hostname")
	b.Type("Hostname", "web_01")
	goToStep(t, b, n-1)
	b.Do(chromedp.Click(Button("Build image")))
	WaitFor[string](b, "the host name's error", 20*time.Second, errorAt("Hostname"))
	b.Axe("the wizard showing errors")
	goToStep(t, b, n-1)
	b.Axe("the wizard's review with errors")
}

// leaveWizard goes from the wizard, with changes not saved, to the
// images list; when the wizard asks before its changes are lost, the
// question is checked too and answered yes.
func leaveWizard(t *testing.T, b *Browser) {
	t.Helper()
	b.Do(chromedp.Navigate(b.Server.URL + "/#/"))
	images := `location.hash === '#/' && !!document.querySelector('main h1') && document.querySelector('main h1').textContent === 'Images'`
	if WaitFor[string](b, "the images list or a question", 15*time.Second,
		`document.querySelector('dialog[open]') ? 'asked' : (`+images+`) ? 'left' : ''`) == "asked" {
		b.Axe("the wizard asking before its changes are lost")
		b.Do(chromedp.Evaluate[chromedp.Void](`((d) => (d.querySelector('button[value=ok]') || [...d.querySelectorAll('button')].pop()).click())(document.querySelector('dialog[open]'))`))
		WaitFor[bool](b, "the images list", 15*time.Second, images)
	}
}

// TestFocusLooksLikeFocus checks that the keyboard focus does not look
// like an error: a focused control's ring is a colour apart from the
// error border's (a neutral grey, or a hue far from red) and stands out
// from the page; an invalid control keeps its error border while focused;
// and a heading the page focuses by script (after a change of page or
// step) gets no box that makes it look like a text field.
func TestFocusLooksLikeFocus(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.Visit("#/signin", `!!document.querySelector('input[type=password]')`)

	// Focus from the keyboard: Tab from the page's start to the token field.
	b.Do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	for i := 0; !Eval[bool](b, `document.activeElement && document.activeElement.type === 'password'`); i++ {
		require.Less(t, i, 10, "Tab never reached the token field")
		b.Do(chromedp.KeyEvent(kb.Tab))
	}
	ring := Eval[[]string](b, `((c) => { const s = getComputedStyle(c); return [s.outlineStyle, s.outlineWidth, s.outlineColor, getComputedStyle(document.body).backgroundColor, String(c.matches(':focus-visible'))]; })(document.activeElement)`)
	require.Equal(t, "true", ring[4], "the token field, reached with Tab, is :focus-visible")
	assert.NotEqual(t, "none", ring[0], "a focused field has an outline")
	focus := parseCSSColor(t, ring[2])

	// An invalid field: its border, once the focus is elsewhere.
	b.Do(chromedp.Click(Button("Sign in")))
	WaitFor[string](b, "the empty token's error", 5*time.Second, fieldError("API token"))
	b.Do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	borderColor := Eval[string](b, `getComputedStyle(document.querySelector('input[type=password]')).borderTopColor`)
	invalidBorder := parseCSSColor(t, borderColor)
	assert.False(t, looksAlike(focus, invalidBorder),
		"the focus ring (%s) looks like the error border (%s): a focused field would look invalid", ring[2], borderColor)
	assert.GreaterOrEqual(t, contrastRatio(focus, parseCSSColor(t, ring[3])), 3.0,
		"the focus ring (%s) stands out from the page (WCAG 1.4.11: 3:1)", ring[2])

	// Focused again, the invalid field still shows its error border.
	b.Do(chromedp.Focus(`input[type=password]`))
	assert.Equal(t, invalidBorder, parseCSSColor(t, Eval[string](b, `getComputedStyle(document.activeElement).borderTopColor`)),
		"an invalid field keeps its error border while focused")

	// Headings the page focuses by script, after a change made with the
	// keyboard (which makes them :focus-visible): the page's h1 and the
	// wizard step's h2, in an organization of the test's own.
	token := e.Token(t, "a11y-focus", "browser-focus")
	var bp struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.API(t, token, "POST", "/blueprints", sweepBlueprint("web01"), &bp))
	b.SignIn(token)
	b.Do(chromedp.Focus(Link("Blueprints")), chromedp.KeyEvent(kb.Enter))
	WaitFor[bool](b, "the Blueprints page's heading to have the focus", 15*time.Second,
		`document.activeElement && document.activeElement.tagName === 'H1' && document.activeElement.textContent === 'Blueprints'`)
	assertNoFieldBox(t, b, "the page's heading")

	// Editing a stored blueprint, every step can be opened from the
	// stepper: the first one, with Enter.
	b.Visit("#/create?blueprint="+bp.ID, stepperItems+`.some((li) => li.querySelector('button'))`)
	b.Do(chromedp.Focus(`//ol[contains(@class,"stepper")]//button`), chromedp.KeyEvent(kb.Enter))
	WaitFor[bool](b, "the step's heading to have the focus", 15*time.Second,
		`document.activeElement && document.activeElement.tagName === 'H2' && document.querySelector('main').contains(document.activeElement)`)
	assertNoFieldBox(t, b, "the wizard step's heading")
}

// assertNoFieldBox fails the test when the focused element, a heading
// focused by script, is drawn with an outline, a ring or a border around
// it, as a text field is.
func assertNoFieldBox(t *testing.T, b *Browser, what string) {
	t.Helper()
	st := Eval[map[string]string](b, `((e) => { const s = getComputedStyle(e);
		return {focusVisible: String(e.matches(':focus-visible')), outlineStyle: s.outlineStyle, outlineWidth: s.outlineWidth, boxShadow: s.boxShadow,
			border: [s.borderTopStyle, s.borderRightStyle, s.borderBottomStyle, s.borderLeftStyle].join(' ')}; })(document.activeElement)`)
	require.Equal(t, "true", st["focusVisible"], "%s, focused after a keyboard action, is :focus-visible", what)
	assert.True(t, st["outlineStyle"] == "none" || st["outlineWidth"] == "0px", "%s has no outline around it: %v", what, st)
	assert.Equal(t, "none", st["boxShadow"], "%s has no ring around it", what)
	assert.Equal(t, "none none none none", st["border"], "%s has no border around it", what)
}

// rgb is a colour's red, green and blue, 0 to 255.
type rgb struct{ R, G, B float64 }

// parseCSSColor reads a computed colour ("rgb(1, 2, 3)" or "rgba(...)").
func parseCSSColor(t *testing.T, s string) rgb {
	t.Helper()
	var c rgb
	var a float64
	if _, err := fmt.Sscanf(s, "rgb(%g, %g, %g)", &c.R, &c.G, &c.B); err == nil {
		return c
	}
	if _, err := fmt.Sscanf(s, "rgba(%g, %g, %g, %g)", &c.R, &c.G, &c.B, &a); err == nil {
		return c
	}
	t.Fatalf("not a computed colour: %q", s)
	return c
}

// hueSat is a colour's hue (degrees) and saturation (0 to 1), as HSL.
func hueSat(c rgb) (hue, sat float64) {
	r, g, b := c.R/255, c.G/255, c.B/255
	hi, lo := math.Max(r, math.Max(g, b)), math.Min(r, math.Min(g, b))
	l := (hi + lo) / 2
	d := hi - lo
	if d == 0 {
		return 0, 0
	}
	sat = d / (1 - math.Abs(2*l-1))
	switch hi {
	case r:
		hue = math.Mod((g-b)/d, 6)
	case g:
		hue = (b-r)/d + 2
	default:
		hue = (r-g)/d + 4
	}
	hue *= 60
	if hue < 0 {
		hue += 360
	}
	return hue, sat
}

// looksAlike says whether two colours read as the same kind of colour:
// both saturated, with hues less than 60 degrees apart (kiln's orange and
// the error red do).
func looksAlike(a, b rgb) bool {
	ha, sa := hueSat(a)
	hb, sb := hueSat(b)
	if sa < 0.25 || sb < 0.25 {
		return false
	}
	d := math.Abs(ha - hb)
	return math.Min(d, 360-d) < 60
}

// contrastRatio is WCAG's contrast ratio of two colours.
func contrastRatio(a, b rgb) float64 {
	lum := func(c rgb) float64 {
		ch := func(v float64) float64 {
			v /= 255
			if v <= 0.03928 {
				return v / 12.92
			}
			return math.Pow((v+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(c.R) + 0.7152*ch(c.G) + 0.0722*ch(c.B)
	}
	la, lb := lum(a), lum(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}
