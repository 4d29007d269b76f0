package browser

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
)

// A blueprint with two wrong fields on two steps, one the OpenAPI
// document refuses (the host name) and one the distribution refuses (a
// filesystem on a tar image), comes back from one Build with both: each
// message at its own control, each step marked.
func TestWizardShowsEveryProblemAtItsControl(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)

	b.Do(chromedp.Click(Link("Create image")))
	onStep(t, b, 1)
	b.Do(chromedp.Click(Field("debian-12")), chromedp.Click(Button("Next")))
	onStep(t, b, 2)
	b.Do(chromedp.Click(Field("x86_64")), chromedp.Click(Button("Next")))
	onStep(t, b, 3)
	b.Do(chromedp.Click(Field("tar")), chromedp.Click(Button("Next")))
	for _, n := range []int{4, 5, 6} {
		onStep(t, b, n)
		b.Do(chromedp.Click(Button("Next")))
	}
	onStep(t, b, 7)
	b.Type("Hostname", "web_01")
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 8)
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 9)
	b.Do(chromedp.Click(Button("Add filesystem")))
	b.Type("Mount point", "/var")
	b.Type("Minimum size", "2")
	b.Select("Unit of the minimum size of filesystem 1", "GiB")
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 10)
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 11)
	b.Type("Name", "two-problems")
	b.Do(chromedp.Click(Button("Build image")))

	// One answer: the first step with a problem opens with it at its
	// control, and both steps say they have errors.
	msg := WaitFor[string](b, "the API's hostname error", 15*time.Second, errorAt("Hostname"))
	assert.Contains(t, msg, "host name")
	onStep(t, b, 7)
	assert.Equal(t, []string{"System (has errors)", "Filesystems (has errors)"},
		Eval[[]string](b, `[...document.querySelectorAll('.stepper li.has-error')].map(li => li.textContent)`))
	b.Shot("two-problems-hostname")

	// The other is at its control on its step, without building again.
	clickStep(b, "Filesystems")
	onStep(t, b, 9)
	msg = WaitFor[string](b, "the filesystem error", 5*time.Second, `(document.querySelector('.wizard-list .wizard-container-error') || {}).textContent || ''`)
	assert.Contains(t, msg, "Not supported by image type tar")
	b.Shot("two-problems-filesystem")
}
