package browser

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/aptsources"
	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/depsolve/apt"
	"github.com/kiln-project/kiln/internal/distro"
	"github.com/kiln-project/kiln/internal/service"
	"github.com/kiln-project/kiln/internal/service/api"
	"github.com/kiln-project/kiln/internal/target"
	"github.com/kiln-project/kiln/internal/testhost"
	"github.com/kiln-project/kiln/internal/worker"
)

// The real upload targets are tested against their protocol servers in
// internal/target; these tests are about the UI: which targets the
// wizard offers, the options it sends and where the images list says the
// images went. The server they run is kiln serve's service in this
// process, so that it can be given upload types of the tests' own
// (recordingTarget) beside the real local and aws.s3.

// recordingTarget is an upload type that takes the image types it names,
// checks its options as the real one of its type would (the rules the
// wizard's hints explain), records each upload it is asked for and
// answers with a result made up from the compose's ID, as the real one
// would give after delivering.
type recordingTarget struct {
	name       string
	imageTypes []string
	check      func(options json.RawMessage) error
	result     func(composeID string, options json.RawMessage) target.Result
	// hold, when set, keeps each upload in its registering step (as a
	// cloud importing the image) until it is closed.
	hold chan struct{}

	mu      sync.Mutex
	uploads map[string]json.RawMessage // compose ID → the options it was given
}

// Type implements target.Target.
func (r *recordingTarget) Type() string { return r.name }

// Check implements target.Target.
func (r *recordingTarget) Check(img target.Image, options json.RawMessage) error {
	if !slices.Contains(r.imageTypes, img.Type) {
		return fmt.Errorf("%s takes %v images, not %s", r.name, r.imageTypes, img.Type)
	}
	return r.check(options)
}

// NeedsFile implements target.NeedsFile: nothing is read from the image.
func (r *recordingTarget) NeedsFile() bool { return false }

// Upload implements target.Target.
func (r *recordingTarget) Upload(ctx context.Context, a target.Artifact, options json.RawMessage, rep target.Reporter) (target.Result, error) {
	if r.hold != nil {
		rep.Step(target.StepRegistering)
		select {
		case <-r.hold:
		case <-ctx.Done():
			return target.Result{}, &target.StepError{Target: r.name, Step: "register the image", Err: ctx.Err()}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.uploads == nil {
		r.uploads = map[string]json.RawMessage{}
	}
	r.uploads[a.ComposeID] = append(json.RawMessage(nil), options...)
	return r.result(a.ComposeID, options), nil
}

// Uploads are the options of each upload, by compose ID.
func (r *recordingTarget) Uploads() map[string]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]json.RawMessage{}
	for k, v := range r.uploads {
		out[k] = v
	}
	return out
}

// hexOf is a made-up identifier: n hex digits derived from s.
func hexOf(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// fakeAMI is the AMI the aws target "registers" for a compose.
func fakeAMI(composeID string) string { return "ami-0" + hexOf(composeID, 16) }

// fakeDigest is the digest the container target "pushes" for a compose.
func fakeDigest(composeID string) string { return "sha256:" + hexOf("digest "+composeID, 64) }

// fakeGCEImage is the image the gcp target "imports" for a compose.
func fakeGCEImage(composeID string) string { return "kiln-" + hexOf(composeID, 8) }

var awsAccount = regexp.MustCompile(`^[0-9]{12}$`)

// newAWSTarget takes ami images, share_with_accounts (12 digits each) and
// region (eu-west-1 or us-east-1, the regions the operator's account is
// set up for here).
func newAWSTarget() *recordingTarget {
	return &recordingTarget{name: "aws", imageTypes: []string{"ami"},
		check: func(options json.RawMessage) error {
			var o struct {
				Share  []string `json:"share_with_accounts"`
				Region string   `json:"region"`
			}
			if err := target.DecodeOptions(options, &o); err != nil {
				return err
			}
			for i, a := range o.Share {
				if !awsAccount.MatchString(a) {
					return fmt.Errorf("options.share_with_accounts[%d]: %q is not a 12-digit AWS account ID", i, a)
				}
			}
			if o.Region != "" && o.Region != "eu-west-1" && o.Region != "us-east-1" {
				return fmt.Errorf("options.region: unknown region %q: use eu-west-1 or us-east-1", o.Region)
			}
			return nil
		},
		result: func(id string, options json.RawMessage) target.Result {
			var o struct {
				Region string `json:"region"`
			}
			_ = json.Unmarshal(options, &o)
			if o.Region == "" {
				o.Region = "us-east-1"
			}
			return target.Result{AMI: fakeAMI(id), Region: o.Region}
		}}
}

// newRegistryTarget takes container images and name and tag.
func newRegistryTarget() *recordingTarget {
	return &recordingTarget{name: "container", imageTypes: []string{"container"},
		check: func(options json.RawMessage) error {
			var o struct {
				Name string `json:"name"`
				Tag  string `json:"tag"`
			}
			return target.DecodeOptions(options, &o)
		},
		result: func(id string, options json.RawMessage) target.Result {
			var o struct {
				Name string `json:"name"`
				Tag  string `json:"tag"`
			}
			_ = json.Unmarshal(options, &o)
			return target.Result{URL: "127.0.0.1:5000/" + o.Name + ":" + o.Tag, Digest: fakeDigest(id)}
		}}
}

// newGCPTarget takes gce images and share_with_accounts.
func newGCPTarget() *recordingTarget {
	return &recordingTarget{name: "gcp", imageTypes: []string{"gce"},
		check: func(options json.RawMessage) error {
			var o struct {
				Share []string `json:"share_with_accounts"`
			}
			return target.DecodeOptions(options, &o)
		},
		result: func(id string, _ json.RawMessage) target.Result {
			return target.Result{ImageName: fakeGCEImage(id), ProjectID: "kiln-images"}
		}}
}

// StartServerWithTargets runs kiln serve's service in this process with
// the upload types given beside local and aws.s3 (the artifact store's
// link), two in-process workers that build fake images, and the host's
// Debian mirrors, as kiln serve would pick them. The test's end stops it.
func StartServerWithTargets(t *testing.T, extra ...target.Target) *Server {
	t.Helper()
	return startInProcess(t, &composetest.Builder{StageTime: FakeStageTime}, extra...)
}

// startInProcess runs kiln serve's service in this process with builder
// building its images on two in-process workers, the upload types given
// beside local and aws.s3, and the host's Debian mirrors.
func startInProcess(t *testing.T, builder worker.Builder, extra ...target.Target) *Server {
	t.Helper()
	testhost.CacheDir(t) // the shared cache exists
	cache, err := cacheDir(t.TempDir())
	require.NoError(t, err)
	reg, err := distro.Load()
	require.NoError(t, err)
	d, err := reg.Distro("debian-12")
	require.NoError(t, err)
	entries, err := aptsources.Read("/")
	require.NoError(t, err)
	m, err := aptsources.FindDebianMirrors(entries, []string{d.Codename})
	require.NoError(t, err, "the host's apt sources name a Debian mirror")
	mirrors := map[string]string{"debian": m.Main}
	if m.Security != "" {
		mirrors["debian-security"] = m.Security
	}
	resolver, err := apt.New(apt.Config{CacheDir: cache})
	require.NoError(t, err)

	s := &Server{Data: t.TempDir(), stderr: &lockedBuffer{}}
	targets := append([]target.Target{target.Local{}, target.StoreLink{}}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Config{
			Listen: "127.0.0.1:0", DataDir: s.Data, Workers: 2, Targets: target.New(targets...),
			RateLimit: api.RateLimit{PerSecond: -1}, CacheDir: cache, Mirrors: mirrors, Resolver: resolver, Distros: reg,
			Builder: builder,
			Log:     slog.New(slog.NewJSONHandler(s.stderr, nil)),
			Ready:   func(addr string) { ready <- "http://" + addr },
		})
	}()
	select {
	case s.URL = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the service stopped at start: %v\n%s", err, s.stderr.String())
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("the service did not start:\n%s", s.stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Errorf("the service did not stop")
		}
		if t.Failed() {
			t.Logf("the service's log:\n%s", s.Log(40))
		}
	})
	return s
}

// targetSection is the JavaScript expression of the Target step's section
// of image type.
func targetSection(imageType string) string {
	return `document.querySelector('fieldset.wizard-target[data-image-type=` + jsString(imageType) + `]')`
}

// offeredTargets are the titles of the targets the section of imageType
// offers, in order, and the one chosen.
func offeredTargets(b *Browser, imageType string) ([]string, string) {
	sec := targetSection(imageType)
	return Eval[[]string](b, `[...`+sec+`.querySelectorAll('.wizard-choice label')].map(l => l.textContent)`),
		Eval[string](b, `((i) => i ? i.labels[0].textContent : '')(`+sec+`.querySelector('.wizard-choice input:checked'))`)
}

// composeStatus is a compose's status as the API gives it.
type composeStatus struct {
	ImageStatus struct {
		Status       string `json:"status"`
		UploadStatus struct {
			Status  string         `json:"status"`
			Type    string         `json:"type"`
			Options map[string]any `json:"options"`
		} `json:"upload_status"`
	} `json:"image_status"`
	Request struct {
		ImageRequests []struct {
			ImageType     string         `json:"image_type"`
			UploadRequest map[string]any `json:"upload_request"`
		} `json:"image_requests"`
	} `json:"request"`
}

// waitBuilt waits until the compose id succeeded and returns its status.
func waitBuilt(t *testing.T, s *Server, token, id string) composeStatus {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		var st composeStatus
		require.Equal(t, http.StatusOK, s.API(t, token, "GET", "/composes/"+id, nil, &st))
		switch st.ImageStatus.Status {
		case "success":
			return st
		case "failure":
			t.Fatalf("compose %s failed\n%s", id, s.Log(60))
		}
		require.True(t, time.Now().Before(deadline), "compose %s did not finish in 4 minutes (status %s)", id, st.ImageStatus.Status)
		time.Sleep(time.Second) // polling the API for the build's end
	}
}

// TestWizardTargets: the Target step offers, for each image type chosen,
// the server's targets that take it, and the options of the one chosen;
// the wizard's hints explain an account ID it cannot take, the API's
// refusal of an option lands at its input, and the compose carries the
// options to the target.
func TestWizardTargets(t *testing.T) {
	aws, registry, gcp := newAWSTarget(), newRegistryTarget(), newGCPTarget()
	s := StartServerWithTargets(t, aws, registry, gcp)
	token := s.Token(t, "acme", "browser-targets")
	b := NewBrowser(t, s)
	b.SignIn(token)

	openWizard(t, b)
	b.Type("Name", "cloud-web")
	choose(b, "debian-12")
	choose(b, "x86_64")
	// Each image type says which of the server's targets take it.
	described := func(name string) string {
		return Eval[string](b, `((c) => document.getElementById(c.getAttribute('aria-describedby')).textContent)(document.querySelector('input[name="image_requests"][value=`+jsString(name)+`]'))`)
	}
	assert.Contains(t, described("ami"), "Targets: Amazon Web Services (AMI), Download link, Download from kiln")
	assert.Contains(t, described("tar"), "Targets: Download link, Download from kiln")
	assert.Contains(t, described("container"), "Targets: Download link, Container registry, Download from kiln")
	chooseImageType(b, "ami")
	chooseImageType(b, "tar")

	// Target: exactly the configured targets that take each type, the
	// download link chosen; the others are named with what they take.
	offered, chosen := offeredTargets(b, "ami")
	assert.Equal(t, []string{"Amazon Web Services (AMI)", "Download link", "Download from kiln"}, offered)
	assert.Equal(t, "Download link", chosen)
	offered, chosen = offeredTargets(b, "tar")
	assert.Equal(t, []string{"Download link", "Download from kiln"}, offered)
	assert.Equal(t, "Download link", chosen)
	assert.Equal(t, "Not for tar images: Amazon Web Services (AMI) (takes ami); Container registry (takes container); Google Cloud (takes gce).",
		Eval[string](b, targetSection("tar")+`.querySelector('.wizard-target-others').textContent`))
	assert.False(t, Eval[bool](b, wizControl("Region")+` !== null`), "the download link takes no options")

	b.Do(chromedp.Click(`//fieldset[@data-image-type="ami"]//label[normalize-space(.)="Amazon Web Services (AMI)"]`))
	WaitFor[bool](b, "the AWS options", 5*time.Second, wizControl("Region")+` !== null`)
	b.CheckLabels()
	// An account the API would refuse is explained before it is added.
	addChip(b, "Share with AWS accounts", "1234-5678-9012")
	msg := WaitFor[string](b, "the hint at the account", 5*time.Second, errorAt("Share with AWS accounts"))
	assert.Contains(t, msg, "12 digits only, e.g. 123456789012")
	addChip(b, "Share with AWS accounts", "123456789012")
	WaitFor[bool](b, "the account's chip", 5*time.Second, `JSON.stringify(`+chipsOf("Share with AWS accounts")+`) === '["123456789012"]'`)
	assert.Empty(t, Eval[string](b, errorAt("Share with AWS accounts")))
	b.Type("Region", "mars-north-1")
	b.ShotAs("wizard-target")
	b.Do(chromedp.Click(Button("Next")))
	for n := 2; n <= 3; n++ {
		onStep(t, b, n)
		b.Do(chromedp.Click(Button("Next")))
	}
	onStep(t, b, 4)
	summary := Eval[string](b, `[...document.querySelectorAll('.wizard-summary dt')].find(dt => dt.textContent === 'Target').nextElementSibling.firstChild.textContent`)
	assert.Equal(t, "ami: Amazon Web Services (AMI) (region mars-north-1; shared with 123456789012); tar: Download link", summary)

	// The API refuses the region: its error is at the Region input.
	b.Do(chromedp.Click(Button("Build image")))
	msg = WaitFor[string](b, "the API's region error", 30*time.Second, errorAt("Region"))
	assert.Contains(t, msg, `Unknown region "mars-north-1"`)
	onStep(t, b, 1)
	assert.Equal(t, []string{"Image output (has errors)"}, Eval[[]string](b, `[...document.querySelectorAll('.stepper li.has-error')].map(li => li.textContent)`))
	assert.Equal(t, []string{"123456789012"}, Eval[[]string](b, chipsOf("Share with AWS accounts")), "nothing typed is lost")
	b.Shot("region-refused")
	b.Type("Region", "eu-west-1")
	assert.Empty(t, Eval[string](b, errorAt("Region")), "the API's verdict is gone once the field is edited")
	clickStep(b, "Review")
	onStep(t, b, 4)
	b.Do(chromedp.Click(Button("Build image")))
	WaitFor[bool](b, "the Images page", 30*time.Second, `location.hash === '#/' && `+hasText("main h1", "Images"))

	// The ami compose asked for AWS with the options, and the target got them.
	var list struct {
		Data []struct {
			ID      string `json:"id"`
			Request struct {
				ImageRequests []struct {
					ImageType     string         `json:"image_type"`
					UploadRequest map[string]any `json:"upload_request"`
				} `json:"image_requests"`
			} `json:"request"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, s.API(t, token, "GET", "/composes?limit=100", nil, &list))
	var amiID string
	for _, c := range list.Data {
		ir := c.Request.ImageRequests[0]
		switch ir.ImageType {
		case "ami":
			require.Empty(t, amiID, "one ami compose: the refused one was never made")
			amiID = c.ID
			assert.Equal(t, map[string]any{"type": "aws", "options": map[string]any{"share_with_accounts": []any{"123456789012"}, "region": "eu-west-1"}}, ir.UploadRequest)
		case "tar":
			assert.Equal(t, map[string]any{"type": "aws.s3"}, ir.UploadRequest)
		default:
			t.Errorf("an unexpected compose of %s", ir.ImageType)
		}
	}
	require.NotEmpty(t, amiID)
	st := waitBuilt(t, s, token, amiID)
	assert.JSONEq(t, `{"share_with_accounts":["123456789012"],"region":"eu-west-1"}`, string(aws.Uploads()[amiID]))
	assert.Equal(t, map[string]any{"ami": fakeAMI(amiID), "region": "eu-west-1"}, st.ImageStatus.UploadStatus.Options)
	assert.Empty(t, registry.Uploads())
	assert.Empty(t, gcp.Uploads())
}

// TestImagesShowWhereImagesWent: the images list and the compose page say
// where each image went: an AMI and its region, a registry reference and
// its digest, a cloud image's name and project, or a download link and
// its expiry, each worth copying with a button.
func TestImagesShowWhereImagesWent(t *testing.T) {
	aws, registry, gcp := newAWSTarget(), newRegistryTarget(), newGCPTarget()
	s := StartServerWithTargets(t, aws, registry, gcp)
	token := s.Token(t, "acme", "browser-where")
	submit := func(name, imageType string, upload map[string]any) string {
		t.Helper()
		var res struct {
			ID string `json:"id"`
		}
		require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/compose", map[string]any{
			"distribution": "debian-12", "image_name": name,
			"image_requests": []map[string]any{{"architecture": "x86_64", "image_type": imageType, "upload_request": upload}},
		}, &res))
		return res.ID
	}
	ami := submit("web-ami", "ami", map[string]any{"type": "aws", "options": map[string]any{"share_with_accounts": []string{"123456789012"}, "region": "eu-west-1"}})
	ctr := submit("web-container", "container", map[string]any{"type": "container", "options": map[string]any{"name": "team/app", "tag": "1.0"}})
	gce := submit("web-gce", "gce", map[string]any{"type": "gcp", "options": map[string]any{"share_with_accounts": []string{"user:alice@example.com"}}})
	tar := submit("web-tar", "tar", map[string]any{"type": "aws.s3"})
	for _, id := range []string{ami, ctr, gce, tar} {
		waitBuilt(t, s, token, id)
	}

	b := NewBrowser(t, s)
	b.SignIn(token)
	row := func(id string) string { return `document.querySelector('tr[data-id="` + id + `"]')` }
	WaitFor[bool](b, "the four images, built", 30*time.Second, `[`+jsString(ami)+`, `+jsString(ctr)+`, `+jsString(gce)+`, `+jsString(tar)+`]
		.every(id => { const r = document.querySelector('tr[data-id="' + id + '"]'); return r && r.querySelector('.badge').textContent === 'Success'; })`)
	// fact is the value shown for label in a row's Target cell, and the
	// value its copy button copies ("" when it has none).
	fact := func(id, label string) [2]string {
		t.Helper()
		return Eval[[2]string](b, `((r) => { const v = r.querySelector('.cell-target [data-fact=`+jsString(label)+`]');
			const c = v && v.parentElement.querySelector('button.copy'); return [v ? v.textContent : '', c ? c.dataset.copy : '']; })(`+row(id)+`)`)
	}
	target := func(id string) string {
		return Eval[string](b, row(id)+`.querySelector('.cell-target .target-name').textContent`)
	}

	assert.Equal(t, "AWS", target(ami))
	assert.Equal(t, [2]string{fakeAMI(ami), fakeAMI(ami)}, fact(ami, "AMI"))
	assert.Equal(t, [2]string{"eu-west-1", ""}, fact(ami, "Region"))

	assert.Equal(t, "Registry", target(ctr))
	digest := fakeDigest(ctr)
	assert.Equal(t, [2]string{digest[:len("sha256:")+12] + "…", digest}, fact(ctr, "Digest"), "the digest, shortened, copies whole")
	assert.Equal(t, [2]string{"127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:1.0"}, fact(ctr, "Reference"))

	assert.Equal(t, "Google Cloud", target(gce))
	assert.Equal(t, [2]string{fakeGCEImage(gce), fakeGCEImage(gce)}, fact(gce, "Image name"))
	assert.Equal(t, [2]string{"kiln-images", ""}, fact(gce, "Project"))

	assert.Equal(t, "Download link", target(tar))
	link := Eval[string](b, row(tar)+`.querySelector('.cell-target a.delivery-url').href`)
	assert.Regexp(t, `^`+regexp.QuoteMeta(s.URL)+`/api/image-builder/v1/composes/`+tar+`/download\?.*signature=`, link, "the signed link")
	assert.Regexp(t, `^until \w+ \d+, 20\d\d`, Eval[string](b, row(tar)+`.querySelector('.cell-target .delivery-link .muted').textContent`), "with its expiry")
	assert.Equal(t, link, Eval[string](b, row(tar)+`.querySelector('.cell-target .delivery-link button.copy').dataset.copy`))

	// Only an image downloaded by a link has a Download button.
	hasDownload := func(id string) bool {
		return Eval[bool](b, `[...`+row(id)+`.querySelectorAll('button')].some(b => b.textContent.trim() === 'Download')`)
	}
	assert.True(t, hasDownload(tar))
	for _, id := range []string{ami, ctr, gce} {
		assert.False(t, hasDownload(id))
	}
	b.CheckLabels()
	noHorizontalScroll(t, b, "Images")
	b.ShotAs("images-targets")

	// A Copy button puts the whole value on the clipboard.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(b.Ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: s.URL})
		require.NoError(t, err)
	}
	b.Do(chromedp.Click(`//tr[@data-id="` + ctr + `"]//td[contains(@class,"cell-target")]//button[starts-with(@aria-label,"Copy the digest")]`))
	WaitFor[bool](b, "the button to say it copied", 5*time.Second, `document.querySelector('tr[data-id="`+ctr+`"] .cell-target button[aria-label^="Copy the digest"]').textContent === 'Copied'`)
	copied, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, digest, copied)

	// On a phone the rows become cards, the facts still readable.
	b.Resize(390)
	noHorizontalScroll(t, b, "Images")
	b.Shot("narrow")
	b.Resize(1280)

	// The compose page: the target asked for, then where the image is.
	b.Visit("#/composes/"+ami, hasText("main h1 .badge", "Success"))
	facts := Eval[[]string](b, `[...document.querySelectorAll('.facts dt')].map(dt => dt.textContent + ': ' + dt.nextElementSibling.textContent)`)
	assert.Contains(t, facts, "Target: Amazon Web Services (AMI)")
	assert.Contains(t, facts, "Region: eu-west-1")
	assert.Contains(t, facts, "Shared with: 123456789012")
	assert.Equal(t, "Delivered to Amazon Web Services (AMI)", Eval[string](b, `document.querySelector('.delivered-title').textContent`))
	assert.Equal(t, fakeAMI(ami), Eval[string](b, `document.querySelector('.delivered [data-fact="AMI"]').textContent`))
	assert.Equal(t, fakeAMI(ami), Eval[string](b, `document.querySelector('.delivered button.copy').dataset.copy`))
	assert.False(t, Eval[bool](b, `[...document.querySelectorAll('button')].some(b => b.textContent.trim() === 'Download image')`), "an AMI is launched, not downloaded")
	b.CheckLabels()
	b.Shot("compose-ami")
}

// The words and facts of targets, called in the page: the registering
// status shows as such, and each upload status reads as where the image
// went.
func TestTargetModules(t *testing.T) {
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.Visit("#/signin", `!!document.querySelector('main h1')`)
	Eval[bool](b, `(Promise.all([import('/ui.js'), import('/targets.js'), import('/pages/compose.js')])
		.then(([u, tg, c]) => { window.ui = u; window.tg = tg; window.composePage = c; }, (e) => { window.loadFailed = String(e); }), true)`)
	require.Equal(t, "loaded", WaitFor[string](b, "the modules", 15*time.Second, `window.loadFailed ? window.loadFailed : (window.ui && window.tg && window.composePage ? 'loaded' : '')`))

	badge := Eval[[]string](b, `((e) => [e.className, e.textContent])(window.ui.badge('registering'))`)
	assert.Equal(t, []string{"badge badge-registering", "Registering"}, badge)
	assert.False(t, Eval[bool](b, `window.ui.finished('registering')`), "an image being registered is still followed")
	steps := evalJSON[[]map[string]string](t, b, `window.composePage.timelineSteps({status: 'registering'})`)
	require.Len(t, steps, 5)
	assert.Equal(t, "current", steps[3]["state"], "registering is the upload's last part: %v", steps)

	facts := func(us string) []map[string]any {
		t.Helper()
		return evalJSON[[]map[string]any](t, b, `window.tg.deliveredFacts(`+us+`)`)
	}
	assert.Equal(t, []map[string]any{{"label": "AMI", "value": "ami-0123", "copy": true}, {"label": "Region", "value": "eu-west-1", "copy": false}},
		facts(`{status: 'success', type: 'aws', options: {ami: 'ami-0123', region: 'eu-west-1'}}`))
	assert.Equal(t, []map[string]any{{"label": "Image name", "value": "web", "copy": true}, {"label": "Project", "value": "p", "copy": false}},
		facts(`{status: 'success', type: 'gcp', options: {image_name: 'web', project_id: 'p'}}`))
	assert.Equal(t, []map[string]any{{"label": "Image name", "value": "web", "copy": true}},
		facts(`{status: 'success', type: 'azure', options: {image_name: 'web'}}`))
	assert.Equal(t, []map[string]any{{"label": "Reference", "value": "r/app:1", "copy": true}, {"label": "Digest", "value": "sha256:ab", "copy": true}},
		facts(`{status: 'success', type: 'container', options: {url: 'r/app:1', digest: 'sha256:ab'}}`))
	assert.Equal(t, []map[string]any{{"label": "Link", "url": "https://bucket.example/x", "expires_at": "2030-01-01T00:00:00Z"}},
		facts(`{status: 'success', type: 'oci.objectstorage', options: {url: 'https://bucket.example/x', expires_at: '2030-01-01T00:00:00Z'}}`))
	assert.Empty(t, facts(`{status: 'running', type: 'aws', options: {}}`), "nothing before the upload succeeded")
	assert.Equal(t, "sha256:0123456789ab…", Eval[string](b, `window.tg.shortDigest('sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef')`))
}

// newAzureTarget takes vhd images and image-builder's Azure options, the
// resource group required.
func newAzureTarget() *recordingTarget {
	return &recordingTarget{name: "azure", imageTypes: []string{"vhd"},
		check: func(options json.RawMessage) error {
			var o struct {
				TenantID         string `json:"tenant_id"`
				SubscriptionID   string `json:"subscription_id"`
				ResourceGroup    string `json:"resource_group"`
				ImageName        string `json:"image_name"`
				HyperVGeneration string `json:"hyper_v_generation"`
			}
			if err := target.DecodeOptions(options, &o); err != nil {
				return err
			}
			if o.ResourceGroup == "" {
				return fmt.Errorf("options.resource_group: required: name the resource group the image is made in")
			}
			if o.HyperVGeneration != "" && o.HyperVGeneration != "V1" && o.HyperVGeneration != "V2" {
				return fmt.Errorf("options.hyper_v_generation: must be V1 or V2")
			}
			return nil
		},
		result: func(id string, options json.RawMessage) target.Result {
			var o struct {
				ImageName string `json:"image_name"`
			}
			_ = json.Unmarshal(options, &o)
			return target.Result{ImageName: o.ImageName}
		}}
}

// TestWizardAzureOptions: an option only the API knows is missing (the
// resource group) is reported at its input; the options chosen, a select
// among them, are what the compose asks the target for.
func TestWizardAzureOptions(t *testing.T) {
	azure := newAzureTarget()
	s := StartServerWithTargets(t, azure)
	token := s.Token(t, "acme", "browser-azure")
	b := NewBrowser(t, s)
	b.SignIn(token)

	openWizard(t, b)
	b.Type("Name", "azure-web")
	choose(b, "debian-12")
	choose(b, "x86_64")
	chooseImageType(b, "vhd")
	offered, _ := offeredTargets(b, "vhd")
	assert.Equal(t, []string{"Download link", "Microsoft Azure", "Download from kiln"}, offered)
	b.Do(chromedp.Click(`//fieldset[@data-image-type="vhd"]//label[normalize-space(.)="Microsoft Azure"]`))
	WaitFor[bool](b, "the Azure options", 5*time.Second, wizControl("Resource group")+` !== null`)
	b.CheckLabels()
	b.Select("Hyper-V generation", "V2")
	b.Type("Image name", "web-vhd")
	for n := 1; n <= 3; n++ {
		onStep(t, b, n)
		b.Do(chromedp.Click(Button("Next")))
	}
	onStep(t, b, 4)
	b.Do(chromedp.Click(Button("Build image")))

	msg := WaitFor[string](b, "the API's resource group error", 30*time.Second, errorAt("Resource group"))
	assert.Contains(t, msg, "Required: name the resource group")
	onStep(t, b, 1)
	assert.Equal(t, "V2", Eval[string](b, valueOf("Hyper-V generation")), "nothing chosen is lost")
	b.Type("Resource group", "images")
	clickStep(b, "Review")
	onStep(t, b, 4)
	b.Do(chromedp.Click(Button("Build image")))
	id := WaitFor[string](b, "the compose page", 30*time.Second, `((m) => m ? m[1] : '')(/^#\/composes\/([0-9a-f-]+)$/.exec(location.hash))`)
	var st composeStatus
	require.Equal(t, http.StatusOK, s.API(t, token, "GET", "/composes/"+id, nil, &st))
	require.Len(t, st.Request.ImageRequests, 1)
	assert.Equal(t, map[string]any{"type": "azure", "options": map[string]any{"resource_group": "images", "image_name": "web-vhd", "hyper_v_generation": "V2"}},
		st.Request.ImageRequests[0].UploadRequest)
	facts := WaitFor[[]string](b, "the compose's target", 15*time.Second, `((f) => f.includes('Target: Microsoft Azure') ? f : null)([...document.querySelectorAll('.facts dt')].map(dt => dt.textContent + ': ' + dt.nextElementSibling.textContent))`)
	assert.Contains(t, facts, "Resource group: images")
	assert.Contains(t, facts, "Hyper-V generation: V2")
}

// TestRegisteringIsShown: while a cloud imports an image, the list and
// the compose page say it is registering (not uploading, not done), and
// the AMI appears once it is registered, without a reload.
func TestRegisteringIsShown(t *testing.T) {
	aws := newAWSTarget()
	aws.hold = make(chan struct{})
	s := StartServerWithTargets(t, aws)
	release := sync.OnceFunc(func() { close(aws.hold) })
	t.Cleanup(release)
	token := s.Token(t, "acme", "browser-registering")
	var res struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, s.API(t, token, "POST", "/compose", map[string]any{
		"distribution": "debian-12", "image_name": "slow-ami",
		"image_requests": []map[string]any{{"architecture": "x86_64", "image_type": "ami",
			"upload_request": map[string]any{"type": "aws", "options": map[string]any{"region": "eu-west-1"}}}},
	}, &res))
	id := res.ID

	b := NewBrowser(t, s)
	b.SignIn(token)
	row := `document.querySelector('tr[data-id="` + id + `"]')`
	WaitFor[bool](b, "the image registering in the list", 3*time.Minute, `((r) => r && r.querySelector('.badge').textContent === 'Registering')(`+row+`)`)
	assert.Equal(t, "badge badge-registering", Eval[string](b, row+`.querySelector('.badge').className`))
	assert.Equal(t, "AWS eu-west-1", Eval[string](b, row+`.querySelector('.cell-target').textContent.replace(/\s+/g, ' ').trim()`),
		"the target and the region asked for, no AMI yet")
	b.Shot("registering-list")

	b.Visit("#/composes/"+id, hasText("main h1 .badge", "Registering"))
	assert.Equal(t, "Registering in AWS", Eval[string](b, `document.querySelector('.timeline li[aria-current="step"] .tl-label').textContent`))
	assert.Contains(t, Eval[string](b, `document.querySelector('#dl-h').parentElement.textContent`), "Amazon Web Services (AMI) is importing the image")
	b.Shot("registering-compose")

	release()
	WaitFor[bool](b, "the AMI on the page", 30*time.Second, hasText("main h1 .badge", "Success")+` && !!document.querySelector('.delivered [data-fact="AMI"]')`)
	assert.Equal(t, fakeAMI(id), Eval[string](b, `document.querySelector('.delivered [data-fact="AMI"]').textContent`))
}
