package browser

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
)

// A blueprint with two wrong fields, one the OpenAPI document refuses
// (the host name) and one the distribution refuses (a filesystem on a
// tar image), comes back from one Build with both: each message at its
// own control, and the step that has them marked.
func TestWizardShowsEveryProblemAtItsControl(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.SignIn(e.TokenA)

	openWizard(t, b)
	b.Type("Name", "two-problems")
	choose(b, "debian-12")
	choose(b, "x86_64")
	choose(b, "tar")
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 2)
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 3)
	b.Type("Hostname", "web_01")
	b.Do(chromedp.Click(Button("Add filesystem")))
	b.Type("Mount point", "/var")
	b.Type("Minimum size", "2")
	b.Select("Unit of the minimum size of filesystem 1", "GiB")
	b.Do(chromedp.Click(Button("Next")))
	onStep(t, b, 4)
	b.Do(chromedp.Click(Button("Build image")))

	// One answer: the step with the problems opens with each at its
	// control, and says it has errors.
	msg := WaitFor[string](b, "the API's hostname error", 15*time.Second, errorAt("Hostname"))
	assert.Contains(t, msg, "host name")
	onStep(t, b, 3)
	assert.Equal(t, []string{"System (has errors)"},
		Eval[[]string](b, `[...document.querySelectorAll('.stepper li.has-error')].map(li => li.textContent)`))
	b.Shot("two-problems-hostname")

	// The other is at its control in the same step, without building again.
	msg = WaitFor[string](b, "the filesystem error", 5*time.Second, `(document.querySelector('#wz-section-filesystems .wizard-list .wizard-container-error') || {}).textContent || ''`)
	assert.Contains(t, msg, "Not supported by image type tar")
	b.Shot("two-problems-filesystem")
}
