package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
	"github.com/kiln-project/kiln/internal/testhost"
)

// run runs the CLI in-process and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	if err != nil {
		printError(&stderr, err)
	}
	return stdout.String(), stderr.String(), err
}

func TestListImages(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, "list-images")
	require.NoError(t, err)
	assert.Contains(t, out, "debian-12")
	assert.Contains(t, out, "debian-13")
	assert.Regexp(t, `debian-12\s+x86_64\s+qcow2\s+guest-image\s+\*\.qcow2\s+yes`, out)
	// This host runs aarch64 programs through qemu-user (scripts/setup
	// registers it), and says so.
	assert.Regexp(t, `debian-12\s+aarch64\s+qcow2\s+guest-image\s+\*\.qcow2\s+yes \(emulated\)`, out)
	assert.NotRegexp(t, `aarch64\s+(vmdk|ova|live-iso|image-installer)\s`, out, "aarch64 lists only what builds and boots")

	out, _, err = run(t, "list-images", "--filter", "distro:debian-12", "--filter", "type:qcow2", "--format", "json")
	require.NoError(t, err)
	var rows []imageRow
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 2, "x86_64 and aarch64")
	for _, r := range rows {
		assert.Equal(t, "debian-12", r.Distro)
		assert.Equal(t, "qcow2", r.Type)
	}

	out, _, err = run(t, "list-images", "--filter", "type:guest-image", "--filter", "arch:amd64", "--format", "json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	assert.Len(t, rows, 2, "aliases and Debian arch names filter too: one per distro")

	out, _, err = run(t, "list-images", "--filter", "type:nope", "--format", "json")
	require.NoError(t, err)
	assert.Equal(t, "[]\n", out)
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"list-images", "--filter", "colour:red"}, `--filter "colour:red": expected distro:NAME, arch:NAME or type:NAME`},
		{[]string{"list-images", "--format", "yaml"}, `--format "yaml": expected text or json`},
		{[]string{"describe", "qcow3"}, `unknown image type "qcow3" for debian-12 x86_64 (did you mean "qcow2"?)`},
		{[]string{"describe", "qcow2", "--distro", "debian-99"}, `unknown distribution "debian-99"`},
		{[]string{"manifest", "--type", "qcow2", "--seed", "-1"}, `--seed "-1": expected a non-negative integer`},
		{[]string{"manifest", "--type", "qcow2", "--mirror", "ftp://x/debian"}, `expected an http(s) or file URL`},
		{[]string{"manifest"}, `required flag(s) "type" not set`},
		{[]string{"manifest", "--type", "qcow2", "--format", "xml"}, `--format "xml": expected json or text`},
		{[]string{"manifest", "--type", "vmdk", "--arch", "aarch64", "--mirror", "http://mirror.example/debian"}, `image type "vmdk" is not built for aarch64 on debian-12, only for x86_64`},
		{[]string{"manifest", "--type", "qcow2", "--arch", "riscv64", "--mirror", "http://mirror.example/debian"}, `unknown architecture "riscv64" for debian-12`},
		{[]string{"manifest", "--type", "qcow2", "--blueprint", "/nonexistent/bp.toml"}, "/nonexistent/bp.toml"},
		{[]string{"--config", "/nonexistent/kiln.toml", "list-images"}, "/nonexistent/kiln.toml"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr, err := run(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, stderr, tc.want)
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, "describe", "qcow2", "--distro", "debian-12")
	require.NoError(t, err)
	for _, want := range []string{"Image type:", "guest-image", "Partition table (gpt):", "bios-boot", "/boot/efi", "rest of the disk, at least 2 GiB", "linux-image-amd64", "Network drivers:", "virtio_net, e1000, e1000e", "customizations.filesystem", "console=ttyS0,115200n8"} {
		assert.Contains(t, out, want)
	}
	out, _, err = run(t, "describe", "tar", "--distro", "debian-13", "--format", "json")
	require.NoError(t, err)
	var d imageTypeDesc
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	assert.Equal(t, "debian-13", d.Distro)
	assert.Empty(t, d.Partitions)
	assert.NotContains(t, d.SupportedOptions, "customizations.filesystem")
	assert.Equal(t, "<name>-debian-13-x86_64.tar.xz", d.Filename)
}

func TestBlueprintValidate(t *testing.T) {
	t.Parallel()
	out, _, err := runFake(t, "blueprint", "validate", "../../examples/web.toml", "--type", "qcow2")
	require.NoError(t, err)
	assert.Contains(t, out, `blueprint "web" is valid`)

	bad := filepath.Join(t.TempDir(), "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("name = \"x\"\n[customizations]\nhostname = \"bad_host;rm -rf /\"\n[[customizations.user]]\nname = \"ops\"\nkey = \"not a key\"\n"), 0o644))
	_, stderr, err := run(t, "blueprint", "validate", bad)
	require.Error(t, err)
	assert.Contains(t, stderr, "kiln: blueprint "+bad+" has 2 problem(s):")
	assert.Contains(t, stderr, "customizations.hostname:")
	assert.Contains(t, stderr, "customizations.user[0].key:")

	_, stderr, err = runFake(t, "blueprint", "validate", "../../examples/web.toml", "--type", "tar")
	require.Error(t, err)
	assert.Contains(t, stderr, "customizations.filesystem: not supported by image type tar")
}

// TestBlueprintValidatePaths: with a distribution, validate reports the
// paths that pass through or replace a link of its tree, and warns of a
// file that replaces a link to a file.
func TestBlueprintValidatePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Join([]string{
		`name = "paths"`,
		`[[customizations.user]]`, `name = "ops"`, `home = "/var/run/ops"`,
		`[[customizations.directories]]`, `path = "/etc/localtime"`,
		`[[customizations.directories]]`, `path = "/srv/data"`,
		`[[customizations.files]]`, `path = "/var/spool/mail/ops"`, `data = ""`,
		`[[customizations.files]]`, `path = "/etc/motd"`, `data = "hi"`,
	}, "\n")), 0o644))
	for _, args := range [][]string{{"--distro", "debian-12"}, {"--distro", "debian-12", "--type", "qcow2"}, {"--distro", "debian-12", "--arch", "aarch64"}} {
		_, stderr, err := runFake(t, append([]string{"blueprint", "validate", bad}, args...)...)
		require.Error(t, err, args)
		assert.Contains(t, stderr, "kiln: blueprint "+bad+" has 3 problem(s):\n"+
			"  customizations.directories[0].path: /etc/localtime is a link to the file /usr/share/zoneinfo/Etc/UTC in debian-12; a directory there would replace it: choose another path\n"+
			"  customizations.files[0].path: /var/spool/mail/ops: /var/spool/mail is a link to /var/mail in debian-12; use /var/mail/ops\n"+
			"  customizations.user[0].home: /var/run/ops: /var/run is a link to /run in debian-12; use /run/ops\n", args)
	}

	replaces := filepath.Join(dir, "replaces.toml")
	require.NoError(t, os.WriteFile(replaces, []byte("name = \"release\"\n[[customizations.files]]\npath = \"/etc/os-release\"\ndata = \"ID=x\"\n"), 0o644))
	out, stderr, err := runFake(t, "blueprint", "validate", replaces, "--distro", "debian-13")
	require.NoError(t, err, stderr)
	assert.Contains(t, out, `blueprint "release" is valid`)
	assert.Equal(t, "kiln: warning: customizations.files[0].path: /etc/os-release is a link to /usr/lib/os-release in debian-13; the file replaces the link, and /usr/lib/os-release is left as it is\n", stderr)

	setuid := filepath.Join(dir, "setuid.toml")
	require.NoError(t, os.WriteFile(setuid, []byte("name = \"tool\"\n[[customizations.files]]\npath = \"/usr/local/bin/tool\"\nmode = \"4755\"\ndata = \"x\"\n"), 0o644))
	_, stderr, err = run(t, "blueprint", "validate", setuid)
	require.Error(t, err)
	assert.Contains(t, stderr, `customizations.files[0].mode: "4755" sets the setuid bit; kiln refuses setuid, setgid and sticky modes in blueprints because anyone who can submit a blueprint could plant a privileged binary; use "0755"`)
}

// TestManifestFromTheMirror runs the main job end to end: the example
// blueprint's packages solved by apt against the host's Debian mirror.
func TestManifestFromTheMirror(t *testing.T) {
	cache := testhost.CacheDir(t)
	out, stderr, err := run(t, "--cache-dir", cache, "manifest", "--blueprint", "../../examples/web.toml", "--distro", "debian-12", "--type", "qcow2")
	require.NoError(t, err, stderr)
	m, err := manifest.Parse([]byte(out))
	require.NoError(t, err)
	names := map[string]manifest.Deb{}
	for _, d := range m.Sources.Debs {
		names[d.Name] = d
		assert.Regexp(t, `^[0-9a-f]{64}$`, d.SHA256, d.Name)
		assert.Positive(t, d.Size, d.Name)
		assert.True(t, strings.HasPrefix(d.URL, "http"), d.Name)
	}
	for _, want := range []string{"nginx", "curl", "vim-tiny", "linux-image-amd64", "grub-pc-bin", "grub-efi-amd64-bin", "openssh-server", "base-files", "dpkg", "nftables", "locales"} {
		assert.Contains(t, names, want)
	}
	assert.Greater(t, len(m.Sources.Debs), 150, "a bootable system's closure")
	assert.Equal(t, "web-debian-12-x86_64.qcow2", m.Output.Filename)

	again, _, err := run(t, "--cache-dir", cache, "manifest", "--offline", "--blueprint", "../../examples/web.toml", "--distro", "debian-12", "--type", "qcow2")
	require.NoError(t, err)
	assert.Equal(t, out, again, "same inputs and metadata, same bytes (offline, from the cache)")

	text, _, err := run(t, "--cache-dir", cache, "manifest", "--offline", "-b", "../../examples/web.toml", "-t", "qcow2", "--distro", "debian-12", "--format", "text")
	require.NoError(t, err)
	assert.Contains(t, text, "web-debian-12-x86_64.qcow2 (debian-12 x86_64 qcow2)")

	bad := filepath.Join(t.TempDir(), "bad.toml")
	require.NoError(t, os.WriteFile(bad, []byte("name = \"x\"\n[[packages]]\nname = \"nginxx\"\n[[packages]]\nname = \"curl\"\n"), 0o644))
	_, stderr, err = run(t, "--cache-dir", cache, "manifest", "--offline", "-b", bad, "-t", "tar", "--distro", "debian-12")
	require.Error(t, err)
	assert.Contains(t, stderr, `packages[0]: package "nginxx" does not exist in debian-12 (did you mean "nginx"?)`)

	_, stderr, err = run(t, "--cache-dir", t.TempDir(), "manifest", "--offline", "-t", "tar", "--distro", "debian-12")
	require.Error(t, err)
	assert.Contains(t, stderr, "--offline")
}
