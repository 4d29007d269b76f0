package browser

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wizard's steps these tests go to, by the titles the stepper shows.
const (
	stepOutput  = "Image output"
	stepContent = "Content"
	stepSystem  = "System"
	stepReview  = "Review"
)

// markedSteps is the JavaScript expression of the titles of the steps the
// stepper marks as having errors.
const markedSteps = `[...document.querySelectorAll('.stepper li.has-error .stepper-title')].map(s => s.textContent)`

// waitStep waits until the wizard shows the step titled title.
func waitStep(t *testing.T, b *Browser, title string) {
	t.Helper()
	for i, s := range wizardSteps {
		if s == title {
			onStep(t, b, i+1)
			return
		}
	}
	t.Fatalf("the wizard has no step %s", title)
}

// nextTo presses Next until the wizard shows the step titled title.
func nextTo(t *testing.T, b *Browser, title string) {
	t.Helper()
	for i := 0; currentStep(b) != title; i++ {
		require.Less(t, i, len(wizardSteps), "Next never reached the step %s", title)
		before := currentStep(b)
		b.Do(chromedp.Click(Button("Next")))
		WaitFor[bool](b, "the step after "+before, 15*time.Second,
			`((li) => !!li && li.querySelector('.stepper-title').textContent !== `+jsString(before)+`)(document.querySelector('.stepper li[aria-current="step"]'))`)
	}
	waitStep(t, b, title)
}

// leave moves the focus out of the control labelled label, as Tab does.
func leave(b *Browser, label string) {
	b.Do(chromedp.Evaluate[chromedp.Void](wizControl(label) + `.blur()`))
}

// posts are the POST requests the page made to the API so far, by path.
func posts(b *Browser) []string {
	var out []string
	for _, r := range b.Requests() {
		method, raw, _ := strings.Cut(r, " ")
		if u, err := url.Parse(raw); err == nil && method == "POST" {
			out = append(out, strings.TrimPrefix(u.Path, "/api/image-builder/v1"))
		}
	}
	return out
}

// storedBlueprint is a blueprint of the organization as the API lists it.
type storedBlueprint struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// blueprintNamed is the organization's blueprint called name, if any.
func blueprintNamed(t *testing.T, e *Env, name string) (storedBlueprint, bool) {
	t.Helper()
	var list struct {
		Data []storedBlueprint `json:"data"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints?limit=100&name="+url.QueryEscape(name), nil, &list))
	for _, bp := range list.Data {
		if bp.Name == name {
			return bp, true
		}
	}
	return storedBlueprint{}, false
}

// blueprintCount is how many blueprints the organization has.
func blueprintCount(t *testing.T, e *Env) int {
	t.Helper()
	var list struct {
		Meta struct {
			Count int `json:"count"`
		} `json:"meta"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints?limit=1", nil, &list))
	return list.Meta.Count
}

// composesOf are the versions the composes built from a blueprint were
// built from, by compose ID.
func composesOf(t *testing.T, e *Env, id string) map[string]int {
	t.Helper()
	var list struct {
		Data []struct {
			ID               string `json:"id"`
			BlueprintVersion int    `json:"blueprint_version"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints/"+id+"/composes?limit=100", nil, &list))
	out := map[string]int{}
	for _, c := range list.Data {
		out[c.ID] = c.BlueprintVersion
	}
	return out
}

// TestWizardEveryProblemAtOnce makes every mistake of the issue at once
// (a host name with an underscore, a user called "Admin User", a group
// with a capital letter, and a group the distribution does not have),
// and one on another step (a name longer than the API takes): the
// wizard's own checks say so as each field is left, before any request;
// Review marks the steps with problems rather than ticking them; Build
// sends nothing to be stored or built and shows every problem at its
// control, the API's with the wizard's, with every step marked. A port
// of a protocol no firewall has (icmp) is explained as it is added; an
// sctp port is taken, as the API takes it (once the other problems are
// fixed, nothing stays marked).
func TestWizardEveryProblemAtOnce(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	// The API takes names of up to 100 characters; the wizard leaves that
	// to the API, so this one is found only when Review renders it.
	longName := "every-problem-" + strings.Repeat("x", 100)
	openWizard(t, b)
	fillOutput(t, b, longName)

	nextTo(t, b, stepSystem)
	b.Do(chromedp.Click(Button("Add user")))
	b.Type("User name", "Admin User")
	leave(b, "User name")
	assert.Contains(t, WaitFor[string](b, "the user name's error", 5*time.Second, errorAt("User name")), "Not a valid name")
	b.Type("Groups", "wheel, Web-Admins")
	leave(b, "Groups")
	assert.Contains(t, WaitFor[string](b, "the group's error", 5*time.Second, errorAt("Groups")), "Not a valid name")
	// Typing again takes the verdict back until the field is left.
	b.Type("User name", "Admin Use")
	assert.Equal(t, "", Eval[string](b, errorAt("User name")))
	b.Type("User name", "Admin User")
	leave(b, "User name")
	WaitFor[string](b, "the user name's error again", 5*time.Second, errorAt("User name"))
	b.Type("Hostname", "web_01")
	leave(b, "Hostname")
	assert.Contains(t, WaitFor[string](b, "the hostname's error", 5*time.Second, errorAt("Hostname")), "Not a valid host name")

	// The step left with problems is marked, before anything is rendered.
	clickStep(b, stepContent)
	waitStep(t, b, stepContent)
	assert.Equal(t, []string{stepSystem}, Eval[[]string](b, markedSteps), "the step left with problems is marked")
	assert.Empty(t, posts(b), "the wizard's checks ask nothing of the API")
	clickStep(b, stepSystem)
	waitStep(t, b, stepSystem)
	assert.Contains(t, WaitFor[string](b, "the hostname's error", 5*time.Second, errorAt("Hostname")), "Not a valid host name")
	b.Shot("checked-before-asking")

	addChip(b, "Open ports", "5000:icmp")
	assert.Contains(t, WaitFor[string](b, "the icmp port's error", 5*time.Second, errorAt("Open ports")),
		`"5000:icmp" is not a port; write PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL with protocol tcp, udp, sctp or dccp`)
	addChip(b, "Open ports", "5000:sctp")
	WaitFor[bool](b, "the port chip", 5*time.Second, chipsOf("Open ports")+`.join() === '5000:sctp'`)

	// Review: the API renders the blueprint and finds the problems; the
	// steps are marked, not ticked, and Review names them.
	nextTo(t, b, stepReview)
	WaitFor[bool](b, "the rendering's verdict", 15*time.Second, `document.getElementById('wz-toml').textContent.includes('customizations.users[0].groups[0]')`)
	WaitFor[bool](b, "the name's step marked", 5*time.Second, markedSteps+`.join() === `+jsString(stepOutput+","+stepSystem))
	assert.Equal(t, 0, Eval[int](b, `document.querySelectorAll('.stepper li.has-error.done').length`), "no step with a problem is ticked")
	problems := WaitFor[string](b, "Review naming the steps", 5*time.Second, `((p) => p && !p.hidden ? p.textContent : '')(document.getElementById('wz-review-problems'))`)
	assert.Contains(t, problems, stepOutput)
	assert.Contains(t, problems, stepSystem)
	b.Shot("review-marks-steps")

	// Build: nothing is stored or built; every problem is at its control,
	// starting with the first step that has one.
	before, storedBefore := len(posts(b)), blueprintCount(t, e)
	b.Do(chromedp.Click(Button("Build image")))
	waitStep(t, b, stepOutput)
	assert.NotEmpty(t, WaitFor[string](b, "the name's error", 15*time.Second, errorAt("Name")))
	assert.Equal(t, "Name", Eval[string](b, `document.activeElement.labels[0].textContent`), "the focus is on the first field to fix")
	assert.Equal(t, []string{stepOutput, stepSystem}, Eval[[]string](b, markedSteps))
	for _, p := range posts(b)[before:] {
		assert.Equal(t, "/blueprints/render", p, "only the verdict was asked for")
	}
	assert.Equal(t, storedBefore, blueprintCount(t, e), "nothing was saved")
	b.Shot("every-problem-output")
	clickStep(b, stepSystem)
	waitStep(t, b, stepSystem)
	assert.Contains(t, WaitFor[string](b, "the user name's error", 5*time.Second, errorAt("User name")), "Not a valid name")
	groups := WaitFor[string](b, "the groups' errors", 5*time.Second, errorAt("Groups"))
	assert.Contains(t, groups, "Not a valid name", "the wizard's verdict on Web-Admins")
	assert.Contains(t, groups, `"wheel"`, "the API's verdict on wheel, from the same answer")
	assert.Contains(t, WaitFor[string](b, "the hostname's error", 5*time.Second, errorAt("Hostname")), "Not a valid host name")
	assert.Equal(t, "web_01", Eval[string](b, valueOf("Hostname")), "what was typed is kept")
	assert.Equal(t, []string{stepOutput, stepSystem}, Eval[[]string](b, markedSteps))
	b.Shot("every-problem-system")

	// Fixing them unmarks the steps.
	b.Type("Hostname", "web01")
	leave(b, "Hostname")
	b.Type("User name", "admin")
	b.Type("Groups", "sudo")
	leave(b, "Groups")
	WaitFor[bool](b, "System unmarked", 5*time.Second, markedSteps+`.join() === `+jsString(stepOutput))
	clickStep(b, stepOutput)
	waitStep(t, b, stepOutput)
	b.Type("Name", "every-problem")
	leave(b, "Name")
	WaitFor[bool](b, "no step marked", 5*time.Second, markedSteps+`.length === 0`)
}

// TestWizardReviewMarksRenderingProblems: a problem only the API knows (a
// filesystem on a tar image, which has no partitions) is found when
// Review renders the blueprint, and its step is marked before Build.
func TestWizardReviewMarksRenderingProblems(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	openWizard(t, b)
	fillOutput(t, b, "review-marks")
	nextTo(t, b, stepSystem)
	b.Do(chromedp.Click(Button("Add filesystem")))
	b.Type("Mount point", "/var")
	b.Type("Minimum size", "2")
	b.Select("Unit of the minimum size of filesystem 1", "GiB")
	assert.Empty(t, Eval[[]string](b, markedSteps), "the wizard cannot tell on its own")
	nextTo(t, b, stepReview)
	WaitFor[bool](b, "the filesystem's step marked", 15*time.Second, markedSteps+`.join() === `+jsString(stepSystem))
	assert.Contains(t, Eval[string](b, `document.getElementById('wz-toml').textContent`), "customizations.filesystem: Not supported by image type tar")
	assert.False(t, Eval[bool](b, `[...document.querySelectorAll('.stepper li.done .stepper-title')].some(s => s.textContent === `+jsString(stepSystem)+`)`),
		"the step is not ticked")
	assert.Contains(t, Eval[string](b, `document.getElementById('wz-review-problems').textContent`), stepSystem)
	assert.NotContains(t, posts(b), "/blueprints", "nothing was saved")

	// The step named opens with the problem at its control.
	b.Do(chromedp.Click(`//*[@id="wz-review-problems"]//button[normalize-space(.)=` + xq(stepSystem) + `]`))
	waitStep(t, b, stepSystem)
	assert.Contains(t, WaitFor[string](b, "the filesystem error", 5*time.Second, `(document.querySelector('.wizard-list .wizard-container-error') || {}).textContent || ''`),
		"Not supported by image type tar")
	b.Do(chromedp.Click(Button("Remove filesystem 1")))
	WaitFor[bool](b, "the mark to go", 5*time.Second, markedSteps+`.length === 0`)
}

// TestWizardKeepsWork: Build from a new wizard stores the blueprint and
// builds it (so it can be built again), Build while editing stores a new
// version and builds that one, and leaving the wizard with unsaved
// changes asks first: Cancel stays with everything typed, Leave goes.
// Create blueprint is the same wizard, titled for it, ending with Save.
func TestWizardKeepsWork(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)

	// Create blueprint, from the Blueprints page's link: its title, and
	// Save as its last button.
	b.Do(chromedp.Click(Link("Blueprints")))
	WaitFor[bool](b, "the Blueprints page", 15*time.Second, `location.hash === '#/blueprints' && (document.querySelector('main h1') || {}).textContent === 'Blueprints'`)
	b.Do(chromedp.Click(Link("Create blueprint")))
	WaitFor[bool](b, "the wizard", 15*time.Second, `!!document.querySelector('.stepper li[aria-current="step"]')`)
	assert.Equal(t, "#/create?mode=blueprint", Eval[string](b, `location.hash`))
	assert.Equal(t, "Create blueprint", Eval[string](b, `document.querySelector('main h1').textContent`))
	assert.Equal(t, "Create blueprint · kiln", Eval[string](b, `document.title`))
	nothingTyped := `((e) => { const r = e.dispatchEvent(new Event('beforeunload', {cancelable: true})); return r; })(window)`
	assert.True(t, Eval[bool](b, nothingTyped), "an untouched wizard is left unasked")
	fillOutput(t, b, "keeps-blueprint")
	nextTo(t, b, stepReview)
	assert.Equal(t, "Save blueprint", Eval[string](b, `[...document.querySelectorAll('.wizard-actions button')].pop().textContent`))
	b.Do(chromedp.Click(Link("Images")))
	WaitFor[bool](b, "the question", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	b.Do(chromedp.Click(`//dialog[@open]//button[normalize-space(.)="Leave"]`))
	WaitFor[bool](b, "the Images page", 15*time.Second, `location.hash === '#/' && (document.querySelector('main h1') || {}).textContent === 'Images'`)

	openWizard(t, b)
	fillOutput(t, b, "keeps-work")
	nextTo(t, b, stepSystem)
	b.Type("Hostname", "keep01")
	nextTo(t, b, stepReview)
	WaitFor[bool](b, "the TOML", 15*time.Second, `document.getElementById('wz-toml').textContent.includes('keeps-work')`)
	assert.Equal(t, "Build image", Eval[string](b, `[...document.querySelectorAll('.wizard-actions button')].pop().textContent`))

	// Leaving by a link asks; Cancel stays, with everything typed.
	b.Do(chromedp.Click(Link("Blueprints")))
	WaitFor[bool](b, "the question", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	assert.Contains(t, Eval[string](b, `document.querySelector('dialog[open]').textContent`), "not saved")
	b.Shot("leave-asks")
	b.Do(chromedp.Click(`//dialog[@open]//button[normalize-space(.)="Cancel"]`))
	WaitFor[bool](b, "the question to go", 5*time.Second, `!document.querySelector('dialog')`)
	assert.Equal(t, "#/create", Eval[string](b, `location.hash`))
	assert.Equal(t, "keeps-work", Eval[string](b, valueOf("Name")))
	// The back button asks too, and the address stays the wizard's.
	b.Do(chromedp.Evaluate[chromedp.Void](`history.back()`))
	WaitFor[bool](b, "the question", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	b.Do(chromedp.Click(`//dialog[@open]//button[normalize-space(.)="Cancel"]`))
	WaitFor[bool](b, "the question to go", 5*time.Second, `!document.querySelector('dialog')`)
	assert.Equal(t, "#/create", Eval[string](b, `location.hash`))
	assert.Equal(t, "keeps-work", Eval[string](b, valueOf("Name")))
	assert.False(t, Eval[bool](b, nothingTyped), "closing the tab asks")
	// Signing out asks too; Cancel stays signed in.
	b.Do(chromedp.Click(Button("Sign out")))
	WaitFor[bool](b, "the question", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	b.Do(chromedp.Click(`//dialog[@open]//button[normalize-space(.)="Cancel"]`))
	WaitFor[bool](b, "the question to go", 5*time.Second, `!document.querySelector('dialog')`)
	assert.Equal(t, "#/create", Eval[string](b, `location.hash`))
	assert.False(t, Eval[bool](b, `document.getElementById('signout').hidden`), "still signed in")
	assert.Equal(t, "keeps-work", Eval[string](b, valueOf("Name")))
	// The stepper is part of the wizard: it moves without asking.
	clickStep(b, stepSystem)
	waitStep(t, b, stepSystem)
	assert.Equal(t, "keep01", Eval[string](b, valueOf("Hostname")))
	clickStep(b, stepReview)
	waitStep(t, b, stepReview)

	// Build: the blueprint is stored first, then its version 1 built.
	b.Do(chromedp.Click(Button("Build image")))
	hash := WaitFor[string](b, "the compose's page", 15*time.Second, `location.hash.startsWith('#/composes/') ? location.hash : ''`)
	first := strings.TrimPrefix(hash, "#/composes/")
	assert.True(t, Eval[bool](b, nothingTyped), "nothing is unsaved after Build")
	bp, ok := blueprintNamed(t, e, "keeps-work")
	require.True(t, ok, "Build stored the blueprint")
	assert.Equal(t, 1, bp.Version)
	assert.Equal(t, map[string]int{first: 1}, composesOf(t, e, bp.ID), "the build is of the stored version")
	// It can be built again without typing anything.
	var again []struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.API(t, e.TokenA, "POST", "/blueprints/"+bp.ID+"/compose", map[string]any{}, &again))
	require.Len(t, again, 1)

	// Editing, then Build: a new version, and the build is of it.
	b.Visit("#/create?blueprint="+bp.ID+"&version=1", `!!document.querySelector('.stepper li[aria-current="step"]')`)
	clickStep(b, stepSystem)
	waitStep(t, b, stepSystem)
	assert.Equal(t, "keep01", Eval[string](b, valueOf("Hostname")))
	b.Type("Hostname", "keep02")
	// Leave goes.
	b.Do(chromedp.Click(Link("Images")))
	WaitFor[bool](b, "the question", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	assert.Contains(t, Eval[string](b, `document.querySelector('dialog[open]').textContent`), "keeps-work")
	b.Do(chromedp.Click(`//dialog[@open]//button[normalize-space(.)="Leave"]`))
	WaitFor[bool](b, "the Images page", 15*time.Second, `location.hash === '#/' && (document.querySelector('main h1') || {}).textContent === 'Images'`)
	bp, _ = blueprintNamed(t, e, "keeps-work")
	assert.Equal(t, 1, bp.Version, "leaving saved nothing")

	b.Visit("#/create?blueprint="+bp.ID+"&version=1", `!!document.querySelector('.stepper li[aria-current="step"]')`)
	clickStep(b, stepSystem)
	waitStep(t, b, stepSystem)
	b.Type("Hostname", "keep02")
	clickStep(b, stepReview)
	waitStep(t, b, stepReview)
	b.Do(chromedp.Click(Button("Build image")))
	hash = WaitFor[string](b, "the compose's page", 15*time.Second, `location.hash.startsWith('#/composes/') && location.hash !== `+jsString(hash)+` ? location.hash : ''`)
	second := strings.TrimPrefix(hash, "#/composes/")
	bp, _ = blueprintNamed(t, e, "keeps-work")
	assert.Equal(t, 2, bp.Version, "Build saved a new version")
	assert.Equal(t, 2, composesOf(t, e, bp.ID)[second], "the build is of the new version")
	var v2 struct {
		Customizations map[string]any `json:"customizations"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints/"+bp.ID, nil, &v2))
	assert.Equal(t, "keep02", v2.Customizations["hostname"])
}

// apiProblems renders a blueprint with customizations cust through the
// API and returns its error items (none when it rendered).
func apiProblems(t *testing.T, e *Env, cust map[string]any) []map[string]any {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"name": "checks", "distribution": "debian-12", "customizations": cust,
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "aws.s3"}}},
	})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", e.URL+"/api/image-builder/v1/blueprints/render", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.TokenA)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var answer struct {
		Errors []map[string]any `json:"errors"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	return answer.Errors
}

// TestWizardNameChecksAgreeWithTheAPI: for each host name, user name and
// group name tried, the wizard's check finds a problem exactly when the
// API does, and says it in the words the wizard gives the API's verdict
// (so that the two are shown as one).
func TestWizardNameChecksAgreeWithTheAPI(t *testing.T) {
	e := SharedEnv(t)
	b := wizardModules(t)
	// inWords is the API's verdict on field as the wizard words it.
	inWords := func(items []map[string]any, field string) []string {
		var mine []map[string]any
		for _, it := range items {
			if it["field"] == field {
				mine = append(mine, it)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		data, err := json.Marshal(map[string]any{"errors": mine})
		require.NoError(t, err)
		return evalJSON[[]string](t, b, `window.wzChecks.apiErrors(`+string(data)+`).map(e => e.detail)`)
	}
	agree := func(kind, value, client string, api []string) {
		t.Helper()
		if client == "" {
			assert.Empty(t, api, "%s %q: the wizard finds nothing, the API does", kind, value)
			return
		}
		assert.Equal(t, []string{client}, api, "%s %q: the same verdict in the same words", kind, value)
	}

	for _, host := range []string{"web01", "web01.example.com", "Web-01.Example.COM", "web_01", "-web", "web-", "web..example",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a.", 126) + "ab"} {
		client := Eval[string](b, `window.wzChecks.checkHostname(`+jsString(host)+`)`)
		agree("host name", host, client, inWords(apiProblems(t, e, map[string]any{"hostname": host}), "customizations.hostname"))
	}
	assert.Equal(t, "Too long: at most 253 characters.", Eval[string](b, `window.wzChecks.checkHostname(`+jsString(strings.Repeat("a.", 126)+"ab")+`)`))

	for _, name := range []string{"ops", "_svc", "admin-1", "Admin User", "admin user", "1admin", "Ops", strings.Repeat("a", 32), strings.Repeat("a", 33)} {
		client := Eval[string](b, `window.wzChecks.checkAccountName(`+jsString(name)+`)`)
		agree("user name", name, client, inWords(apiProblems(t, e, map[string]any{"users": []any{map[string]any{"name": name}}}), "customizations.users[0].name"))
		agree("group name", name, client, inWords(apiProblems(t, e, map[string]any{"users": []any{map[string]any{"name": "ops", "groups": []any{"sudo", name}}}}), "customizations.users[0].groups[1]"))
	}

	// The problems of a state, under the request's paths: a user's groups
	// as typed (separated by commas) are each checked.
	type problem struct{ Field, Detail string }
	got := evalJSON[[]problem](t, b, `window.wzChecks.clientProblems(Object.assign(window.wzState.newState(), {
		hostname: ' web_01 ', users: [{name: 'ops', groups: 'sudo, Web-Admins adm', ssh_key: '', password: ''}, {name: 'Admin User', groups: '', ssh_key: '', password: ''}]}))`)
	var fields []string
	for _, p := range got {
		fields = append(fields, p.Field)
		assert.NotEmpty(t, p.Detail)
	}
	assert.Equal(t, []string{"customizations.hostname", "customizations.users[0].groups[1]", "customizations.users[1].name"}, fields)
	assert.Equal(t, "Not a valid name: use lowercase letters, digits, _ and -, starting with a letter or _.",
		Eval[string](b, `window.wzChecks.checkGroups('Web, Admins, sudo')`), "one message for several bad groups")
}
