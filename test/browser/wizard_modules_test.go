package browser

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// wizardModules opens a page of the UI and loads the wizard's pure
// modules into it, as window.wzChecks and window.wzState, for their
// functions to be called with Eval; no build is needed.
func wizardModules(t *testing.T) *Browser {
	t.Helper()
	e := SharedEnv(t)
	b := NewBrowser(t, e.Server)
	b.Visit("#/signin", `!!document.querySelector('main h1')`)
	Eval[bool](b, `(Promise.all([import('/pages/wizard/checks.js'), import('/pages/wizard/state.js')])
		.then(([c, s]) => { window.wzChecks = c; window.wzState = s; }, (e) => { window.wzFailed = String(e); }), true)`)
	failed := WaitFor[string](b, "the wizard's modules", 15*time.Second,
		`window.wzFailed ? window.wzFailed : (window.wzChecks && window.wzState ? 'loaded' : '')`)
	require.Equal(t, "loaded", failed)
	return b
}

// evalJSON evaluates a JavaScript expression, passes its value through
// JSON.stringify and decodes it into a T.
func evalJSON[T any](t *testing.T, b *Browser, expr string) T {
	t.Helper()
	var out T
	require.NoError(t, json.Unmarshal([]byte(Eval[string](b, `JSON.stringify(`+expr+`)`)), &out), expr)
	return out
}

// sshString is s in the SSH wire format: its length, then its bytes.
func sshString(s []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// The wizard's client-side checks, called in the page: keys, mount points
// and ports are judged as the blueprint validator judges them, with a
// message that says what to do.
func TestWizardChecks(t *testing.T) {
	b := wizardModules(t)
	check := func(fn, arg string) string {
		t.Helper()
		return Eval[string](b, `window.wzChecks.`+fn+`(`+jsString(arg)+`)`)
	}

	authorized := func(k ssh.PublicKey, comment string) string {
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ed, err := ssh.NewPublicKey(edPub)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ec, err := ssh.NewPublicKey(&ecKey.PublicKey)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rs, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	edLine := authorized(ed, "ops@example")
	edData := strings.Fields(edLine)[1]
	// An ed25519 key one byte short, well-formed otherwise.
	short := base64.StdEncoding.EncodeToString(append(sshString([]byte("ssh-ed25519")), sshString(edPub[:31])...))

	t.Run("ssh keys", func(t *testing.T) {
		for _, ok := range []string{
			edLine,
			authorized(ec, "ec@example"),
			authorized(rs, "rsa@example"),
			`from="10.0.0.0/8",no-pty ` + edLine,
			"# the ops team\n\n" + edLine + "\n" + authorized(rs, "rsa@example") + "\n",
			"",
		} {
			assert.Empty(t, check("checkSSHKeys", ok), ok)
		}
		for key, want := range map[string]string{
			"-----BEGIN OPENSSH PRIVATE KEY-----":                "This is a private key. Paste the public key (the .pub file) instead",
			"AAAAC3NzaC1lZDI1NTE5AAAA ops@example":               "Does not start with a key type.",
			"ssh-foo AAAA":                                       `"ssh-foo" is not a key type`,
			"ssh-ed25519":                                        `The key data is missing after "ssh-ed25519"`,
			"ssh-ed25519 " + edData[:10] + "!" + edData[11:]:     `contains "!" at character 11, which is not base64`,
			"ssh-ed25519 " + edData[:42]:                         "is not complete base64",
			"ssh-ed25519 AAAA":                                   "is too short to be a key",
			"ssh-rsa " + edData:                                  `line says "ssh-rsa" but its key data is an "ssh-ed25519" key`,
			"ssh-ed25519 " + short:                               "The ssh-ed25519 key data is damaged or cut off",
			edLine + "\nssh-ed25519 " + edData[:42]:              "Line 2: the key data after \"ssh-ed25519\" is not complete base64",
			"# a comment\n\nssh-rsa " + edData + " x\n" + edLine: "Line 3: the line says \"ssh-rsa\"",
		} {
			assert.Contains(t, check("checkSSHKeys", key), want, key)
		}
	})

	t.Run("mount points", func(t *testing.T) {
		for _, ok := range []string{"", "/", "/var", "/srv/data.d", "/var/..x"} {
			assert.Empty(t, check("checkMountpoint", ok), ok)
		}
		assert.Equal(t, `"var" is not an absolute path; start it with /, e.g. /var.`, check("checkMountpoint", "var"))
		assert.Equal(t, `"/var/../etc" contains ".."; write the path without it.`, check("checkMountpoint", "/var/../etc"))
		// As typed: the field's check trims, and leaves an empty key alone.
		assert.Empty(t, Eval[string](b, `window.wzChecks.fieldChecks.mountpoint('  /var ')`))
		assert.Contains(t, Eval[string](b, `window.wzChecks.fieldChecks.mountpoint(' var')`), "not an absolute path")
		assert.Empty(t, Eval[string](b, `window.wzChecks.fieldChecks.ssh('  \n ')`))
	})

	t.Run("firewall ports", func(t *testing.T) {
		for _, ok := range []string{"8080:tcp", "1:udp", "65535:tcp", "60000-61000:udp", "22-22:tcp", "https:tcp", "dns-over-tls:udp", "5000:sctp", "6000-6001:dccp", "amqp:sctp"} {
			assert.Empty(t, check("checkFirewallPort", ok), ok)
		}
		for port, want := range map[string]string{
			"8080":        `"8080" is not a port; write PORT:PROTOCOL`,
			"8080:icmp":   `"8080:icmp" is not a port`,
			"HTTPS:tcp":   `"HTTPS:tcp" is not a port`,
			"123456:tcp":  `"123456:tcp" is not a port`,
			"0:tcp":       `"0:tcp" has a port outside 1-65535.`,
			"70000:udp":   `"70000:udp" has a port outside 1-65535.`,
			"100-70000:u": `"100-70000:u" is not a port`,
			"200-100:tcp": `"200-100:tcp" has a range that ends before it starts.`,
		} {
			assert.Contains(t, check("checkFirewallPort", port), want, port)
		}
	})

	t.Run("the API's errors", func(t *testing.T) {
		type fieldError struct{ Field, Detail string }
		apiErrors := func(err string) []fieldError {
			t.Helper()
			return evalJSON[[]fieldError](t, b, `window.wzChecks.apiErrors(`+err+`)`)
		}
		assert.Equal(t, []fieldError{{"customizations.hostname", "Not a valid host name: use dot-separated labels of letters, digits and hyphens (up to 63 each), not starting or ending with a hyphen, e.g. web01.example.com."}},
			apiErrors(`{errors: [{field: 'customizations.hostname', detail: "string doesn't match the regular expression \"^[a-z]+$\""}]}`),
			"a schema pattern, said in words")
		assert.Equal(t, []fieldError{{"customizations.files[0].mode", "Not a mode: give octal permissions such as 0644 or 0755."}},
			apiErrors(`{errors: [{field: 'customizations.files[0].mode', detail: "string doesn't match the regular expression \"^0[0-7]{3}$\""}]}`))
		assert.Equal(t, []fieldError{{"customizations.kernel.append", "String doesn't match the regular expression \"x\""}},
			apiErrors(`{errors: [{field: 'customizations.kernel.append', detail: "string doesn't match the regular expression \"x\""}]}`),
			"a field with no words of its own keeps the API's")
		assert.Equal(t, []fieldError{{"customizations.users[0].name", "Is taken"}, {"name", "Too long"}, {"description", "Bad"}},
			apiErrors(`{errors: [{detail: 'customizations.users[0].name: is taken'}, {field: 'image_name', detail: 'image_name: too long'}, {field: 'image_description', title: 'bad'}]}`),
			"the path from the detail, and the compose request's names as the blueprint's")
		assert.Equal(t, []fieldError{{"", "The server cannot be reached"}}, apiErrors(`{message: 'the server cannot be reached', errors: []}`))
	})
}

// The wizard's model, called in the page: a stored blueprint read into
// the state and written back out is the same blueprint, and each request
// carries what the API expects.
func TestWizardState(t *testing.T) {
	b := wizardModules(t)

	stored := map[string]any{
		"id": "6c9e0a52", "version": 3, "name": "web", "description": "A web server",
		"distribution": "debian-12",
		"image_requests": []any{
			map[string]any{"architecture": "aarch64", "image_type": "qcow2", "upload_request": map[string]any{"type": "local"}},
			map[string]any{"architecture": "aarch64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}},
		},
		"customizations": map[string]any{
			"packages": []any{"nginx", "jq"},
			"users": []any{
				map[string]any{"name": "ops", "ssh_key": "ssh-ed25519 AAAA ops", "groups": []any{"sudo", "adm"}, "hasPassword": true},
				map[string]any{"name": "web"},
			},
			"groups":   []any{map[string]any{"name": "www", "gid": float64(2000)}},
			"hostname": "web01",
			"timezone": map[string]any{"timezone": "Europe/Berlin", "ntpservers": []any{"ntp.example.com"}},
			"locale":   map[string]any{"languages": []any{"en_US.UTF-8", "de_DE.UTF-8"}, "keyboard": "de"},
			"kernel":   map[string]any{"name": "linux-image-cloud-arm64", "append": "console=ttyS0"},
			"services": map[string]any{"enabled": []any{"nginx.service"}, "masked": []any{"cups.service"}},
			"firewall": map[string]any{"ports": []any{"443:tcp"}, "services": map[string]any{"enabled": []any{"ssh"}, "disabled": []any{"dhcpv6-client"}}},
			"filesystem": []any{
				map[string]any{"mountpoint": "/var", "min_size": float64(2 << 30)},
				map[string]any{"mountpoint": "/srv", "min_size": "512 MiB"},
				map[string]any{"mountpoint": "/data", "min_size": "3072 KiB"},
			},
			"files":               []any{map[string]any{"path": "/etc/motd", "mode": "0644", "user": float64(0), "group": "adm", "data": "hello\n"}},
			"directories":         []any{map[string]any{"path": "/srv/app", "user": "web", "ensure_parents": true}},
			"custom_repositories": []any{map[string]any{"id": "extra", "baseurls": []any{"https://repo.example.com/debian"}}},
		},
	}
	in, err := json.Marshal(stored)
	require.NoError(t, err)
	state := `window.wzState.stateFromBlueprint(` + string(in) + `)`

	// What the wizard shows of it.
	var shown struct {
		Name         string
		ImageTypes   []string
		Architecture string
		Users        []struct {
			Name, Groups, Password string
			HadPassword            bool
		}
		Filesystems []struct{ Mountpoint, Size, Unit string }
	}
	require.NoError(t, json.Unmarshal([]byte(Eval[string](b, `JSON.stringify(`+state+`)`)), &shown))
	assert.Equal(t, "web", shown.Name)
	assert.Equal(t, "aarch64", shown.Architecture)
	assert.Equal(t, []string{"qcow2", "tar"}, shown.ImageTypes)
	require.Len(t, shown.Users, 2)
	assert.Equal(t, "sudo, adm", shown.Users[0].Groups)
	assert.True(t, shown.Users[0].HadPassword, "the user had a password")
	assert.Empty(t, shown.Users[0].Password, "which is not shown")
	assert.Equal(t, []struct{ Mountpoint, Size, Unit string }{{"/var", "2", "GiB"}, {"/srv", "512", "MiB"}, {"/data", "3", "MiB"}}, shown.Filesystems)

	// Saved again: the same blueprint, but for the password the server
	// does not return, sizes as the wizard writes them, and the
	// customizations it has no controls for kept.
	want := map[string]any{}
	require.NoError(t, json.Unmarshal(in, &want))
	delete(want, "id")
	delete(want, "version")
	c := want["customizations"].(map[string]any)
	delete(c["users"].([]any)[0].(map[string]any), "hasPassword")
	c["filesystem"] = []any{
		map[string]any{"mountpoint": "/var", "min_size": "2 GiB"},
		map[string]any{"mountpoint": "/srv", "min_size": "512 MiB"},
		map[string]any{"mountpoint": "/data", "min_size": "3 MiB"},
	}
	assert.Equal(t, want, evalJSON[map[string]any](t, b, `window.wzState.blueprintRequest(`+state+`)`))

	// A compose builds one image type, under the image's name.
	compose := evalJSON[map[string]any](t, b, `window.wzState.composeRequest(`+state+`, 'tar')`)
	assert.Equal(t, "web", compose["image_name"])
	assert.Equal(t, "A web server", compose["image_description"])
	assert.Equal(t, "ui", compose["client_id"])
	assert.Equal(t, "debian-12", compose["distribution"])
	assert.Equal(t, []any{map[string]any{"architecture": "aarch64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}}}, compose["image_requests"])
	assert.Equal(t, want["customizations"], compose["customizations"])
	assert.NotContains(t, compose, "name")

	// A new wizard asks for nothing the user did not enter; what is typed
	// is trimmed, ids are numbers, and an incomplete row is still sent so
	// that the API's field paths point at it.
	fresh := evalJSON[map[string]any](t, b, `((s) => {
		Object.assign(s, { name: ' web ', distribution: 'debian-12', architecture: 'x86_64', imageTypes: ['tar'], hostname: '  ' });
		s.files.push({ path: ' /etc/motd ', mode: '', user: '1000', group: ' adm ', data: 'x' });
		s.users.push({ name: 'ops ', ssh_key: ' ', groups: ' sudo,, adm ', password: 'pw' }, { name: '', ssh_key: '', groups: '', password: '' });
		s.filesystems.push({ mountpoint: '/var', size: '', unit: 'GiB' });
		return window.wzState.blueprintRequest(s);
	})(window.wzState.newState())`)
	assert.Equal(t, map[string]any{
		"name": "web", "distribution": "debian-12",
		"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "aws.s3"}}},
		"customizations": map[string]any{
			"users":      []any{map[string]any{"name": "ops", "groups": []any{"sudo", "adm"}, "password": "pw"}, map[string]any{"name": ""}},
			"filesystem": []any{map[string]any{"mountpoint": "/var"}},
			"files":      []any{map[string]any{"path": "/etc/motd", "user": float64(1000), "group": "adm", "data": "x"}},
		},
	}, fresh)
	assert.Equal(t, map[string]any{"name": "", "distribution": "", "image_requests": []any{}},
		evalJSON[map[string]any](t, b, `window.wzState.blueprintRequest(window.wzState.newState())`))

	// Which step shows the field an error of the API names: 0 Image
	// output, 1 Content, 2 System, 3 Review.
	for path, step := range map[string]int{
		"name":                                  0,
		"image_name":                            0,
		"description":                           0,
		"image_description":                     0,
		"distribution":                          0,
		"image_requests[0].architecture":        0,
		"image_requests":                        0,
		"image_requests[1].image_type":          0,
		"image_requests[0].upload_request.type": 0,
		"image_requests[1].upload_request.options.share_with_accounts[0]": 0,
		"customizations.packages[1]":                                      1,
		"customizations.custom_repositories[0]":                           1,
		"customizations.payload_repositories[0].baseurl":                  1,
		"customizations.users[0].ssh_key":                                 2,
		"customizations.groups[0].name":                                   2,
		"customizations.hostname":                                         2,
		"customizations.timezone.timezone":                                2,
		"customizations.locale.languages[0]":                              2,
		"customizations.kernel.append":                                    2,
		"customizations.services.enabled[0]":                              2,
		"customizations.firewall.ports[0]":                                2,
		"customizations.filesystem[0].min_size":                           2,
		"customizations.files[0].data":                                    2,
		"customizations.directories[0].path":                              2,
		"customizations.firstboot":                                        2,
		"":                                                                3,
		"customizations.hostnames":                                        3,
		"customizations.packagesx":                                        3,
		"names":                                                           3,
	} {
		assert.Equal(t, step, Eval[int](b, `window.wzState.stepOf(`+jsString(path)+`)`), path)
	}
	assert.Equal(t, 3, Eval[int](b, `window.wzState.REVIEW`))
	assert.Equal(t, []string{"output:Image output", "content:Content", "system:System", "review:Review"},
		Eval[[]string](b, `window.wzState.STEPS.map(s => s.id + ':' + s.title)`))

	// What the first step needs before the wizard moves on: every missing
	// thing at once, the name first; the other steps need nothing.
	missing := func(step, state string) []string {
		return Eval[[]string](b, `window.wzState.missingChoices(`+jsString(step)+`, Object.assign(window.wzState.newState(), `+state+`))`)
	}
	assert.Equal(t, []string{"Enter a name.", "Choose a distribution."}, missing("output", `{}`))
	assert.Equal(t, []string{"Enter a name."}, missing("output", `{name: '  ', distribution: 'debian-12', architecture: 'x86_64', imageTypes: ['tar']}`))
	assert.Equal(t, []string{"Choose an architecture."}, missing("output", `{name: 'web', distribution: 'debian-12'}`))
	assert.Equal(t, []string{"Choose at least one image type."}, missing("output", `{name: 'web', distribution: 'debian-12', architecture: 'x86_64'}`))
	assert.Empty(t, missing("output", `{name: 'web', distribution: 'debian-12', architecture: 'x86_64', imageTypes: ['tar']}`))
	assert.Empty(t, missing("system", `{}`))
}

// Each image type's target in the wizard's model: a stored blueprint's
// targets and their options come back as they were, options the wizard
// has no controls for included; what is typed is trimmed, empty options
// are left out, and only the chosen target's options are sent.
func TestWizardTargetState(t *testing.T) {
	b := wizardModules(t)
	stored := map[string]any{
		"name": "cloud", "distribution": "debian-12",
		"image_requests": []any{
			map[string]any{"architecture": "x86_64", "image_type": "ami", "upload_request": map[string]any{"type": "aws",
				"options": map[string]any{"share_with_accounts": []any{"123456789012"}, "region": "eu-west-1", "share_with_sources": []any{"src"}}}},
			map[string]any{"architecture": "x86_64", "image_type": "vhd", "upload_request": map[string]any{"type": "azure",
				"options": map[string]any{"resource_group": "images", "hyper_v_generation": "V2"}}},
			map[string]any{"architecture": "x86_64", "image_type": "tar", "upload_request": map[string]any{"type": "local"}},
		},
	}
	in, err := json.Marshal(stored)
	require.NoError(t, err)
	assert.Equal(t, stored, evalJSON[map[string]any](t, b, `window.wzState.blueprintRequest(window.wzState.stateFromBlueprint(`+string(in)+`))`))

	reqs := evalJSON[[]map[string]any](t, b, `((s) => {
		Object.assign(s, { name: 'x', distribution: 'debian-12', architecture: 'x86_64', imageTypes: ['ami', 'container', 'gce', 'tar'] });
		const ami = window.wzState.uploadOf(s, 'ami');
		ami.type = 'aws';
		ami.options.aws.region = ' eu-west-1 ';
		const ctr = window.wzState.uploadOf(s, 'container');
		ctr.options.container.name = 'team/app';
		ctr.options.gcp.share_with_accounts.push('user:a@example.com'); // typed, then the target changed
		ctr.type = 'container';
		const gce = window.wzState.uploadOf(s, 'gce');
		gce.type = 'gcp';
		return s.imageTypes.map((t) => window.wzState.composeRequest(s, t).image_requests[0].upload_request);
	})(window.wzState.newState())`)
	assert.Equal(t, []map[string]any{
		{"type": "aws", "options": map[string]any{"region": "eu-west-1"}},
		{"type": "container", "options": map[string]any{"name": "team/app"}},
		{"type": "gcp"},
		{"type": "aws.s3"},
	}, reqs)
}

// The hints of the Target step's share lists: AWS takes 12-digit account
// IDs, Google Cloud members written with their kind.
func TestTargetChecks(t *testing.T) {
	b := wizardModules(t)
	check := func(fn, arg string) string {
		t.Helper()
		return Eval[string](b, `window.wzChecks.`+fn+`(`+jsString(arg)+`)`)
	}
	assert.Empty(t, check("checkAWSAccount", "123456789012"))
	assert.Contains(t, check("checkAWSAccount", "1234-5678-9012"), "write the account ID as its 12 digits only, e.g. 123456789012")
	for _, bad := range []string{"12345678901", "1234567890123", "alice", "arn:aws:iam::123456789012:root"} {
		assert.Contains(t, check("checkAWSAccount", bad), "is not an AWS account ID", bad)
	}
	for _, ok := range []string{"user:alice@example.com", "serviceAccount:build@project.iam.gserviceaccount.com", "group:ops@example.com", "domain:example.com"} {
		assert.Empty(t, check("checkGCPMember", ok), ok)
	}
	for bad, want := range map[string]string{
		"alice@example.com":       "does not say what kind of member",
		"owner:alice@example.com": `"owner:" is not a kind of member`,
		"user:alice":              "is not an e-mail address",
		"domain:example":          "is not a domain name",
		"serviceaccount:a@b.io":   `"serviceaccount:" is not a kind of member`,
	} {
		assert.Contains(t, check("checkGCPMember", bad), want, bad)
	}
}
