// Package hostile is kiln's catalogue of hostile blueprints: one case per
// route by which a tenant's blueprint could reach the build host, which
// builds it as root. Each route is either refused when the blueprint is
// checked, with the field path of the offending value, or built and its
// payload proven confined.
//
// The refusals are checked without a build, through the same entry a
// compose goes through (blueprint.Parse, compose.ImageType,
// compose.Manifest), with a resolver that fails the test if planning ever
// gets as far as solving packages.
//
// The confined payloads all ride in one real build, a debian-12 tar image:
//
//   - a package from the blueprint's own signed repository, served on the
//     loopback interface, whose postinst probes its sandbox (capabilities,
//     uid map, no_new_privs, seccomp, mount, sysrq, ptrace, network, the
//     double-chroot escape) and writes what it could do into a report in
//     the image;
//   - files planted where a stage would find them if it ran its tools by
//     bare name (/usr/local/sbin/systemctl, nft, useradd …), next to
//     customizations that make the build run those tools;
//   - files at paths whose last component is a symbolic link in Debian
//     (/etc/alternatives/awk, /etc/os-release), which must replace the link
//     and leave its target alone.
//
// Canaries tell whether anything got out: the test makes a host directory
// that anybody may write, with a secret file and a marker directory in it,
// and hands their paths to the payloads. A payload that could reach the
// host would create the canary file there, or report the secret or the
// marker's listing; the test requires that none of that happened, on the
// host and in the report.
package hostile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/blueprint"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/depsolve"
	"github.com/kiln-project/kiln/internal/distro"
)

// unsolvable is a resolver for plans that must never be solved: a refused
// blueprint stops before its packages are.
type unsolvable struct{ t *testing.T }

func (u unsolvable) Resolve(context.Context, depsolve.Request) (*depsolve.Result, error) {
	u.t.Error("the blueprint was planned up to solving its packages instead of being refused")
	return nil, errors.New("no packages are solved in a refusal test")
}

// refusal checks a blueprint the way a compose does, stopping before any
// package is solved, and returns the problems found.
func refusal(t *testing.T, bp map[string]any) blueprint.Errors {
	t.Helper()
	doc, err := json.Marshal(bp)
	require.NoError(t, err)
	var problems blueprint.Errors
	parsed, err := blueprint.Parse(doc, blueprint.FormatJSON)
	if err == nil {
		var reg *distro.Registry
		reg, err = distro.Load()
		require.NoError(t, err)
		var it *distro.ImageType
		it, err = compose.ImageType(reg, parsed, compose.Request{Distro: "debian-12", Arch: "x86_64", ImageType: "tar"}, compose.Defaults{})
		require.NoError(t, err)
		_, err = compose.Manifest(context.Background(), it, parsed, distro.Options{Mirrors: map[string]string{"debian": "http://127.0.0.1:9/debian"}}, unsolvable{t})
	}
	require.Error(t, err, "the blueprint was accepted")
	require.ErrorAs(t, err, &problems, "the refusal is a list of problems with field paths: %v", err)
	return problems
}

// withBenign puts a harmless entry before the hostile one, so the hostile
// one's field path has the index 1.
func withBenign(section string, hostile map[string]any) map[string]any {
	benign := map[string]any{"path": "/etc/kiln-hostile-benign"}
	if section == "files" {
		benign["data"] = "benign\n"
	}
	return map[string]any{
		"name":           "hostile",
		"customizations": map[string]any{section: []any{benign, hostile}},
	}
}

func dir(path string) map[string]any { return map[string]any{"path": path} }

func file(path, mode string) map[string]any {
	f := map[string]any{"path": path, "data": "x\n"}
	if mode != "" {
		f["mode"] = mode
	}
	return f
}

// TestRefusals: blueprints that aim at the host's paths or privileges
// through the tree's symbolic links or special modes are refused before
// anything is built, each with the field path of the value and a message
// saying why.
func TestRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		bp      map[string]any
		path    string
		message string // what the message must say
	}{
		{"directory below /bin", withBenign("directories", dir("/bin/x")), "customizations.directories[1].path", "is under /bin"},
		{"directory below /lib", withBenign("directories", dir("/lib/x")), "customizations.directories[1].path", "is under /lib"},
		{"directory below /sbin", withBenign("directories", dir("/sbin/x")), "customizations.directories[1].path", "is under /sbin"},
		{"directory at /var/run", withBenign("directories", dir("/var/run")), "customizations.directories[1].path", `"/var/run" is a link to /run`},
		{"directory below /var/run", withBenign("directories", dir("/var/run/x")), "customizations.directories[1].path", "is under /var/run"},
		{"directory at /var/lock", withBenign("directories", dir("/var/lock")), "customizations.directories[1].path", `"/var/lock" is a link to /run/lock`},
		{"directory below /var/lock", withBenign("directories", dir("/var/lock/x")), "customizations.directories[1].path", "is under /var/lock"},
		{"file below /bin", withBenign("files", file("/bin/x", "")), "customizations.files[1].path", "is under /bin"},
		{"setuid file", withBenign("files", file("/usr/local/bin/x", "4755")), "customizations.files[1].mode", "setuid"},
		{"setgid file", withBenign("files", file("/usr/local/bin/x", "2755")), "customizations.files[1].mode", "setgid"},
		{"sticky file", withBenign("files", file("/usr/local/bin/x", "1777")), "customizations.files[1].mode", "sticky"},
		{"setuid directory", withBenign("directories", map[string]any{"path": "/srv/x", "mode": "4755"}), "customizations.directories[1].mode", "setuid"},
		{"file path with ..", withBenign("files", file("/etc/../usr/bin/mawk", "")), "customizations.files[1].path", `write "/usr/bin/mawk"`},
		{"directory path with ..", withBenign("directories", dir("/srv/../var/run")), "customizations.directories[1].path", `write "/var/run"`},
		{"relative file path", withBenign("files", file("etc/motd", "")), "customizations.files[1].path", "not an absolute path"},
		{"relative directory path", withBenign("directories", dir("srv/x")), "customizations.directories[1].path", "not an absolute path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			problems := refusal(t, tc.bp)
			var found []string
			for _, p := range problems {
				if p.Path == tc.path {
					found = append(found, p.Message)
				}
			}
			require.NotEmpty(t, found, "no problem at %s; got:\n%v", tc.path, problems)
			assert.Contains(t, fmt.Sprint(found), tc.message, "the problem at %s says why", tc.path)
		})
	}
}
