package browser

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

// hasText is a JavaScript condition: some element matching css has
// exactly (trimmed) this text.
func hasText(css, text string) string {
	return `[...document.querySelectorAll(` + jsString(css) + `)].some(e => e.textContent.trim() === ` + jsString(text) + `)`
}

// fieldError is the JavaScript expression of the error shown at the
// control labelled label ("" when none).
func fieldError(label string) string {
	return `(() => { const l = [...document.querySelectorAll('label')].find(l => l.textContent.trim() === ` + jsString(label) + `);
		const c = l && document.getElementById(l.htmlFor); const e = c && document.getElementById(c.id + '-error');
		return e && !e.hidden && c.getAttribute('aria-invalid') === 'true' && c.getAttribute('aria-describedby').includes(e.id) ? e.textContent : ''; })()`
}

// noHorizontalScroll fails the test when the page is wider than the window.
func noHorizontalScroll(t *testing.T, b *Browser, page string) {
	t.Helper()
	widths := Eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`)
	assert.LessOrEqual(t, widths[0], widths[1], "%s at %d px has a horizontal scrollbar", page, b.Width)
}

func TestSignIn(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)

	// Signed out, every page leads to the sign-in page.
	b.Visit("#/blueprints", `location.hash.startsWith('#/signin')`)
	b.Do(chromedp.WaitVisible(Field("API token")))
	b.CheckLabels()
	b.ShotAs("signin")

	b.Do(chromedp.SendKeys(Field("API token"), "kiln_not-a-real-token"), chromedp.Click(Button("Sign in")))
	msg := WaitFor[string](b, "the error at the token field", 15*time.Second, fieldError("API token"))
	assert.Contains(t, msg, "unknown or revoked")
	assert.Equal(t, "kiln_not-a-real-token", Eval[string](b, control("API token")+`.value`),
		"what the user typed is kept")
	assert.Empty(t, Eval[string](b, `sessionStorage.getItem('kiln.token') || ''`))
	b.Shot("bad-token")

	b.Type("API token", e.TokenB)
	b.Do(chromedp.Click(Button("Sign in")))
	// It goes back where the user wanted to go.
	WaitFor[bool](b, "the Blueprints page", 15*time.Second, `location.hash === '#/blueprints' && `+hasText("main h1", "Blueprints"))
	assert.Equal(t, e.TokenB, Eval[string](b, `sessionStorage.getItem('kiln.token')`))
	// The top bar names the organization the token acts for.
	WaitFor[bool](b, "the organization in the top bar", 15*time.Second, hasText("#org", "Organization: globex"))

	// A new organization: the Images page says what to do.
	b.Do(chromedp.Click(Link("Images")))
	WaitFor[bool](b, "the empty state", 15*time.Second, hasText(".empty-state h2", "No images yet"))
	assert.True(t, Eval[bool](b, `!!document.querySelector('.empty-state a[href="#/create"]')`), "the empty state links to Create image")
	b.CheckLabels()
	b.Shot("empty")

	b.Do(chromedp.Click(Button("Sign out")))
	WaitFor[bool](b, "the sign-in page", 15*time.Second, `location.hash.startsWith('#/signin') && !!document.querySelector('input[type=password]')`)
	assert.Empty(t, Eval[string](b, `sessionStorage.getItem('kiln.token') || ''`))
	b.Visit("#/", `location.hash.startsWith('#/signin')`)
}

func TestImagesFollowsABuild(t *testing.T) {
	// A server of its own whose build outlasts the list's first look at
	// it: with nothing building the list polls every 10 s, then every 2 s
	// while a build runs; a tar image's six stages take 18 s here.
	s := StartServerStaging(t, 3*time.Second)
	token := s.Token(t, "acme", "browser-follow")
	b := NewBrowser(t, s)
	b.SignIn(token)
	id := s.submitTarImage(t, token)
	// A full page load would forget this.
	b.Do(chromedp.Evaluate[chromedp.Void](`window.__noReload = true`))

	row := `document.querySelector('tr[data-id="` + id + `"]')`
	badge := `((r) => r && r.querySelector('.badge') ? r.querySelector('.badge').textContent.trim() : '')(` + row + `)`
	WaitFor[bool](b, "the new image in the list", 30*time.Second, row+` !== null`)
	assert.Equal(t, "ui-test-rootfs", Eval[string](b, row+`.querySelector('td[data-label="Name"]').textContent.trim()`))
	assert.Equal(t, "debian-12", Eval[string](b, row+`.querySelector('td[data-label="Distribution"]').textContent.trim()`))
	assert.Equal(t, "tar", Eval[string](b, row+`.querySelector('td[data-label="Type"]').textContent.trim()`))
	assert.Equal(t, "x86_64", Eval[string](b, row+`.querySelector('td[data-label="Architecture"]').textContent.trim()`))
	b.CheckLabels()

	// Each status the list shows on its way, as the user would see it.
	WaitFor[bool](b, "the build to succeed", 3*time.Minute,
		`((s) => { window.__seen = window.__seen || []; if (s && window.__seen[window.__seen.length-1] !== s) window.__seen.push(s);
			if (s === 'Building' && !window.__shot) window.__shot = 'due'; return s === 'Success' || s === 'Failure'; })(`+badge+`)`)
	seen := Eval[[]string](b, `window.__seen`)
	assert.Equal(t, "Success", seen[len(seen)-1], "statuses seen: %v", seen)
	assert.Contains(t, seen, "Building", "the list showed the build running: %v", seen)
	assert.True(t, Eval[bool](b, `window.__noReload === true`), "the page was not reloaded")
	assert.True(t, Eval[bool](b, row+`.querySelector('button') !== null && [...`+row+`.querySelectorAll('button')].some(b => b.textContent.trim() === 'Download')`),
		"a finished image can be downloaded from the list")
	b.ShotAs("images")

	// The filters ask the API for what they show.
	b.Visit("#/?status=failure", `!!document.querySelector('.empty-state') || !!document.querySelector('tbody')`)
	assert.False(t, Eval[bool](b, row+` !== null`), "a successful image is not listed under Failure")
	b.Visit("#/?status=success&image_type=tar", row+` !== null`)
}

func TestComposeDetail(t *testing.T) {
	e := SharedEnv(t)
	id := e.BuiltTar(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Visit("#/composes/"+id, hasText("main h1 .badge", "Success"))
	assert.Equal(t, "ui-test-rootfs Success", Eval[string](b, `document.querySelector('main h1').textContent.trim().replace(/\s+/g, ' ')`))
	// The manifest the compose was built from: the image's contents are
	// proven by test/e2e; this page shows what the build was.
	built := e.servedManifest(t, e.TokenA, id)

	steps := Eval[[]string](b, `[...document.querySelectorAll('.timeline li')].map(l => l.className + ':' + l.querySelector('.tl-label').textContent)`)
	assert.Equal(t, []string{"tl-done:Queued", "tl-done:Packages resolved", "tl-done:Building", "tl-done:Uploading", "tl-done:Done"}, steps)

	log := WaitFor[string](b, "the whole build log", 30*time.Second, `document.querySelector('pre.log').dataset.complete === 'true' && document.querySelector('pre.log').textContent`)
	stages := 0
	for _, p := range built.Pipelines {
		for _, st := range p.Stages {
			stages++
			assert.Contains(t, log, "== "+p.Name+": "+st.Type+"\n", "the log has the build's output for each stage")
		}
	}
	assert.Greater(t, stages, 3)

	total := WaitFor[int](b, "the package list", 30*time.Second, `document.querySelectorAll('.table-compact tbody tr').length`)
	assert.Greater(t, total, 50, "a Debian root file system has many packages")
	assert.Equal(t, len(built.Sources.Debs), total, "the list shows every package the manifest pins")
	b.Do(chromedp.SendKeys(Field("Search packages"), "curl"))
	shown := WaitFor[[]string](b, "the search to filter", 10*time.Second,
		`((rows) => rows.length < `+strconv.Itoa(total)+` ? rows : null)([...document.querySelectorAll('.table-compact tbody tr:not([hidden]) td:first-child')].map(td => td.textContent))`)
	assert.Contains(t, shown, "curl", "the package the blueprint asked for is in the image")
	for _, name := range shown {
		assert.Contains(t, name, "curl")
	}
	b.Type("Search packages", "")

	size := Eval[string](b, `(document.querySelector('.download-size') || {}).textContent || ''`)
	assert.Regexp(t, `^[0-9.]+ (KiB|MiB|GiB)$`, size, "the download shows the image's size")
	b.CheckLabels()
	b.ShotAs("compose")

	// The image, fetched through the page's own download button, by a
	// plain link to the signed URL, which saves straight to disk (not a
	// fetch with the token that holds the whole image in memory).
	path := b.DownloadImage()
	var signed bool
	for _, r := range b.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/composes/"+id+"/download?") && strings.Contains(r, "signature=") {
			signed = true
		}
	}
	assert.True(t, signed, "the download used the signed link: %v", b.Requests())
	// The download is the image built from the compose's manifest (a fake
	// one: it carries that manifest), and the manifest carries what the
	// compose asked for. What a built image contains is proven by test/e2e.
	image := readFakeImage(t, path)
	assert.Equal(t, built, image, "the download is the image of this compose")
	assert.Equal(t, manifest.Target{Distro: "debian-12", Arch: "x86_64", ImageType: "tar", Seed: built.Target.Seed, Name: "ui-test-rootfs", Version: built.Target.Version},
		image.Target)
	assert.Greater(t, len(image.Sources.Debs), 50, "the manifest pins a Debian root file system's packages")
	hostnames := stagesOf[*manifest.Hostname](image)
	require.Len(t, hostnames, 1)
	assert.Equal(t, "kiln-ui-test", hostnames[0].Hostname)
	installs := stagesOf[*manifest.DebsInstall](image)
	require.Len(t, installs, 1)
	assert.Contains(t, installs[0].Packages, "curl", "the package asked for is installed")

	// The manifest, collapsed until asked for.
	assert.False(t, Eval[bool](b, `document.querySelector('details.collapsible').open`))
	b.Do(chromedp.Click(`//details[contains(@class,"collapsible")]/summary`))
	manifest := WaitFor[string](b, "the manifest", 15*time.Second, `((t) => t.startsWith('{') ? t : '')(document.querySelector('details.collapsible pre').textContent)`)
	assert.Contains(t, manifest, "\n  \"", "pretty-printed")
	b.Shot("manifest")
}

func TestOtherOrgSeesNothing(t *testing.T) {
	e := SharedEnv(t)
	id := e.SubmitTar(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenB)
	WaitFor[bool](b, "the list", 15*time.Second, `!!document.querySelector('.empty-state') || !!document.querySelector('tbody')`)
	assert.False(t, Eval[bool](b, `document.querySelector('tr[data-id="`+id+`"]') !== null`), "org B does not see org A's image")
	b.Visit("#/composes/"+id, hasText("main h2", "Image not found"))
	assert.NotContains(t, Eval[string](b, `document.querySelector('main').textContent`), "ui-test-rootfs")
}

func TestBlueprintVersionsDiff(t *testing.T) {
	e := SharedEnv(t)
	bp := map[string]any{
		"name": "web-server", "description": "nginx on Debian", "distribution": "debian-12",
		"image_requests": []map[string]any{{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}}},
		"customizations": map[string]any{"hostname": "web01", "packages": []string{"nginx"}},
	}
	var created struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.API(t, e.TokenA, "POST", "/blueprints", bp, &created))
	bp["customizations"] = map[string]any{"hostname": "web02", "packages": []string{"nginx", "curl"}}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "PUT", "/blueprints/"+created.ID, bp, &struct{}{}))

	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Visit("#/blueprints/"+created.ID, `!!document.querySelector('.diff')`)
	// The TOML of both versions is compared, as the wizard's review and
	// export show a blueprint.
	assert.Equal(t, "toml", Eval[string](b, `document.querySelector('.diff').dataset.format`))
	added := Eval[[]string](b, `[...document.querySelectorAll('.diff-add .diff-text')].map(e => e.textContent.trim())`)
	removed := Eval[[]string](b, `[...document.querySelectorAll('.diff-del .diff-text')].map(e => e.textContent.trim())`)
	assert.Contains(t, added, `hostname = "web02"`)
	assert.Contains(t, added, `name = "curl"`)
	assert.Contains(t, removed, `hostname = "web01"`)
	assert.Equal(t, "From version 1 to version 2: 4 lines added, 1 line removed",
		Eval[string](b, `document.querySelector('.diff-summary').textContent`))
	assert.Equal(t, "#/create?blueprint="+created.ID+"&version=2", Eval[string](b, `document.querySelector('.page-header a.btn').getAttribute('href')`), "Edit opens the wizard on the latest version")
	b.CheckLabels()
	b.ShotAs("blueprint")

	// Comparing a version with itself shows no lines.
	b.Select("From version", "2")
	WaitFor[bool](b, "the diff to clear", 10*time.Second, `document.querySelector('.diff') === null && document.querySelector('.diff-summary').textContent.includes('two different versions')`)

	// Export gives the latest version as an osbuild TOML file.
	dir := t.TempDir()
	done := b.DownloadTo(dir)
	b.Do(chromedp.Click(Button("Export TOML")))
	select {
	case path := <-done:
		toml, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Contains(t, string(toml), `name = "web-server"`)
		assert.Contains(t, string(toml), `hostname = "web02"`)
	case <-time.After(30 * time.Second):
		t.Fatal("the export was not downloaded")
	}

	// Building an older version builds that version (the build is
	// cancelled at once: what it would make is not what this test is about).
	b.Do(chromedp.Click(`//button[@aria-label="Build version 1"]`))
	composeID := WaitFor[string](b, "the new compose's page", 30*time.Second,
		`((m) => m ? m[1] : '')(/^#\/composes\/([0-9a-f-]{36})$/.exec(location.hash))`)
	var cs struct {
		Data []struct {
			ID               string `json:"id"`
			BlueprintVersion int    `json:"blueprint_version"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints/"+created.ID+"/composes", nil, &cs))
	require.Len(t, cs.Data, 1)
	assert.Equal(t, composeID, cs.Data[0].ID)
	assert.Equal(t, 1, cs.Data[0].BlueprintVersion)
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "POST", "/composes/"+composeID+"/cancel", nil, &struct{}{}))
}

func TestImportAndBuildBlueprint(t *testing.T) {
	e := SharedEnv(t)
	// The same customizations as the run's tar build.
	file := filepath.Join(t.TempDir(), "rootfs.toml")
	require.NoError(t, os.WriteFile(file, []byte(`name = "ui-test-rootfs"
description = "A Debian root file system with curl"
version = "0.0.1"

[[packages]]
name = "curl"

[customizations]
hostname = "kiln-ui-test"
`), 0o644))

	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Visit("#/blueprints", hasText("main h1", "Blueprints"))
	importFile := func() {
		b.Do(chromedp.Click(`//div[contains(@class,"page-header")]` + Button("Import blueprint")))
		b.Do(chromedp.WaitVisible(Field("Blueprint file")))
		WaitFor[bool](b, "the image types", 15*time.Second, `!!document.querySelector('input[type=checkbox][value=tar]')`)
		b.Do(chromedp.SetUploadFiles(Field("Blueprint file"), []string{file}))
		assert.Equal(t, "debian-12", Eval[string](b, control("Distribution")+`.value`))
		assert.Equal(t, "x86_64", Eval[string](b, control("Architecture")+`.value`))
		b.Do(chromedp.Click(`input[type=checkbox][value=tar]`))
		b.Shot("import-form")
		b.Do(chromedp.Click(Button("Import")))
	}
	importFile()
	bpID := WaitFor[string](b, "the imported blueprint's page", 30*time.Second,
		`((m) => m && `+hasText("main h1", "ui-test-rootfs")+` ? m[1] : '')(/^#\/blueprints\/([0-9a-f-]{36})$/.exec(location.hash))`)

	// The same name again: the error is at the file, and nothing chosen is lost.
	b.Visit("#/blueprints", hasText("td a", "ui-test-rootfs"))
	b.ShotAs("blueprints")
	importFile()
	msg := WaitFor[string](b, "the error at the file", 15*time.Second, fieldError("Blueprint file"))
	assert.Contains(t, msg, "ui-test-rootfs")
	assert.Equal(t, 1, Eval[int](b, `document.querySelector('input[type=file]').files.length`), "the chosen file is kept")
	assert.True(t, Eval[bool](b, `document.querySelector('input[type=checkbox][value=tar]').checked`), "the chosen image type is kept")
	b.Shot("import-error")

	// Build it, and follow the build to its end.
	b.Visit("#/blueprints/"+bpID, hasText("main h1", "ui-test-rootfs"))
	b.Do(chromedp.Click(Button("Build image")))
	composeID := WaitFor[string](b, "the new compose's page", 30*time.Second,
		`((m) => m ? m[1] : '')(/^#\/composes\/([0-9a-f-]{36})$/.exec(location.hash))`)
	WaitFor[bool](b, "the build from the blueprint to succeed", 3*time.Minute, `!!document.querySelector('main h1 .badge') && ['Success','Failure'].includes(document.querySelector('main h1 .badge').textContent)`)
	assert.Equal(t, "Success", Eval[string](b, `document.querySelector('main h1 .badge').textContent`))
	var list struct {
		Data []struct {
			ID               string `json:"id"`
			BlueprintID      string `json:"blueprint_id"`
			BlueprintVersion int    `json:"blueprint_version"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints/"+bpID+"/composes", nil, &list))
	require.Len(t, list.Data, 1)
	assert.Equal(t, composeID, list.Data[0].ID)

	// What the imported file says reached the build: the manifest the
	// image was built from (its contents are proven by test/e2e).
	built := e.servedManifest(t, e.TokenA, composeID)
	hostnames := stagesOf[*manifest.Hostname](built)
	require.Len(t, hostnames, 1)
	assert.Equal(t, "kiln-ui-test", hostnames[0].Hostname)
	installs := stagesOf[*manifest.DebsInstall](built)
	require.Len(t, installs, 1)
	assert.Contains(t, installs[0].Packages, "curl")
	assert.Equal(t, "ui-test-rootfs", built.Target.Name)
}

func TestNarrowScreen(t *testing.T) {
	e := SharedEnv(t)
	id := e.BuiltTar(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Resize(390)
	for _, p := range []struct{ route, ready string }{
		{"#/", `!!document.querySelector('tbody tr')`},
		{"#/composes/" + id, `document.querySelectorAll('.table-compact tbody tr').length > 0 && document.querySelector('pre.log').dataset.complete === 'true'`},
		{"#/blueprints", hasText("main h1", "Blueprints")},
	} {
		b.Visit(p.route, p.ready)
		noHorizontalScroll(t, b, p.route)
	}
	b.Do(chromedp.Click(Button("Import blueprint")))
	b.Do(chromedp.WaitVisible(Field("Blueprint file")))
	noHorizontalScroll(t, b, "the import form")
	b.Shot("import-narrow")
	b.Do(chromedp.Click(Button("Sign out")))
	WaitFor[bool](b, "the sign-in page", 15*time.Second, `!!document.querySelector('input[type=password]')`)
	noHorizontalScroll(t, b, "#/signin")
	b.Shot("signin-narrow")
}

func TestCancelAndDelete(t *testing.T) {
	// A server of its own whose builds take longer than the test: the
	// build is still running whenever the test acts on it.
	s := StartServerStaging(t, time.Hour)
	token := s.Token(t, "initech", "browser-c")
	var res struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "to-cancel",
		"image_requests": []map[string]any{{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}}},
		"customizations": map[string]any{"hostname": "cancel-me"},
	}, &res))

	b := NewBrowser(t, s)
	b.SignIn(token)
	row := `document.querySelector('tr[data-id="` + res.ID + `"]')`
	WaitFor[bool](b, "the image in the list", 15*time.Second, row+` !== null`)

	// Cancelling asks first; saying no changes nothing.
	b.Do(chromedp.Click(`//tr[@data-id="` + res.ID + `"]` + Button("Cancel")))
	WaitFor[bool](b, "the confirmation", 5*time.Second, `!!document.querySelector('dialog[open]')`)
	b.Shot("confirm-cancel")
	b.Do(chromedp.Click(`//dialog` + Button("Keep building")))
	WaitFor[bool](b, "the dialog to close", 5*time.Second, `!document.querySelector('dialog')`)
	assert.NotEqual(t, "Cancelled", Eval[string](b, row+`.querySelector('.badge').textContent`))

	b.Do(chromedp.Click(`//tr[@data-id="` + res.ID + `"]` + Button("Cancel")))
	b.Do(chromedp.Click(`//dialog` + Button("Cancel build")))
	WaitFor[bool](b, "the cancelled build to end", time.Minute, row+` && `+row+`.querySelector('.badge').textContent === 'Cancelled'`)
	b.Visit("#/composes/"+res.ID, `!!document.querySelector('.error-reason')`)
	assert.Contains(t, Eval[string](b, `document.querySelector('.error-reason').textContent`), "cancelled by the user")
	assert.Equal(t, "The build was cancelled", Eval[string](b, `document.querySelector('.alert-title').textContent`))
	assert.Equal(t, "tl-failed:Cancelled", Eval[string](b, `((l) => l.className + ':' + l.querySelector('.tl-label').textContent)([...document.querySelectorAll('.timeline li')].pop())`))
	b.Shot("cancelled")

	// Delete, from the image's page, after confirming.
	b.Do(chromedp.Click(`//div[contains(@class,"page-header")]` + Button("Delete")))
	b.Do(chromedp.Click(`//dialog` + Button("Delete")))
	WaitFor[bool](b, "the list without the image", 15*time.Second, `location.hash === '#/' && !!document.querySelector('.empty-state')`)
	assert.Equal(t, http.StatusNotFound, s.API(t, token, "GET", "/composes/"+res.ID, nil, nil))
}

// The shell hands #/create to the wizard's module and marks its tab.
func TestCreateRouteLoadsTheWizard(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	b.Do(chromedp.Click(Link("Create image")))
	steps := WaitFor[[]string](b, "the wizard's steps", 15*time.Second,
		`((l) => l.length ? l : null)([...document.querySelectorAll('main .stepper li')].map(li => li.textContent.trim()))`)
	assert.Contains(t, steps[0], "Image output")
	assert.Contains(t, steps[len(steps)-1], "Review")
	assert.Equal(t, "page", Eval[string](b, `document.querySelector('[data-nav="create"]').getAttribute('aria-current')`))
	assert.Equal(t, "", Eval[string](b, `document.querySelector('[data-nav="images"]').getAttribute('aria-current') || ''`))
	assert.True(t, Eval[bool](b, `[...document.styleSheets].some(s => s.href && s.href.endsWith('/wizard.css') && s.cssRules.length > 0)`), "index.html links wizard.css")
	b.Shot("wizard")
}

// Behind a trusted gateway the identity comes with every request: no
// sign-in, no sign-out, and the org's own images only.
func TestGatewayIdentity(t *testing.T) {
	s := StartServer(t, "--trust-identity-header")
	b := NewBrowser(t, s)
	identity := base64.StdEncoding.EncodeToString([]byte(`{"identity":{"org_id":"umbrella"}}`))
	if _, err := chromedp.Call(b.Ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"x-rh-identity": identity},
	}); err != nil {
		t.Fatal(err)
	}
	b.Visit("#/", hasText(".empty-state h2", "No images yet"))
	assert.Equal(t, "#/", Eval[string](b, `location.hash`), "no detour through sign-in")
	assert.False(t, Eval[bool](b, `document.getElementById('topbar').hidden`))
	assert.True(t, Eval[bool](b, `document.getElementById('signout').hidden`), "nothing to sign out of")
	assert.Empty(t, Eval[string](b, `sessionStorage.getItem('kiln.token') || ''`))
	b.Visit("#/signin", hasText("main h1", "You are signed in"))
}
