package browser

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// stepHeading is the JavaScript expression of the current step's heading.
const stepHeading = `((document.querySelector('.wizard-step h2') || {}).textContent || '')`

// nextUntil goes forward through the wizard until the current step shows
// what (a JavaScript condition), making on the way the choices a step
// cannot be left without: debian-12, x86_64, the image type qcow2 and
// the name name. It does not depend on which step holds what.
func nextUntil(t *testing.T, b *Browser, what, cond, name string) {
	t.Helper()
	for range 15 {
		WaitFor[bool](b, "a wizard step", 15*time.Second, `!!document.querySelector('.wizard-step h2')`)
		if Eval[bool](b, `((c) => !!c && c.value === '')(`+wizControl("Name")+`)`) {
			b.Type("Name", name)
		}
		if Eval[bool](b, cond) {
			b.CheckLabels()
			b.Shot(slug(what))
			return
		}
		for _, pick := range []string{
			`document.querySelector('input[name="distribution"][value="debian-12"]')`,
			`document.querySelector('input[name="architecture"][value="x86_64"]')`,
			`document.querySelector('input[name="image_requests"][value="qcow2"]')`,
		} {
			b.Do(chromedp.Evaluate[chromedp.Void](`((c) => { if (c && !c.checked) c.click(); })(` + pick + `)`))
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
	nextUntil(t, b, "the saved script", sectionShown("First-boot scripts"), "sources-web")
	assert.Equal(t, "motd", Eval[string](b, valueOf("Script name")))
	assert.Equal(t, script, Eval[string](b, valueOf("Script")))
}
