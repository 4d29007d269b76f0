package stages

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/manifest"
)

func TestHostname(t *testing.T) {
	t.Parallel()
	tree := t.TempDir()
	writeTree(t, tree, "/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tbuildhost\n10.0.0.5\tdb.internal db\n")
	env, _ := fileEnv(t, tree)
	require.NoError(t, (&Hostname{Opts: manifest.Hostname{Hostname: "web01.example.org"}}).Run(context.Background(), env))
	assert.Equal(t, "web01.example.org\n", readTree(t, tree, "/etc/hostname"))
	hosts := readTree(t, tree, "/etc/hosts")
	assert.Contains(t, hosts, "127.0.1.1\tweb01.example.org web01\n")
	assert.NotContains(t, hosts, "buildhost", "the build host's line is replaced")
	assert.Contains(t, hosts, "10.0.0.5\tdb.internal db\n", "lines the packages added stay")
}

// The hostname stage checks the name by the blueprint's rule: what a
// blueprint may hold, the stage accepts, and the other way round.
func TestHostnameValidate(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"web01":                        true,
		"web01.example.org":            true,
		"a":                            true,
		"":                             false,
		"-web":                         false,
		"web-":                         false,
		"web_01":                       false,
		"web..example":                 false,
		"web 01":                       false,
		strings.Repeat("a", 64) + ".x": false,
	} {
		err := (&Hostname{Opts: manifest.Hostname{Hostname: name}}).Validate()
		if ok {
			assert.NoError(t, err, "%q", name)
			continue
		}
		require.Error(t, err, "%q", name)
		assert.Contains(t, err.Error(), "hostname: ", "%q: the error names the field", name)
		// A stage run directly refuses the same names, writing nothing.
		tree := t.TempDir()
		env, _ := fileEnv(t, tree)
		require.Error(t, (&Hostname{Opts: manifest.Hostname{Hostname: name}}).Run(context.Background(), env), "%q", name)
		assert.False(t, existsInTree(t, tree, "/etc/hostname"), "%q", name)
	}
	long := ""
	for len(long) < 250 {
		long += "abcdefghi."
	}
	require.ErrorContains(t, (&Hostname{Opts: manifest.Hostname{Hostname: long + "abcd"}}).Validate(), "254 characters long")
}

// Validate refuses bad options of each kind of stage without a tree and
// names the field.
func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	two := 2
	for _, tc := range []struct {
		stage Stage
		want  string
	}{
		{&NTP{Opts: manifest.NTP{Servers: []string{"pool.ntp.org", "bad server"}}}, `ntp servers[1]: "bad server" is not a host name`},
		{&Keyboard{Opts: manifest.Keyboard{Layout: "us;rm"}}, `keyboard layout "us;rm"`},
		{&Locale{Opts: manifest.Locale{Default: "en_US.UTF-8", Languages: []string{"../x"}}}, `locale "../x"`},
		{&Network{Opts: manifest.Network{Mode: "static"}}, `network mode "static"`},
		{&Timezone{Opts: manifest.Timezone{Zone: "../../etc/passwd"}}, `timezone "../../etc/passwd"`},
		{&TarArchive{Opts: manifest.TarArchive{Compression: "lz4"}}, `tar: compression "lz4"`},
		{&Compress{Opts: manifest.Compress{Format: "gzip"}}, `compress: format "gzip"`},
		{&QemuImgConvert{Opts: manifest.QemuImgConvert{Format: "vmdk", Compat: "1.1"}}, "compat \"1.1\" applies to qcow2 only"},
		{&Groups{Opts: manifest.Groups{Groups: []manifest.Group{{Name: "web"}, {Name: "web"}}}}, `groups[1]: group "web" is listed twice`},
		{&Users{Opts: manifest.Users{Users: []manifest.User{{Name: "ann", UID: &two}, {Name: "ann"}}}}, `users[1]: user "ann" is listed twice`},
		{&Systemd{Opts: manifest.Systemd{Masked: []string{"-x"}}}, "units to mask"},
		{&Files{Opts: manifest.Files{Files: []manifest.File{{Path: "/etc/a", Mode: "0644"}, {Path: "etc/b", Mode: "0644"}}}}, "files[1]: "},
		{&Directories{Opts: manifest.Directories{Directories: []manifest.Directory{{Path: "/srv", Mode: "rwx"}}}}, "directories[0]: /srv: "},
		{&DebsInstall{Opts: manifest.DebsInstall{Arch: "amd64 i386"}}, `architecture "amd64 i386"`},
		{&DiskImage{Opts: manifest.DiskImage{BIOSBootloader: "grub"}}, "disk image: "},
	} {
		err := tc.stage.Validate()
		require.Error(t, err, "%T", tc.stage)
		assert.Contains(t, err.Error(), tc.want, "%T", tc.stage)
	}
}
