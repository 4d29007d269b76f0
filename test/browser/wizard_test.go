package browser

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/manifest"
)

// wizardSteps are the step names of the Create image wizard, in order.
var wizardSteps = []string{"Image output", "Content", "System", "Review"}

// onStep waits until the wizard shows step n (1-based) and saves a
// screenshot of it.
func onStep(t *testing.T, b *Browser, n int) {
	t.Helper()
	want := strconv.Itoa(n) + ". " + wizardSteps[n-1]
	WaitFor[bool](b, "the wizard step "+want, 15*time.Second,
		`(() => { const h = document.querySelector('.wizard-step h2'); const cur = document.querySelector('.stepper li[aria-current="step"]');
			return !!h && h.textContent === `+jsString(want)+` && !!cur && cur.textContent.startsWith(`+jsString(wizardSteps[n-1])+`); })()`)
	b.CheckLabels()
	b.Shot("step-" + strconv.Itoa(n))
}

// wizControl is the JavaScript expression of the control labelled label,
// or null while there is none (so that a poll waits instead of failing).
func wizControl(label string) string {
	return `((l) => l ? document.getElementById(l.htmlFor) : null)([...document.querySelectorAll('label')].find(l => l.textContent.trim() === ` + jsString(label) + `))`
}

// errorAt is the JavaScript expression of the error the wizard shows at
// the control labelled label: its text when the control is marked invalid
// and described by it, else "".
func errorAt(label string) string {
	return `(() => { const c = ` + wizControl(label) + `; const e = c && document.getElementById(c.id + '-error');
		return e && !e.hidden && c.getAttribute('aria-invalid') === 'true' && (c.getAttribute('aria-describedby') || '').split(' ').includes(e.id) ? e.textContent : ''; })()`
}

// valueOf is the JavaScript expression of the value of the control
// labelled label.
func valueOf(label string) string { return wizControl(label) + `.value` }

// chipsOf lists the chips shown under the control labelled label.
func chipsOf(label string) string {
	return `[...` + wizControl(label) + `.closest('.field').querySelectorAll('.chip > span')].map(s => s.textContent)`
}

// pickOption waits for the option named name in the listbox of the
// combobox labelled label, moves to it with the arrow keys and takes it
// with Enter.
func pickOption(t *testing.T, b *Browser, label, name string) {
	t.Helper()
	options := wizControl(label) + `.getAttribute('aria-controls')`
	WaitFor[bool](b, "the option "+name, 30*time.Second, `[...document.getElementById(`+options+`).querySelectorAll('[role=option] .wizard-option-name')].some(o => o.textContent === `+jsString(name)+`)`)
	active := `((c) => { const id = c.getAttribute('aria-activedescendant'); const o = id && document.getElementById(id); return o ? o.querySelector('.wizard-option-name').textContent : ''; })(` + wizControl(label) + `)`
	for i := 0; Eval[string](b, active) != name; i++ {
		require.Less(t, i, 60, "the arrow keys never reached %s", name)
		b.Do(chromedp.KeyEvent(kb.ArrowDown))
	}
	assert.Equal(t, "true", Eval[string](b, `document.getElementById(`+wizControl(label)+`.getAttribute('aria-activedescendant')).getAttribute('aria-selected')`))
	b.Do(chromedp.KeyEvent(kb.Enter))
}

// addChip types value into the chip input labelled label and presses Enter.
func addChip(b *Browser, label, value string) {
	b.Type(label, value)
	b.Do(chromedp.KeyEvent(kb.Enter))
}

// choose picks the choice card labelled label whose choice the rest of
// the step depends on (a distribution, an architecture, an image type),
// and waits until the step is drawn again with it chosen and focused.
func choose(b *Browser, label string) {
	b.t.Helper()
	chooseAt(b, label, Field(label), wizControl(label))
}

// chooseImageType is choose for the image type name, whose card's label
// also names its aliases.
func chooseImageType(b *Browser, name string) {
	b.t.Helper()
	chooseAt(b, name, `//input[@name="image_requests"][@value=`+xq(name)+`]`,
		`document.querySelector('input[name="image_requests"][value=`+jsString(name)+`]')`)
}

// chooseAt clicks the choice at xpath, whose JavaScript expression is js,
// and waits until the step is drawn anew with it chosen and focused.
func chooseAt(b *Browser, what, xpath, js string) {
	b.t.Helper()
	WaitFor[bool](b, what+" to choose", 15*time.Second, `(`+js+`) !== null`)
	Eval[bool](b, `(document.querySelector('.wizard-step').dataset.drawn = 'before', true)`)
	b.Do(chromedp.Click(xpath))
	WaitFor[bool](b, "the step drawn again with "+what+" chosen", 15*time.Second,
		`(() => { const f = document.querySelector('.wizard-step'); const c = `+js+`;
			return !!f && f.dataset.drawn !== 'before' && !!c && c.checked && document.activeElement === c; })()`)
}

// openWizard opens Create image from the top bar and waits for its
// first step. The toasts of what came before (such as "Signed in.") are
// left to the page: on the wizard they must not cover the step's buttons.
func openWizard(t *testing.T, b *Browser) {
	t.Helper()
	b.Do(chromedp.Click(Link("Create image")))
	onStep(t, b, 1)
}

func clickStep(b *Browser, name string) {
	b.Do(chromedp.Click(`//ol[contains(@class,"stepper")]//button[.//span[normalize-space(.)=` + xq(name) + `]]`))
}

// TestWizard goes through every step of the Create image wizard as a user
// would, sees the wizard's own checks and the API's verdicts next to the
// fields, saves the blueprint, and builds a tar image from it, whose
// manifest has every choice made.
func TestWizard(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " ops@example"
	keyData := strings.Fields(key)[1]
	const motd = "Built with the kiln wizard.\nHave a nice day.\n"

	openWizard(t, b)
	assert.Equal(t, wizardSteps, Eval[[]string](b, `[...document.querySelectorAll('.stepper li .stepper-title')].map(s => s.textContent)`))
	assert.Zero(t, Eval[int](b, `document.querySelectorAll('.stepper button').length`), "no step ahead can be jumped to yet")

	// 1. Image output: Next without a name or a choice says every thing
	// that is missing, at once.
	b.Do(chromedp.Click(Button("Next")))
	WaitFor[bool](b, "the missing choices", 5*time.Second, `document.querySelector('.wizard-step-problem').textContent === 'Enter a name. Choose a distribution.'`)
	b.Type("Name", "wizard-web")
	b.Type("Description", "A web server made in the wizard")
	b.Do(chromedp.Click(Button("Next")))
	WaitFor[bool](b, "the missing distribution", 5*time.Second, `document.querySelector('.wizard-step-problem').textContent === 'Choose a distribution.'`)
	choose(b, "debian-12")

	// Its architecture (both offered, each described), its image types
	// (with descriptions), then each one's target.
	assert.Equal(t, []string{"aarch64: 64-bit ARM", "x86_64: 64-bit x86 (Intel, AMD)"},
		Eval[[]string](b, `[...document.querySelectorAll('input[name=architecture]')].map(i => i.value + ': ' + document.getElementById(i.getAttribute('aria-describedby')).textContent)`))
	choose(b, "aarch64")
	assert.Equal(t, "aarch64", Eval[string](b, `document.querySelector('input[name=architecture]:checked').value`), "aarch64 can be chosen")
	choose(b, "x86_64")
	desc := Eval[string](b, `document.getElementById(`+wizControl("tar")+`.getAttribute('aria-describedby')).textContent`)
	assert.Contains(t, desc, "Root filesystem as an xz-compressed tar archive", "the image type's description is shown")
	choose(b, "tar")
	// This server delivers only by download: its two link types are
	// offered, the download link chosen.
	offered, chosen := offeredTargets(b, "tar")
	assert.Equal(t, []string{"Download link", "Download from kiln"}, offered)
	assert.Equal(t, "Download link", chosen)
	assert.Equal(t, "wizard-web", Eval[string](b, valueOf("Name")), "the name is kept while the step is drawn again")
	b.Do(chromedp.Click(Button("Next")))

	// 2. Content: packages found by typing part of the name, taken with
	// the keyboard.
	onStep(t, b, 2)
	b.Type("Search packages", "jq")
	pickOption(t, b, "Search packages", "jq")
	WaitFor[bool](b, "the jq chip", 10*time.Second, `document.querySelector('.chip > span') && document.querySelector('.chip > span').textContent === 'jq'`)
	b.Type("Search packages", "goj")
	pickOption(t, b, "Search packages", "gojq")
	WaitFor[bool](b, "the gojq chip", 10*time.Second, `[...document.querySelectorAll('.chip > span')].map(s => s.textContent).join() === 'jq,gojq'`)
	// A chip goes with the keyboard too.
	b.Do(chromedp.Focus(`//button[@aria-label="Remove gojq"]`), chromedp.KeyEvent(kb.Enter))
	WaitFor[bool](b, "gojq removed", 10*time.Second, `[...document.querySelectorAll('.chip > span')].map(s => s.textContent).join() === 'jq'`)
	assert.Equal(t, "Remove jq", Eval[string](b, `document.activeElement.getAttribute('aria-label')`), "the focus stays on the chips")
	// A tar image's base has no systemd; the service below needs it.
	b.Type("Search packages", "systemd")
	pickOption(t, b, "Search packages", "systemd")
	WaitFor[bool](b, "the systemd chip", 10*time.Second, `[...document.querySelectorAll('.chip > span')].map(s => s.textContent).join() === 'jq,systemd'`)
	b.Do(chromedp.Click(Button("Next")))

	// 3. System. Users: the key is checked as it is typed.
	onStep(t, b, 3)
	b.Do(chromedp.Click(Button("Add user")))
	b.Type("User name", "ops")
	b.Type("SSH public key", "ssh-ed25519 "+keyData[:42])
	msg := WaitFor[string](b, "the cut-off key's error", 5*time.Second, errorAt("SSH public key"))
	assert.Contains(t, msg, "not complete base64")
	b.Type("SSH public key", "ssh-rsa "+keyData)
	msg = WaitFor[string](b, "the mismatched key's error", 5*time.Second, errorAt("SSH public key"))
	assert.Contains(t, msg, `says "ssh-rsa" but its key data is an "ssh-ed25519" key`)
	b.Shot("bad-key")
	b.Type("SSH public key", key)
	WaitFor[bool](b, "the error to go", 5*time.Second, errorAt("SSH public key")+` === '' && `+wizControl("SSH public key")+`.getAttribute('aria-invalid') === null`)
	b.Type("Groups", "sudo")
	b.ShotAs("wizard-users")
	// Narrow: still one column, no sideways scrolling.
	b.Resize(390)
	widths := Eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`)
	assert.LessOrEqual(t, widths[0], widths[1], "the wizard at 390 px scrolls sideways")
	b.Shot("users-narrow")
	b.Resize(1280)

	// A hostname the API rejects (the wizard does not check it).
	b.Type("Hostname", "web_01")
	b.Type("Time zone", "berl")
	pickOption(t, b, "Time zone", "Europe/Berlin")
	assert.Equal(t, "Europe/Berlin", Eval[string](b, valueOf("Time zone")))
	addChip(b, "Languages", "en_US.UTF-8")
	WaitFor[bool](b, "the language chip", 5*time.Second, chipsOf("Languages")+`.join() === 'en_US.UTF-8'`)
	b.Type("Keyboard layout", "us")

	// Services and firewall: a port is checked before it is added.
	addChip(b, "Enabled services", "nftables")
	WaitFor[bool](b, "the service chip", 5*time.Second, chipsOf("Enabled services")+`.join() === 'nftables'`)
	addChip(b, "Open ports", "8080")
	msg = WaitFor[string](b, "the port's error", 5*time.Second, errorAt("Open ports"))
	assert.Contains(t, msg, `"8080" is not a port`)
	addChip(b, "Open ports", "8080:tcp")
	WaitFor[bool](b, "the port chip", 5*time.Second, chipsOf("Open ports")+`.join() === '8080:tcp' && `+errorAt("Open ports")+` === ''`)

	// Filesystems: the mount point is checked as it is typed.
	b.Do(chromedp.Click(Button("Add filesystem")))
	b.Type("Mount point", "var")
	msg = WaitFor[string](b, "the relative mount point's error", 5*time.Second, errorAt("Mount point"))
	assert.Contains(t, msg, "not an absolute path")
	b.Type("Mount point", "/var/../etc")
	assert.Contains(t, WaitFor[string](b, "the dot-dot error", 5*time.Second, errorAt("Mount point")), `contains ".."`)
	b.Type("Mount point", "/var")
	WaitFor[bool](b, "the mount point error to go", 5*time.Second, errorAt("Mount point")+` === ''`)
	b.Type("Minimum size", "2")
	b.Select("Unit of the minimum size of filesystem 1", "GiB")

	// Files and directories.
	b.Do(chromedp.Click(Button("Add file")))
	b.Type("File path", "/etc/motd")
	b.Type("Mode", "0644")
	b.Type("Content", motd)
	b.Do(chromedp.Click(Button("Next")))

	// 4. Review: the name given first, and build. The API rejects the
	// hostname: the wizard goes back to System and shows the API's
	// message at the field.
	onStep(t, b, 4)
	assert.Equal(t, "wizard-web", Eval[string](b, valueOf("Name")))
	b.Do(chromedp.Click(Button("Build image")))
	msg = WaitFor[string](b, "the API's hostname error", 15*time.Second, errorAt("Hostname"))
	assert.Contains(t, msg, "host name")
	assert.Equal(t, "Hostname", Eval[string](b, `document.activeElement.labels[0].textContent`), "the focus is on the field to fix")
	onStep(t, b, 3)
	assert.Equal(t, "System (has errors)", Eval[string](b, `document.querySelector('.stepper li.has-error').textContent`))
	b.Shot("api-error")
	// Everything typed is still there.
	assert.Equal(t, "web_01", Eval[string](b, valueOf("Hostname")))
	assert.Equal(t, "Europe/Berlin", Eval[string](b, valueOf("Time zone")))
	assert.Equal(t, "us", Eval[string](b, valueOf("Keyboard layout")))
	assert.Equal(t, []string{"en_US.UTF-8"}, Eval[[]string](b, chipsOf("Languages")))
	assert.Equal(t, key, Eval[string](b, valueOf("SSH public key")))
	assert.Equal(t, "ops", Eval[string](b, valueOf("User name")))
	assert.Equal(t, motd, Eval[string](b, valueOf("Content")))
	clickStep(b, "Content")
	onStep(t, b, 2)
	assert.Equal(t, []string{"jq", "systemd"}, Eval[[]string](b, `[...document.querySelectorAll('.chip > span')].map(s => s.textContent)`))
	clickStep(b, "System")
	onStep(t, b, 3)
	b.Type("Hostname", "web01")
	WaitFor[bool](b, "the hostname error to go once edited", 5*time.Second, errorAt("Hostname")+` === ''`)

	// Build again: tar images have no partitions, so the API refuses the
	// filesystem, and the wizard shows that in System's Filesystems.
	clickStep(b, "Review")
	onStep(t, b, 4)
	assert.Equal(t, "wizard-web", Eval[string](b, valueOf("Name")))
	b.Do(chromedp.Click(Button("Build image")))
	onStep(t, b, 3)
	msg = WaitFor[string](b, "the filesystem error", 15*time.Second, `(document.querySelector('.wizard-list .wizard-container-error') || {}).textContent || ''`)
	assert.Contains(t, msg, "Not supported by image type tar")
	b.Do(chromedp.Click(Button("Remove filesystem 1")))
	WaitFor[bool](b, "the filesystem to go", 5*time.Second, `!document.querySelector('.wizard-container-error') && !document.querySelector('.stepper li.has-error')`)

	// The review's TOML is the blueprint as entered.
	clickStep(b, "Review")
	onStep(t, b, 4)
	text := WaitFor[string](b, "the blueprint's TOML", 15*time.Second,
		`((p) => p.getAttribute('aria-busy') === 'false' && p.textContent.includes('wizard-web') ? p.textContent : '')(document.getElementById('wz-toml'))`)
	bp, err := blueprint.Parse([]byte(text), blueprint.FormatTOML)
	require.NoError(t, err, "the review's TOML parses as a blueprint:\n%s", text)
	assert.Equal(t, "wizard-web", bp.Name)
	assert.Equal(t, "A web server made in the wizard", bp.Description)
	assert.Equal(t, []blueprint.Package{{Name: "jq"}, {Name: "systemd"}}, unversioned(bp.Packages))
	c := bp.Customizations
	require.NotNil(t, c)
	assert.Equal(t, "web01", derefString(c.Hostname))
	require.Len(t, c.User, 1)
	assert.Equal(t, "ops", c.User[0].Name)
	assert.Equal(t, key, derefString(c.User[0].Key))
	assert.Equal(t, []string{"sudo"}, c.User[0].Groups)
	require.NotNil(t, c.Timezone)
	assert.Equal(t, "Europe/Berlin", derefString(c.Timezone.Timezone))
	require.NotNil(t, c.Locale)
	assert.Equal(t, []string{"en_US.UTF-8"}, c.Locale.Languages)
	assert.Equal(t, "us", derefString(c.Locale.Keyboard))
	require.NotNil(t, c.Services)
	assert.Equal(t, []string{"nftables"}, c.Services.Enabled)
	require.NotNil(t, c.Firewall)
	assert.Equal(t, []string{"8080:tcp"}, c.Firewall.Ports)
	assert.Empty(t, c.Filesystem)
	require.Len(t, c.Files, 1)
	assert.Equal(t, "/etc/motd", c.Files[0].Path)
	assert.Equal(t, "0644", c.Files[0].Mode)
	assert.Equal(t, motd, c.Files[0].Data)
	summary := Eval[string](b, `document.querySelector('.wizard-summary').textContent`)
	for _, s := range []string{"debian-12", "x86_64", "tar", "jq", "ops (SSH key)", "hostname web01", "Europe/Berlin", "8080:tcp", "/etc/motd"} {
		assert.Contains(t, summary, s, "the summary")
	}
	b.ShotAs("wizard-review")

	// Save blueprint: stored, and the wizard goes to its page.
	b.Do(chromedp.Click(Button("Save blueprint")))
	hash := WaitFor[string](b, "the blueprint's page", 15*time.Second, `location.hash.startsWith('#/blueprints/') ? location.hash : ''`)
	id := strings.TrimPrefix(hash, "#/blueprints/")
	var stored struct {
		Name          string `json:"name"`
		Version       int    `json:"version"`
		ImageRequests []struct {
			Architecture string `json:"architecture"`
			ImageType    string `json:"image_type"`
		} `json:"image_requests"`
		Customizations map[string]any `json:"customizations"`
	}
	require.Equal(t, http.StatusOK, e.API(t, e.TokenA, "GET", "/blueprints/"+id, nil, &stored))
	assert.Equal(t, "wizard-web", stored.Name)
	assert.Equal(t, 1, stored.Version)
	require.Len(t, stored.ImageRequests, 1)
	assert.Equal(t, "tar", stored.ImageRequests[0].ImageType)
	assert.Equal(t, "x86_64", stored.ImageRequests[0].Architecture)
	assert.Equal(t, "web01", stored.Customizations["hostname"])
	assert.Equal(t, []any{"jq", "systemd"}, stored.Customizations["packages"])
	files, _ := stored.Customizations["files"].([]any)
	require.Len(t, files, 1)
	assert.Equal(t, motd, files[0].(map[string]any)["data"])

	// Opened again from the stored blueprint, the wizard has it all; Build
	// image builds it.
	b.Visit("#/create?blueprint="+id+"&version=1", `!!document.querySelector('.stepper li[aria-current="step"]')`)
	WaitFor[bool](b, "the edit title", 10*time.Second, `document.querySelector('main h1').textContent === 'Edit blueprint wizard-web'`)
	assert.Equal(t, 3, Eval[int](b, `document.querySelectorAll('.stepper button').length`), "every step can be jumped to")
	clickStep(b, "System")
	onStep(t, b, 3)
	assert.Equal(t, "web01", Eval[string](b, valueOf("Hostname")))
	clickStep(b, "Review")
	onStep(t, b, 4)
	assert.Equal(t, "wizard-web", Eval[string](b, valueOf("Name")))
	WaitFor[bool](b, "the TOML", 15*time.Second, `document.getElementById('wz-toml').getAttribute('aria-busy') === 'false'`)
	assert.Equal(t, text, Eval[string](b, `document.getElementById('wz-toml').textContent`), "the stored blueprint renders to the same TOML")
	Eval[bool](b, `(window.wizardTestMark = true)`)
	b.Do(chromedp.Click(Button("Build image")))
	hash = WaitFor[string](b, "the compose's page", 15*time.Second, `location.hash.startsWith('#/composes/') ? location.hash : ''`)
	composeID := strings.TrimPrefix(hash, "#/composes/")
	WaitFor[bool](b, "the build to end", 3*time.Minute,
		`(() => { const s = document.querySelector('main h1 .badge'); if (s && s.textContent.trim() === 'Failure') return true; return !!s && s.textContent.trim() === 'Success'; })()`)
	require.Equal(t, "Success", Eval[string](b, `document.querySelector('main h1 .badge').textContent.trim()`), "the build failed:\n%s", e.Log(40))
	assert.True(t, Eval[bool](b, `window.wizardTestMark === true`), "the page followed the build without reloading")
	assert.Equal(t, "#/composes/"+composeID, Eval[string](b, `location.hash`))
	b.Shot("built")

	// The image, through the page's download button: a fake one, which
	// carries the manifest it was built from, so every choice made in the
	// wizard is checked where the build takes it. That an image built from
	// such a manifest has those files, users and links is proven by
	// test/e2e.
	m := readFakeImage(t, b.DownloadImage())
	assert.Equal(t, e.servedManifest(t, e.TokenA, composeID), m, "the download is the image of this compose")
	assert.Equal(t, "wizard-web", m.Target.Name)
	assert.Equal(t, "debian-12", m.Target.Distro)
	assert.Equal(t, "x86_64", m.Target.Arch)
	assert.Equal(t, "tar", m.Target.ImageType)

	installs := stagesOf[*manifest.DebsInstall](m)
	require.Len(t, installs, 1)
	assert.Subset(t, installs[0].Packages, []string{"jq", "systemd"}, "the packages chosen are installed")
	var pinned []string
	for _, d := range m.Sources.Debs {
		pinned = append(pinned, d.Name)
	}
	assert.Subset(t, pinned, []string{"jq", "systemd"}, "the packages chosen are pinned")

	hostnames := stagesOf[*manifest.Hostname](m)
	require.Len(t, hostnames, 1)
	assert.Equal(t, "web01", hostnames[0].Hostname)
	zones := stagesOf[*manifest.Timezone](m)
	require.Len(t, zones, 1)
	assert.Equal(t, "Europe/Berlin", zones[0].Zone)
	locales := stagesOf[*manifest.Locale](m)
	require.Len(t, locales, 1)
	assert.Equal(t, []string{"en_US.UTF-8"}, locales[0].Languages)
	keyboards := stagesOf[*manifest.Keyboard](m)
	require.Len(t, keyboards, 1)
	assert.Equal(t, "us", keyboards[0].Layout)

	users := stagesOf[*manifest.Users](m)
	require.Len(t, users, 1)
	require.Len(t, users[0].Users, 1)
	assert.Equal(t, "ops", users[0].Users[0].Name)
	assert.Equal(t, []string{key}, users[0].Users[0].SSHKeys, "the user's SSH key")
	assert.Contains(t, users[0].Users[0].SSHKeys[0], keyData)
	assert.Equal(t, []string{"sudo"}, users[0].Users[0].Groups)

	units := stagesOf[*manifest.Systemd](m)
	require.Len(t, units, 1)
	assert.Contains(t, units[0].Enabled, "nftables", "the service is enabled")
	firewalls := stagesOf[*manifest.Firewall](m)
	require.Len(t, firewalls, 1)
	assert.Equal(t, []manifest.FirewallPort{{From: 8080, To: 8080, Protocol: "tcp"}, {From: 22, To: 22, Protocol: "tcp"}}, firewalls[0].Ports,
		"the port the wizard opened, and ssh, which stays open unless disabled: the manifest lists every port it opens")

	var motds []manifest.File
	for _, fs := range stagesOf[*manifest.Files](m) {
		for _, f := range fs.Files {
			if f.Path == "/etc/motd" {
				motds = append(motds, f)
			}
		}
	}
	require.Len(t, motds, 1, "the file is written once")
	assert.Equal(t, motd, motds[0].Data)
	assert.Equal(t, "0644", motds[0].Mode, "the file's mode")
}

func unversioned(pkgs []blueprint.Package) []blueprint.Package {
	out := make([]blueprint.Package, 0, len(pkgs))
	for _, p := range pkgs {
		if p.Version == "*" {
			p.Version = ""
		}
		out = append(out, p)
	}
	return out
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
