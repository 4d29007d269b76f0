package browser

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kilnAdmin runs a kiln command against s's database.
func kilnAdmin(t *testing.T, s *Server, args ...string) string {
	t.Helper()
	out, err := exec.Command(kilnBin, append(args, "--data", s.Data)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kiln %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// The public status page renders without a token and without script:
// every component with its state in words, 90 days of uptime whose bars
// each carry text, and an incident with its updates. axe passes, and
// nothing scrolls sideways at 1280 or 390 px. Its screenshot is
// docs/screenshots/status.png.
func TestStatusPage(t *testing.T) {
	s := StartServer(t, "--status-interval", "200ms", "--worker-arch", "x86_64,aarch64")
	id := kilnAdmin(t, s, "incident", "open", "Builds for aarch64 wait longer than usual", "--impact", "minor",
		"--component", "workers/aarch64", "--component", "queue", "--message", "We are looking into slow aarch64 builds.")
	kilnAdmin(t, s, "incident", "update", id, "--status", "identified", "--message", "An emulated build host was overloaded; builds are moving to another host.")
	b := NewBrowser(t, s)

	// The page is static: reload until the prober has seen every
	// component operational.
	deadline := time.Now().Add(time.Minute)
	for {
		b.Do(chromedp.Navigate(s.URL + "/status"))
		if Eval[bool](b, `document.querySelectorAll('.component').length > 0 && [...document.querySelectorAll('.component .state')].every(e => e.textContent.trim() === 'operational')`) {
			break
		}
		if time.Now().After(deadline) {
			b.Shot("not-operational")
			t.Fatalf("the components never were all operational: %v", Eval[[]string](b, `[...document.querySelectorAll('.component')].map(c => c.querySelector('h3').textContent + ': ' + c.querySelector('.state').textContent.trim())`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every check passes, but the open incident says something is wrong.
	assert.Equal(t, "Some systems are degraded", Eval[string](b, `document.querySelector('.overall h2').textContent`))
	titles := Eval[[]string](b, `[...document.querySelectorAll('.component h3')].map(e => e.textContent)`)
	assert.Equal(t, []string{"API and web UI", "Database", "Job queue", "Build workers (aarch64)", "Build workers (x86_64)",
		"Artifact store (image downloads)", "Uploads to aws.s3", "Uploads to local"}, titles)

	// Each component has 90 days of bars, each with its date and share
	// in words; today's has a sample, the first day none.
	bars := Eval[[]int](b, `[...document.querySelectorAll('.component .bars')].map(o => o.querySelectorAll('li').length)`)
	require.Len(t, bars, len(titles))
	for _, n := range bars {
		assert.Equal(t, 90, n)
	}
	assert.Equal(t, "", Eval[string](b, `[...document.querySelectorAll('.bars li')].filter(li => !li.querySelector('.sr') || li.querySelector('.sr').textContent.trim() === '').map(li => li.outerHTML).join()`),
		"every bar has text")
	today := Eval[string](b, `document.querySelector('#component-api .bars li:last-child .sr').textContent`)
	assert.Regexp(t, `^\d{4}-\d{2}-\d{2}: 100\.00% operational$`, today)
	assert.Regexp(t, `^\d{4}-\d{2}-\d{2}: no data$`, Eval[string](b, `document.querySelector('#component-api .bars li:first-child .sr').textContent`))
	assert.NotEmpty(t, Eval[string](b, `document.querySelector('#component-api .bars').getAttribute('aria-label')`))
	assert.Equal(t, "90-day uptime: 100.00%", Eval[string](b, `document.querySelector('#component-api .uptime-summary').textContent`))

	// The incident and its updates, newest first.
	assert.Equal(t, "Builds for aarch64 wait longer than usual", Eval[string](b, `document.querySelector('.incident h3').textContent`))
	updates := Eval[[]string](b, `[...document.querySelectorAll('.incident .updates li p')].map(p => p.textContent)`)
	assert.Equal(t, []string{"An emulated build host was overloaded; builds are moving to another host.", "We are looking into slow aarch64 builds."}, updates)
	assert.Zero(t, Eval[int](b, `document.scripts.length`), "the page runs no script")

	b.Axe("the status page")
	noHorizontalScroll(t, b, "the status page")
	b.ShotAs("status")
	b.Resize(390)
	b.Do(chromedp.Reload())
	WaitFor[bool](b, "the status page at 390 px", 10*time.Second, `document.querySelectorAll('.component').length > 0`)
	noHorizontalScroll(t, b, "the status page")
	b.Axe("the narrow status page")
	b.Shot("status-narrow")
}
