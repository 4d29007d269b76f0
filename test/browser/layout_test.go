package browser

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsList is the JavaScript array of the strings in list.
func jsList(list []string) string {
	out, err := json.Marshal(list)
	if err != nil {
		panic(err) // a []string always marshals
	}
	return string(out)
}

// sectionTitles are the h3 titles of the sections of the step shown, in
// order.
func sectionTitles(b *Browser) []string {
	return Eval[[]string](b, `[...document.querySelectorAll('.wizard-step-body > section > h3')].map(h => h.textContent)`)
}

// fillOutput fills in the wizard's first step with a debian-12 x86_64
// tar image named name and goes on to the second.
func fillOutput(t *testing.T, b *Browser, name string) {
	t.Helper()
	onStep(t, b, 1)
	b.Type("Name", name)
	choose(b, "debian-12")
	choose(b, "x86_64")
	choose(b, "tar")
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 2)
}

// The wizard has four steps; the first asks for the name before anything
// else, and each step has one section per topic, in the order the field
// works through them.
func TestWizardHasFourSteps(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)

	openWizard(t, b)
	assert.Equal(t, []string{"Image output", "Content", "System", "Review"},
		Eval[[]string](b, `[...document.querySelectorAll('.stepper li .stepper-title')].map(s => s.textContent)`))
	assert.Equal(t, "1. Image output", Eval[string](b, `document.querySelector('.wizard-step h2').textContent`))
	assert.Equal(t, []string{"Name", "Distribution", "Architecture", "Image types", "Target"}, sectionTitles(b))
	assert.Equal(t, "Name", Eval[string](b, `document.activeElement.labels[0].textContent`), "the name is asked first")
	assert.Equal(t, "wz-name", Eval[string](b, `document.querySelector('.wizard-step-body input, .wizard-step-body textarea').id`),
		"the name is the first control of the step")
	// Each section is named by its heading, for the landmarks' list.
	assert.Empty(t, Eval[[]string](b, `[...document.querySelectorAll('.wizard-step-body > section')]
		.filter(s => document.getElementById(s.getAttribute('aria-labelledby')) !== s.querySelector(':scope > h3')).map(s => s.id)`))

	// Next without a name says so on the first step, which stays.
	choose(b, "debian-12")
	choose(b, "x86_64")
	assert.Zero(t, Eval[int](b, `document.querySelectorAll('input[name=image_requests]:checked').length`), "no image type is ticked for the user")
	choose(b, "tar")
	// Narrow, the first step, its longest, is one column without
	// sideways scrolling.
	b.Resize(390)
	widths := Eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`)
	assert.LessOrEqual(t, widths[0], widths[1], "the first step at 390 px scrolls sideways")
	b.Shot("output-narrow")
	b.Resize(1280)
	b.Do(chromedp.Click(Button("Next")))
	WaitFor[bool](b, "the missing name", 5*time.Second, `(() => { const p = document.querySelector('.wizard-step-problem'); return !!p && !p.hidden && p.textContent === 'Enter a name.'; })()`)
	onStep(t, b, 1)
	b.Type("Name", "four-steps")
	b.Do(chromedp.Click(Button("Next")))

	onStep(t, b, 2)
	assert.Equal(t, "2. Content", Eval[string](b, `document.querySelector('.wizard-step h2').textContent`))
	assert.Equal(t, []string{"Packages", "Repositories"}, sectionTitles(b))
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 3)
	assert.Equal(t, []string{"Users & groups", "Hostname", "Time & locale", "Kernel", "Services", "Firewall", "Filesystems", "Files & directories", "First-boot scripts"}, sectionTitles(b))
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 4)
	assert.Equal(t, "four-steps", Eval[string](b, valueOf("Name")), "the review shows the name given first")

	// The summary's Edit buttons lead to the step that has each topic.
	b.Do(chromedp.Click(`//button[@aria-label="Edit Target"]`))
	onStep(t, b, 1)
	clickStep(b, "Review")
	onStep(t, b, 4)
	b.Do(chromedp.Click(`//button[@aria-label="Edit Packages"]`))
	onStep(t, b, 2)
	clickStep(b, "Review")
	onStep(t, b, 4)
	b.Do(chromedp.Click(`//button[@aria-label="Edit Files & directories"]`))
	onStep(t, b, 3)
}

// Every control the wizard had before its steps were regrouped is still
// on one of its steps, where a person looks for it.
func TestWizardKeepsEveryControl(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	openWizard(t, b)
	choose(b, "debian-12")
	choose(b, "x86_64")
	choose(b, "tar")

	// reachable lists the labels of want that label no visible control
	// on the step shown.
	reachable := func(want []string) []string {
		return Eval[[]string](b, `((want) => want.filter((l) => {
			const label = [...document.querySelectorAll('.wizard-step label, .wizard-step legend')].find(x => x.textContent.trim() === l);
			const c = label && (label.htmlFor ? document.getElementById(label.htmlFor) : label.parentElement);
			return !c || c.getClientRects().length === 0;
		}))(`+jsList(want)+`)`)
	}
	buttons := func(want []string) []string {
		return Eval[[]string](b, `((want) => want.filter((t) => ![...document.querySelectorAll('.wizard-step button')].some(x => x.textContent.trim() === t && x.getClientRects().length)))(`+jsList(want)+`)`)
	}

	assert.Empty(t, reachable([]string{"Name", "Description", "debian-12", "debian-13", "x86_64", "aarch64", "tar", "Download link", "Download from kiln"}), "Image output")
	b.Do(chromedp.Click(Button("Next")))
	WaitFor[bool](b, "the missing name", 5*time.Second, `document.querySelector('.wizard-step-problem').textContent === 'Enter a name.'`)
	b.Type("Name", "every-control")
	b.Do(chromedp.Click(Button("Next")))

	onStep(t, b, 2)
	assert.Empty(t, reachable([]string{"Search packages"}), "Content")

	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 3)
	assert.Empty(t, buttons([]string{"Add user", "Add filesystem", "Add file", "Add directory"}), "System")
	for _, add := range [][2]string{{"Add user", "wz-user-0-name"}, {"Add filesystem", "wz-fs-0-mountpoint"}, {"Add file", "wz-file-0-path"}, {"Add directory", "wz-dir-0-path"}} {
		b.Do(chromedp.Click(Button(add[0])))
		WaitFor[bool](b, "the row of "+add[0], 5*time.Second, `!!document.activeElement && document.activeElement.id === `+jsString(add[1]))
	}
	assert.Empty(t, reachable([]string{
		"User 1", "User name", "Groups", "SSH public key", "Password",
		"Hostname", "Time zone", "Languages", "Keyboard layout", "Kernel arguments",
		"Enabled services", "Disabled services", "Masked services",
		"Open ports", "Allowed firewall services", "Blocked firewall services",
		"Filesystem 1", "Mount point", "Minimum size", "Unit of the minimum size of filesystem 1",
		"File 1", "File path", "Mode", "Owner", "Group", "Content",
		"Directory 1", "Directory path", "Create missing parent directories",
	}), "System")
	assert.Empty(t, buttons([]string{"Remove user 1", "Remove filesystem 1", "Remove file 1", "Remove directory 1"}), "System")
	b.CheckLabels()

	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 4)
	assert.Empty(t, reachable([]string{"Name", "Description"}), "Review")
	assert.Empty(t, buttons([]string{"Save blueprint", "Build image", "Copy TOML"}), "Review")
}

// singleChoices makes the page see a server whose debian-12 is built for
// x86_64 only and that delivers images only as a download link: the
// answers of GET /distributions/debian-12 and GET /upload_types, as the
// wizard reads them, keep only those.
const singleChoices = `(() => {
	const real = window.fetch;
	window.fetch = async (input, init) => {
		const res = await real(input, init);
		const path = new URL(typeof input === 'string' ? input : input.url, location.href).pathname;
		const edit = path.endsWith('/distributions/debian-12') ? (j) => ({ ...j, architectures: { x86_64: j.architectures.x86_64 } })
			: path.endsWith('/upload_types') ? (j) => ({ ...j, data: j.data.filter((t) => t.type === 'aws.s3') }) : null;
		if (!edit || !res.ok) return res;
		const body = JSON.stringify(edit(await res.json()));
		return new Response(body, { status: res.status, headers: { 'Content-Type': 'application/json' } });
	};
	return true;
})()`

// An architecture or a target that is the only one is shown as a fact,
// not asked as a question with one answer; it is what the request uses.
func TestWizardShowsASingleChoiceAsAFact(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	require.True(t, Eval[bool](b, singleChoices))

	openWizard(t, b)
	b.Type("Name", "one-of-each")
	choose(b, "debian-12")
	fact := func(section string) string {
		return Eval[string](b, `((f) => f ? f.textContent : '')(document.querySelector('#wz-section-`+section+` .wizard-fact'))`)
	}
	assert.Equal(t, 0, Eval[int](b, `document.querySelectorAll('input[name=architecture]').length`), "no question with one answer")
	assert.Contains(t, fact("architecture"), "x86_64 — 64-bit x86 (Intel, AMD)")
	assert.Contains(t, fact("architecture"), "debian-12 images are built for x86_64 only.")
	// The image types of that architecture are offered at once.
	choose(b, "tar")
	assert.Equal(t, 0, Eval[int](b, `document.querySelectorAll('input[name^="upload_request"]').length`), "no question with one answer")
	assert.Contains(t, fact("target"), "Download link")
	assert.Contains(t, fact("target"), "The only target this server delivers tar images to.")
	b.Shot("facts")
	for n := 1; n <= 3; n++ {
		onStep(t, b, n)
		b.Do(chromedp.Click(Button("Next")))
	}
	onStep(t, b, 4)
	summary := Eval[[]string](b, `[...document.querySelectorAll('.wizard-summary dt')].map(dt => dt.textContent + ': ' + dt.nextElementSibling.firstChild.textContent)`)
	assert.Contains(t, summary, "Architecture: x86_64")
	assert.Contains(t, summary, "Target: tar: Download link")
}

// The suggestions of the package search and the time zone open under
// their input, never over it, wide or narrow.
func TestSuggestionsOpenUnderTheirInput(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)
	openWizard(t, b)
	fillOutput(t, b, "suggestions")

	// placement is where the listbox of the combobox labelled label is
	// against its input: the list's top and the input's bottom, the
	// list's left and right, and the viewport's width.
	placement := func(label string) []float64 {
		return Eval[[]float64](b, `((c) => { const l = document.getElementById(c.getAttribute('aria-controls'));
			const cr = c.getBoundingClientRect(), lr = l.getBoundingClientRect();
			return [lr.top, cr.bottom, lr.left, lr.right, document.documentElement.clientWidth]; })(`+wizControl(label)+`)`)
	}
	open := func(label string) string {
		return `((c) => { const l = c && document.getElementById(c.getAttribute('aria-controls'));
			return !!l && !l.hidden && l.querySelectorAll('[role=option]').length > 0; })(` + wizControl(label) + `)`
	}
	check := func(label string, width int) {
		t.Helper()
		p := placement(label)
		what := label + " at " + strconv.Itoa(width) + " px"
		assert.GreaterOrEqual(t, p[0], p[1], "the suggestions of %s start under the input", what)
		assert.GreaterOrEqual(t, p[2], 0.0, "the suggestions of %s start inside the viewport", what)
		assert.LessOrEqual(t, p[3], p[4], "the suggestions of %s end inside the viewport", what)
		assert.Equal(t, "true", Eval[string](b, wizControl(label)+`.getAttribute('aria-expanded')`))
	}

	for _, width := range []int{1280, 390} {
		b.Resize(width)
		onStep(t, b, 2)
		b.Type("Search packages", "jq")
		WaitFor[bool](b, "the package suggestions", 30*time.Second, open("Search packages"))
		check("Search packages", width)
		b.Shot("packages-" + strconv.Itoa(width))
		// Escape closes the list, which lies over what follows the input.
		b.Do(chromedp.KeyEvent(kb.Escape))
		WaitFor[bool](b, "the package suggestions to close", 5*time.Second, `!(`+open("Search packages")+`)`)

		b.Do(chromedp.Click(Button("Next")))
		onStep(t, b, 3)
		b.Type("Time zone", "berl")
		WaitFor[bool](b, "the time zone suggestions", 10*time.Second, open("Time zone"))
		check("Time zone", width)
		b.Shot("timezone-" + strconv.Itoa(width))
		b.Do(chromedp.KeyEvent(kb.Escape))
		WaitFor[bool](b, "the time zone suggestions to close", 5*time.Second, `!(`+open("Time zone")+`)`)
		b.Do(chromedp.Click(Button("Back")))
	}
}
