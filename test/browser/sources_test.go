package browser

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
)

// sectionShown is a JavaScript condition: the wizard's current step has a
// section headed title.
func sectionShown(title string) string {
	return `[...document.querySelectorAll('.wizard-step h3')].some(e => e.textContent.trim() === ` + jsString(title) + `)`
}

// present is a JavaScript condition: the page has an element at xpath.
func present(xpath string) string {
	return `!!document.evaluate(` + jsString(xpath) + `, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue`
}

// stepSettled is a JavaScript condition: the wizard shows a step whose
// body has not changed for 300 ms (a step may wait for the API before
// it draws its choices).
const stepSettled = `(() => {
	const body = document.querySelector('.wizard-step-body');
	if (!body) return false;
	const now = Date.now(), seen = document.querySelector('.wizard-step h2').textContent + body.innerHTML;
	if (window.settledSeen !== seen) { window.settledSeen = seen; window.settledSince = now; return false; }
	return now - window.settledSince > 300;
})()`

// stepHeading is the JavaScript expression of the current step's heading.
const stepHeading = `((document.querySelector('.wizard-step h2') || {}).textContent || '')`

// nextUntil goes forward through the wizard until the current step shows
// what (a JavaScript condition), making on the way the choices a step
// cannot be left without: debian-12, x86_64, the image type qcow2 and
// the name name. It does not depend on which step holds what.
func nextUntil(t *testing.T, b *Browser, what, cond, name string) {
	t.Helper()
	for range 15 {
		WaitFor[bool](b, "a wizard step drawn", 15*time.Second, stepSettled)
		if Eval[bool](b, `((c) => !!c && c.value === '')(`+wizControl("Name")+`)`) {
			b.Type("Name", name)
		}
		if Eval[bool](b, cond) {
			b.CheckLabels()
			b.Shot(slug(what))
			return
		}
		for _, c := range []struct{ name, value string }{{"distribution", "debian-12"}, {"architecture", "x86_64"}} {
			if Eval[bool](b, `((c) => !!c && !c.checked)(document.querySelector('input[name="`+c.name+`"][value="`+c.value+`"]'))`) {
				choose(b, c.value)
			}
		}
		if Eval[bool](b, `((c) => !!c && !c.checked)(document.querySelector('input[name="image_requests"][value="qcow2"]'))`) {
			chooseImageType(b, "qcow2")
		}
		before := Eval[string](b, stepHeading)
		if !Eval[bool](b, present(Button("Next"))) {
			b.Shot("failed-" + slug(what))
			t.Fatalf("no step of the wizard shows %s: the last is %q", what, before)
		}
		b.Do(chromedp.Click(Button("Next")))
		WaitFor[bool](b, "the step after "+before, 15*time.Second, stepHeading+` !== `+jsString(before))
	}
	t.Fatalf("no step of the wizard shows %s in 15 steps", what)
}

// A custom repository and a first-boot script entered in the wizard are
// saved with the blueprint, come back when it is edited, and a bad
// repository URL is explained at its input, by the wizard as it is typed
// and by the API when saved anyway.
func TestSourcesInTheWizard(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	const script = "#!/bin/sh\necho \"first boot of $(hostname)\" > /etc/motd\n"

	b.Do(chromedp.Click(Link("Create image")))
	nextUntil(t, b, "the repositories", sectionShown("Repositories"), "sources-web")
	assert.True(t, Eval[bool](b, hasText(".empty-state", "No extra repositories: packages come from the distribution’s own.")))
	b.Do(chromedp.Click(Button("Add repository")))
	WaitFor[bool](b, "the new repository's id to have the focus", 5*time.Second, `document.activeElement === `+wizControl("Repository ID"))
	b.Type("Repository ID", "vendor")
	b.Type("Repository name", "Vendor packages")
	b.Type("Base URLs", "ftp://deb.example.org/vendor")
	msg := WaitFor[string](b, "the wizard's check of the URL", 5*time.Second, errorAt("Base URLs"))
	assert.Contains(t, msg, `"ftp://deb.example.org/vendor" does not use one of the schemes http, https, file`)
	b.Type("Suite", "stable")
	b.Type("Components", "main contrib")
	b.Type("GPG keys", "https://deb.example.org/vendor/key.asc")
	b.Type("Pin priority", "700")
	b.Shot("repository")

	nextUntil(t, b, "the first-boot scripts", sectionShown("First-boot scripts"), "sources-web")
	b.Do(chromedp.Click(Button("Add first-boot script")))
	WaitFor[bool](b, "the new script to have the focus", 5*time.Second, `document.activeElement === `+wizControl("Script"))
	b.Type("Script name", "motd")
	b.Type("Script", script)

	// Saved with the bad URL (the wizard's checks never stop a request):
	// the API's verdict is shown at the input, on the step that has it.
	nextUntil(t, b, "the review", present(Button("Save blueprint")), "sources-web")
	b.Do(chromedp.Click(Button("Save blueprint")))
	msg = WaitFor[string](b, "the API's verdict on the URL", 15*time.Second, errorAt("Base URLs"))
	assert.Contains(t, msg, `give an absolute http, https, file URL`, "the API's words, not the wizard's")
	assert.True(t, Eval[bool](b, sectionShown("Repositories")))
	assert.Contains(t, Eval[string](b, `[...document.querySelectorAll('.stepper li.has-error')].map(li => li.textContent).join()`), "(has errors)")
	b.Shot("url-refused")
	b.Type("Base URLs", "https://deb.example.org/vendor")
	WaitFor[bool](b, "the error to go once the URL is fixed", 5*time.Second, errorAt("Base URLs")+` === ''`)

	nextUntil(t, b, "the review again", present(Button("Save blueprint")), "sources-web")
	b.Do(chromedp.Click(Button("Save blueprint")))
	hash := WaitFor[string](b, "the blueprint's page", 15*time.Second, `location.hash.startsWith('#/blueprints/') ? location.hash : ''`)
	id := strings.TrimPrefix(hash, "#/blueprints/")

	// Read back through the API: both, as entered.
	var stored struct {
		Customizations map[string]any `json:"customizations"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints/"+id, nil, &stored))
	assert.Equal(t, []any{map[string]any{
		"id": "vendor", "name": "Vendor packages", "baseurl": []any{"https://deb.example.org/vendor"},
		"suite": "stable", "components": []any{"main", "contrib"}, "gpgkey": []any{"https://deb.example.org/vendor/key.asc"},
		"priority": float64(700),
	}}, stored.Customizations["custom_repositories"])
	assert.Equal(t, map[string]any{"scripts": []any{map[string]any{"type": "custom", "name": "motd", "contents": script}}},
		stored.Customizations["firstboot"])

	// Edited again: both are shown as they were saved.
	b.Do(chromedp.Navigate(e.URL + "/#/create?blueprint=" + id))
	WaitFor[bool](b, "the wizard editing the blueprint", 15*time.Second, `(document.querySelector('main h1') || {}).textContent === 'Edit blueprint sources-web'`)
	nextUntil(t, b, "the saved repository", sectionShown("Repositories"), "sources-web")
	for label, want := range map[string]string{
		"Repository ID": "vendor", "Repository name": "Vendor packages", "Base URLs": "https://deb.example.org/vendor",
		"Suite": "stable", "Components": "main contrib", "GPG keys": "https://deb.example.org/vendor/key.asc", "Pin priority": "700",
	} {
		assert.Equal(t, want, Eval[string](b, valueOf(label)), label)
	}
	assert.True(t, Eval[bool](b, wizControl("Check package signatures")+`.checked`), "signatures are checked unless told otherwise")
	assert.Equal(t, "Repository 1: vendor", Eval[string](b, `document.querySelector('fieldset[data-field="customizations.custom_repositories[0]"] > legend').textContent`))
	b.Resize(390)
	noHorizontalScroll(t, b, "the repositories")
	b.Shot("repository-narrow")
	b.Resize(1280)
	nextUntil(t, b, "the saved script", sectionShown("First-boot scripts"), "sources-web")
	assert.Equal(t, "motd", Eval[string](b, valueOf("Script name")))
	assert.Equal(t, script, Eval[string](b, valueOf("Script")))
	b.Resize(390)
	noHorizontalScroll(t, b, "the first-boot scripts")
	b.Shot("script-narrow")
}

// sourcesModules opens a page of the UI and loads the wizard's state.js
// and sources.js into it, as window.wzState and window.wzSources.
func sourcesModules(t *testing.T) *Browser {
	t.Helper()
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.Visit("#/signin", `!!document.querySelector('main h1')`)
	Eval[bool](b, `(Promise.all([import('/pages/wizard/state.js'), import('/pages/wizard/sources.js')])
		.then(([st, so]) => { window.wzState = st; window.wzSources = so; }, (e) => { window.wzFailed = String(e); }), true)`)
	loaded := WaitFor[string](b, "the wizard's modules", 15*time.Second,
		`window.wzFailed ? window.wzFailed : (window.wzState && window.wzSources ? 'loaded' : '')`)
	require.Equal(t, "loaded", loaded)
	return b
}

// blueprintTakesURL says whether the blueprint validator takes u as a
// repository's base URL.
func blueprintTakesURL(t *testing.T, u string) bool {
	t.Helper()
	doc := "name = \"x\"\n[[customizations.repositories]]\nid = \"x\"\nbaseurls = [" + jsString(u) + "]\n"
	_, err := blueprint.Parse([]byte(doc), blueprint.FormatTOML)
	return err == nil || !strings.Contains(err.Error(), "customizations.repositories[0].baseurls[0]")
}

// The sources' model and checks, called in the page: a stored blueprint's
// repositories and scripts are saved back unchanged, what is typed is
// sent trimmed and split, and the checks judge URLs as the blueprint
// validator does, saying what to do.
func TestSourcesModules(t *testing.T) {
	b := sourcesModules(t)
	const key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGPL\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"
	cust := map[string]any{
		"custom_repositories": []any{map[string]any{
			"id": "vendor", "name": "Vendor", "baseurl": []any{"https://a.example.org/debian", "https://b.example.org/debian"},
			"suite": "stable", "components": []any{"main", "contrib"}, "gpgkey": []any{key, "https://a.example.org/key.asc"},
			"check_gpg": true, "enabled": false, "priority": float64(-10), "filename": "vendor.list", "install_from": false,
			"x_unknown": "kept",
		}},
		"firstboot": map[string]any{"scripts": []any{
			map[string]any{"type": "custom", "name": "one", "contents": "true\n", "after": []any{"network-online.target"}, "before": []any{"nginx.service"}, "ignore_failure": false},
			map[string]any{"type": "custom", "contents": "false"},
		}},
	}
	in, err := json.Marshal(map[string]any{"name": "x", "customizations": cust})
	require.NoError(t, err)
	state := `window.wzState.stateFromBlueprint(` + string(in) + `)`
	assert.Equal(t, cust, evalJSON[map[string]any](t, b, `window.wzState.customizations(`+state+`)`), "saved back unchanged")
	shown := evalJSON[map[string]any](t, b, state+`.repositories[0]`)
	assert.Equal(t, "https://a.example.org/debian https://b.example.org/debian", shown["baseurls"])
	assert.Equal(t, key+"\nhttps://a.example.org/key.asc", shown["gpgkeys"])
	assert.Equal(t, false, shown["enabled"])

	// Typed into new rows: trimmed and split; flags only when they differ
	// from the API's defaults; a script is of type custom.
	typed := evalJSON[map[string]any](t, b, `((s) => {
		const r = window.wzState.newRepository();
		Object.assign(r, { id: ' vendor ', baseurls: ' https://a.example.org/debian ', components: 'main, contrib', suite: ' ',
			gpgkeys: 'https://a.example.org/key.asc\n\n'+`+jsString(key)+`, check_gpg: false, install_from: true, priority: ' 700 ' });
		const x = window.wzState.newScript();
		Object.assign(x, { name: ' motd ', contents: 'echo hi\n' });
		s.repositories.push(r, window.wzState.newRepository());
		s.firstboot.push(x, window.wzState.newScript());
		return window.wzState.customizations(s);
	})(window.wzState.newState())`)
	assert.Equal(t, map[string]any{
		"custom_repositories": []any{
			map[string]any{"id": "vendor", "baseurl": []any{"https://a.example.org/debian"}, "components": []any{"main", "contrib"},
				"gpgkey": []any{"https://a.example.org/key.asc", strings.TrimSpace(key)}, "check_gpg": false, "install_from": true, "priority": float64(700)},
			map[string]any{"id": ""},
		},
		"firstboot": map[string]any{"scripts": []any{
			map[string]any{"type": "custom", "name": "motd", "contents": "echo hi\n"},
			map[string]any{"type": "custom"},
		}},
	}, typed, "every row is sent, so that the API's paths point at it")

	check := func(fn, arg string) string {
		t.Helper()
		return Eval[string](b, `window.wzSources.`+fn+`(`+jsString(arg)+`)`)
	}
	for _, u := range []string{"https://deb.example.org/debian", "http://deb.example.org/debian", "file:///srv/repo",
		"ftp://deb.example.org/debian", "https://user:pw@deb.example.org/debian", "deb.example.org/debian", "https:///debian", "https://deb.example.org/a b", `https://deb.example.org\debian`, "file://host/srv", "file:/srv/repo"} {
		assert.Equal(t, blueprintTakesURL(t, u), check("checkBaseURLs", u) == "", "the wizard and the blueprint agree on %s", u)
	}
	assert.Contains(t, check("checkBaseURLs", "ftp://deb.example.org/debian"), "does not use one of the schemes http, https, file")
	assert.Contains(t, check("checkBaseURLs", ""), "Required")
	assert.Contains(t, check("checkGPGKeys", "http://deb.example.org/key.asc"), "Give its https URL or paste the armored key")
	assert.Empty(t, check("checkGPGKeys", key+"\nhttps://deb.example.org/key.asc"))
	assert.Contains(t, check("checkGPGKeys", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n-----END PGP PRIVATE KEY BLOCK-----"), "private key")
	assert.Contains(t, check("checkRepoID", "my repo"), "is not a repository id")
	assert.Empty(t, check("checkRepoID", "vendor_1.2"))
	assert.Contains(t, check("checkSuite", "a b"), "is not a suite")
	assert.Empty(t, check("checkSuite", "./"))
	assert.Contains(t, check("checkComponents", "main Contrib"), `"Contrib" is not a component`)
	assert.Contains(t, check("checkPriority", "40000"), "from -32768 to 32767")
	assert.Empty(t, check("checkPriority", "-5"))
	assert.Contains(t, check("checkScriptName", "a b"), "is not a script name")
	assert.Empty(t, check("checkScriptName", ""), "a script needs no name")
	assert.Contains(t, check("checkScript", " \n"), "Required")
}
