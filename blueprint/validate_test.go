package blueprint

import (
	"fmt"
	"strings"
	"testing"
)

const (
	testKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJSXTzsSBufvESb7wDwjQ7K5Dfet8krbUv7YEc3YPJCl admin@example.org"
	testHash = "$6$0123456789abcdef$lDHzA5IdO41viXIs6llkDKq4Uh2VG9JXIYJ.taq2zlNFqBnKQ0/fOUW0Zoz49ZnOpe2ACY.PoF6wosL.jL3Af0"
	testCert = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUER5fsDMtNSYXPCweEuMiFtDnmRkwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTRXhhbXBsZSBJbnRlcm5hbCBDQTAgFw0yNjExMjUxOTQ1NDda
GA8yMTI2MTEwMTE5NDU0N1owHjEcMBoGA1UEAwwTRXhhbXBsZSBJbnRlcm5hbCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKAeQzVP1UbffquVXcfprQNz5G2h
LJg+zF1XG4syZuQRTUwWsbux6CqZYfaOd3TnJUDgOxYXh+F6GoAiJeBvFQyjUzBR
MB0GA1UdDgQWBBS+Y70mGUaCJ1bS9gTLH9crHD2TdjAfBgNVHSMEGDAWgBS+Y70m
GUaCJ1bS9gTLH9crHD2TdjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQC1QygIxk6IBfFH1TrQqRGGLd4PGjYTSoQrm7wYbUs+yQIgS43JGnfUtx/L
AuBmbwOOYFkracywoEOAptGZJeMLRH8=
-----END CERTIFICATE-----`
)

// badCase is a blueprint fragment (TOML, after a valid name) that must be
// reported at path with a message containing want.
type badCase struct {
	name, doc, path, want string
}

func runBadCases(t *testing.T, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := tc.doc
			if !strings.HasPrefix(doc, "name = ") && !strings.HasPrefix(doc, "# no name") {
				doc = "name = \"test\"\n" + doc
			}
			errs := problemsOf(t, doc, FormatTOML)
			if !hasProblem(errs, tc.path, tc.want) {
				t.Fatalf("want a problem at %q containing %q, have:\n%v", tc.path, tc.want, errs)
			}
		})
	}
}

func TestValidateHeader(t *testing.T) {
	t.Parallel()
	runBadCases(t, []badCase{
		{"name missing", "# no name\ndescription = \"x\"", "name", "required"},
		{"name with space", `name = "my image"`, "name", "may contain only letters"},
		{"name with slash", `name = "../etc"`, "name", "may contain only letters"},
		{"name starting with dot", `name = ".hidden"`, "name", "must start with a letter or digit"},
		{"name too long", `name = "` + strings.Repeat("a", 101) + `"`, "name", "the limit is 100"},
		{"description too long", `description = "` + strings.Repeat("a", MaxDescription+1) + `"`, "description", "limit"},
		{"version not semver", `version = "1.0"`, "version", "not a semantic version"},
		{"version with v", `version = "v1.0.0"`, "version", "not a semantic version"},
		{"distro uppercase", `distro = "Debian-12"`, "distro", "not a distribution name"},
		{"distro with space", `distro = "debian 12"`, "distro", "not a distribution name"},
		{"architecture bad", `architecture = "x86/64"`, "architecture", "not an architecture name"},
	})
}

func TestValidatePackages(t *testing.T) {
	t.Parallel()
	runBadCases(t, []badCase{
		{"package name missing", "[[packages]]\nversion = \"1\"", "packages[0].name", "required"},
		{"package name uppercase", "[[packages]]\nname = \"Vim\"", "packages[0].name", "not a Debian package name"},
		{"package name one char", "[[packages]]\nname = \"a\"", "packages[0].name", "at least two characters"},
		{"package name with arch", "[[packages]]\nname = \"vim:amd64\"", "packages[0].name", "not a Debian package name"},
		{"package name leading dash", "[[packages]]\nname = \"-vim\"", "packages[0].name", "not a Debian package name"},
		{"package version relation with pattern", "[[packages]]\nname = \"vim\"\nversion = \">= 9.*\"", "packages[0].version", "mixes a relation with a pattern"},
		{"package version bad pattern", "[[packages]]\nname = \"vim\"\nversion = \"9.[0-3]\"", "packages[0].version", "not a Debian version or relation"},
		{"package version bad operator", "[[packages]]\nname = \"vim\"\nversion = \"> 9\"", "packages[0].version", "not a Debian version"},
		{"package version not starting with digit", "[[packages]]\nname = \"vim\"\nversion = \"a1\"", "packages[0].version", "not a Debian version"},
		{"package version bad epoch", "[[packages]]\nname = \"vim\"\nversion = \"x:1.0\"", "packages[0].version", "not a Debian version"},
		{"package version empty revision", "[[packages]]\nname = \"vim\"\nversion = \"1.0-\"", "packages[0].version", "not a Debian version"},
		{"package version operator only", "[[packages]]\nname = \"vim\"\nversion = \">=\"", "packages[0].version", "not a Debian version"},
		{"module name bad", "[[modules]]\nname = \"Foo\"", "modules[0].name", "not a Debian package name"},
		{"group name bad", "[[groups]]\nname = \"Web Server\"", "groups[0].name", "not a task name"},
		{"group name missing", "[[groups]]\n", "groups[0].name", "required"},
		{"too many packages", strings.Repeat("[[packages]]\nname = \"vim\"\n", MaxPackages+1), "packages", "more than the limit of 1000"},
	})
}

func TestPackageVersionsAccepted(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "*", "1.0", "1:2.3-4", "2.36-9+deb12u4", "1.0~rc1-1", ">= 7.88", ">=7.88", "<< 2", "<= 1.2-3", ">> 0.9", "= 1:9.0.1378-2", "0.0.0-1ubuntu1.1", "9.*", "1:9.2p1*", "= 2.36-?", "2.9.?-1"} {
		if msg := checkPackageVersion(v); msg != "" {
			t.Errorf("%q: %s", v, msg)
		}
	}
}

func TestValidateSystem(t *testing.T) {
	t.Parallel()
	runBadCases(t, []badCase{
		{"hostname empty", "[customizations]\nhostname = \"\"", "customizations.hostname", "empty"},
		{"hostname leading hyphen", "[customizations]\nhostname = \"-web\"", "customizations.hostname", "not a valid host name"},
		{"hostname trailing hyphen", "[customizations]\nhostname = \"web-.example\"", "customizations.hostname", "not a valid host name"},
		{"hostname underscore", "[customizations]\nhostname = \"web_01\"", "customizations.hostname", "not a valid host name"},
		{"hostname empty label", "[customizations]\nhostname = \"web..example\"", "customizations.hostname", "not a valid host name"},
		{"hostname long label", "[customizations]\nhostname = \"" + strings.Repeat("a", 64) + "\"", "customizations.hostname", "not a valid host name"},
		{"hostname too long", "[customizations]\nhostname = \"" + strings.Repeat("abcdefghi.", 26) + "\"", "customizations.hostname", "characters long"},
		{"kernel name bad", "[customizations.kernel]\nname = \"Linux Image\"", "customizations.kernel.name", "not a Debian package name"},
		{"kernel append newline", "[customizations.kernel]\nappend = \"quiet\\ninit=/bin/sh\"", "customizations.kernel.append", "control character"},
		{"kernel append semicolon", "[customizations.kernel]\nappend = \"quiet; reboot\"", "customizations.kernel.append", `";"`},
		{"kernel append quote", "[customizations.kernel]\nappend = 'a=\"b c\"'", "customizations.kernel.append", "quotes"},
		{"kernel append too long", "[customizations.kernel]\nappend = \"" + strings.Repeat("a", MaxKernelAppend+1) + "\"", "customizations.kernel.append", "limit"},
		{"timezone bad", "[customizations.timezone]\ntimezone = \"Europe/Berlin Time\"", "customizations.timezone.timezone", "not a time zone name"},
		{"timezone traversal", "[customizations.timezone]\ntimezone = \"../../etc/passwd\"", "customizations.timezone.timezone", "not a time zone name"},
		{"timezone leading slash", "[customizations.timezone]\ntimezone = \"/UTC\"", "customizations.timezone.timezone", "not a time zone name"},
		{"ntp server bad", "[customizations.timezone]\nntpservers = [\"pool.ntp.org\", \"ntp server\"]", "customizations.timezone.ntpservers[1]", "neither a host name nor an IP address"},
		{"locale bad", "[customizations.locale]\nlanguages = [\"en_US.UTF-8\", \"English\"]", "customizations.locale.languages[1]", "not a locale name"},
		{"locale lowercase country", "[customizations.locale]\nlanguages = [\"en_us.UTF-8\"]", "customizations.locale.languages[0]", "not a locale name"},
		{"keyboard bad", "[customizations.locale]\nkeyboard = \"us intl\"", "customizations.locale.keyboard", "not a keyboard layout name"},
		{"unit empty", "[customizations.services]\nenabled = [\"\"]", "customizations.services.enabled[0]", "empty"},
		{"unit with space", "[customizations.services]\nenabled = [\"my service\"]", "customizations.services.enabled[0]", "not a systemd unit name"},
		{"unit leading dash", "[customizations.services]\nmasked = [\"-x.service\"]", "customizations.services.masked[0]", "not a systemd unit name"},
		{"unit only suffix", "[customizations.services]\ndisabled = [\".service\"]", "customizations.services.disabled[0]", "not a systemd unit name"},
		{"unit bad template", "[customizations.services]\nenabled = [\"@tty1.service\"]", "customizations.services.enabled[0]", "not a systemd unit name"},
		{"unit double at", "[customizations.services]\nenabled = [\"a@b@c.service\"]", "customizations.services.enabled[0]", "not a valid template unit"},
		{"unit enabled and disabled", "[customizations.services]\nenabled = [\"ssh\"]\ndisabled = [\"ssh.service\"]", "customizations.services.disabled[0]", "also in services.enabled"},
		{"unit enabled and masked", "[customizations.services]\nenabled = [\"ssh.service\"]\nmasked = [\"ssh\"]", "customizations.services.masked[0]", "also in services.enabled"},
		{"port without protocol", "[customizations.firewall]\nports = [\"22\"]", "customizations.firewall.ports[0]", "not a port"},
		{"port bad protocol", "[customizations.firewall]\nports = [\"22:icmp\"]", "customizations.firewall.ports[0]", "not a port"},
		{"port zero", "[customizations.firewall]\nports = [\"0:tcp\"]", "customizations.firewall.ports[0]", "outside 1-65535"},
		{"port too high", "[customizations.firewall]\nports = [\"65536:udp\"]", "customizations.firewall.ports[0]", "outside 1-65535"},
		{"port huge", "[customizations.firewall]\nports = [\"99999999999999999999:udp\"]", "customizations.firewall.ports[0]", "outside 1-65535"},
		{"port range reversed", "[customizations.firewall]\nports = [\"100-10:tcp\"]", "customizations.firewall.ports[0]", "ends before it starts"},
		{"port service uppercase", "[customizations.firewall]\nports = [\"SSH:tcp\"]", "customizations.firewall.ports[0]", "not a port"},
		{"firewall service bad", "[customizations.firewall.services]\nenabled = [\"my service\"]", "customizations.firewall.services.enabled[0]", "not a firewall service name"},
		{"firewall service both", "[customizations.firewall.services]\nenabled = [\"ssh\"]\ndisabled = [\"ssh\"]", "customizations.firewall.services.disabled[0]", "also in firewall.services.enabled"},
		{"too many ports", "[customizations.firewall]\nports = [" + strings.Repeat("\"22:tcp\",", MaxListItems+1) + "]", "customizations.firewall.ports", "limit"},
	})
}

func TestSystemValuesAccepted(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"web", "web-01.example.org", "a", "1.2.3.4", "xn--bcher-kva.example"} {
		if msg := checkHostname(h); msg != "" {
			t.Errorf("hostname %q: %s", h, msg)
		}
	}
	for _, tz := range []string{"UTC", "Etc/GMT+1", "Etc/GMT-14", "America/Argentina/Buenos_Aires", "America/Port-au-Prince"} {
		if !timezoneRe.MatchString(tz) {
			t.Errorf("timezone %q rejected", tz)
		}
	}
	for _, l := range []string{"C.UTF-8", "C.utf8", "POSIX", "C", "en_US.UTF-8", "de_DE", "sr_RS@latin", "ca_ES.UTF-8@valencia", "ast_ES.UTF-8", "es_419.UTF-8"} {
		if !validLocale(l) {
			t.Errorf("locale %q rejected", l)
		}
	}
	for _, u := range []struct{ in, want string }{
		{"sshd", "sshd.service"}, {"ssh.socket", "ssh.socket"}, {"getty@tty1.service", "getty@tty1.service"},
		{"getty@.service", "getty@.service"}, {"systemd-fsck-root", "systemd-fsck-root.service"},
		{`dev-disk-by\x2dlabel-data.device`, `dev-disk-by\x2dlabel-data.device`}, {"foo.bar", "foo.bar.service"},
	} {
		got, msg := canonicalUnit(u.in)
		if msg != "" || got != u.want {
			t.Errorf("unit %q: %q, %s; want %q", u.in, got, msg, u.want)
		}
	}
	for _, p := range []string{"22:tcp", "1-65535:udp", "https:tcp", "8080-8080:tcp", "5000:sctp", "6000-6001:dccp"} {
		if msg := checkFirewallPort(p); msg != "" {
			t.Errorf("port %q: %s", p, msg)
		}
	}
	// /etc/services names have underscores and capitals.
	for _, name := range []string{"ssh", "kerberos_master", "gds_db", "Clearcase"} {
		if !fwServiceRe.MatchString(name) {
			t.Errorf("firewall service %q rejected", name)
		}
	}
}

func TestValidateUsers(t *testing.T) {
	t.Parallel()
	runBadCases(t, []badCase{
		{"user name missing", "[[customizations.user]]\nuid = 1000", "customizations.user[0].name", "empty"},
		{"user name uppercase", "[[customizations.user]]\nname = \"Admin\"", "customizations.user[0].name", "not a valid user name"},
		{"user name leading digit", "[[customizations.user]]\nname = \"1admin\"", "customizations.user[0].name", "not a valid user name"},
		{"user name too long", "[[customizations.user]]\nname = \"" + strings.Repeat("a", 33) + "\"", "customizations.user[0].name", "at most 32"},
		{"user duplicate", "[[customizations.user]]\nname = \"a\"\n[[customizations.user]]\nname = \"a\"", "customizations.user[1].name", "also defined at customizations.user[0]"},
		{"user description colon", "[[customizations.user]]\nname = \"a\"\ndescription = \"x:y\"", "customizations.user[0].description", "':'"},
		{"user description newline", "[[customizations.user]]\nname = \"a\"\ndescription = \"x\\ny\"", "customizations.user[0].description", "control characters"},
		{"user key bad", "[[customizations.user]]\nname = \"a\"\nkey = \"ssh-rsa notakey\"", "customizations.user[0].key", "line 1 is not an SSH public key"},
		{"user key second line bad", "[[customizations.user]]\nname = \"a\"\nkey = \"\"\"\n" + testKey + "\nnot a key\n\"\"\"", "customizations.user[0].key", "line 2 is not an SSH public key"},
		{"user key private", "[[customizations.user]]\nname = \"a\"\nkey = \"-----BEGIN OPENSSH PRIVATE KEY-----\"", "customizations.user[0].key", "private key"},
		{"user key empty", "[[customizations.user]]\nname = \"a\"\nkey = \"  \"", "customizations.user[0].key", "empty"},
		{"user home relative", "[[customizations.user]]\nname = \"a\"\nhome = \"home/a\"", "customizations.user[0].home", "not an absolute path"},
		{"user home traversal", "[[customizations.user]]\nname = \"a\"\nhome = \"/home/../etc\"", "customizations.user[0].home", "not in canonical form"},
		{"user shell space", "[[customizations.user]]\nname = \"a\"\nshell = \"/bin/sh -c x\"", "customizations.user[0].shell", "may contain only"},
		{"user group bad", "[[customizations.user]]\nname = \"a\"\ngroups = [\"wheel\", \"Bad\"]", "customizations.user[0].groups[1]", "not a valid group name"},
		{"uid negative", "[[customizations.user]]\nname = \"a\"\nuid = -1", "customizations.user[0].uid", "outside 0-65534"},
		{"uid 65535", "[[customizations.user]]\nname = \"a\"\nuid = 65535", "customizations.user[0].uid", "outside 0-65534"},
		{"uid huge", "[[customizations.user]]\nname = \"a\"\nuid = 4294967296", "customizations.user[0].uid", "outside 0-65534"},
		{"uid 0 for non-root", "[[customizations.user]]\nname = \"a\"\nuid = 0", "customizations.user[0].uid", "root's"},
		{"root with other uid", "[[customizations.user]]\nname = \"root\"\nuid = 1000", "customizations.user[0].uid", "root's uid is 0"},
		{"uid duplicate", "[[customizations.user]]\nname = \"a\"\nuid = 1000\n[[customizations.user]]\nname = \"b\"\nuid = 1000", "customizations.user[1].uid", "also given to customizations.user[0]"},
		{"gid negative", "[[customizations.user]]\nname = \"a\"\ngid = -5", "customizations.user[0].gid", "outside 0-65534"},
		{"expiredate negative", "[[customizations.user]]\nname = \"a\"\nexpiredate = -1", "customizations.user[0].expiredate", "not a day count"},
		{"password empty", "[[customizations.user]]\nname = \"a\"\npassword = \"\"", "customizations.user[0].password", "empty"},
		{"password lock marker", "[[customizations.user]]\nname = \"a\"\npassword = \"!\"", "customizations.user[0].password", "lock marker"},
		{"password malformed hash", "[[customizations.user]]\nname = \"a\"\npassword = \"$6$salt$tooshort\"", "customizations.user[0].password", "malformed"},
		{"password too long", "[[customizations.user]]\nname = \"a\"\npassword = \"" + strings.Repeat("p", MaxPasswordLength+1) + "\"", "customizations.user[0].password", "longer than"},
		{"password newline", "[[customizations.user]]\nname = \"a\"\npassword = \"a\\nb\"", "customizations.user[0].password", "line break"},
		{"too many users", strings.Repeat("[[customizations.user]]\nname = \"a\"\n", MaxUsers+1), "customizations.user", "limit of 100"},
		{"group name bad", "[[customizations.group]]\nname = \"My Group\"", "customizations.group[0].name", "not a valid group name"},
		{"group duplicate", "[[customizations.group]]\nname = \"g\"\n[[customizations.group]]\nname = \"g\"", "customizations.group[1].name", "also defined"},
		{"group gid range", "[[customizations.group]]\nname = \"g\"\ngid = 70000", "customizations.group[0].gid", "outside 0-65534"},
		{"group gid duplicate", "[[customizations.group]]\nname = \"g\"\ngid = 2000\n[[customizations.group]]\nname = \"h\"\ngid = 2000", "customizations.group[1].gid", "also given to"},
		{"sshkey user bad", "[[customizations.sshkey]]\nuser = \"Root\"\nkey = \"" + testKey + "\"", "customizations.sshkey[0].user", "not a valid user name"},
		{"sshkey key bad", "[[customizations.sshkey]]\nuser = \"root\"\nkey = \"AAAA\"", "customizations.sshkey[0].key", "not an SSH public key"},
		{"sshkey key missing", "[[customizations.sshkey]]\nuser = \"root\"", "customizations.sshkey[0].key", "empty"},
	})
}

func TestUserValuesAccepted(t *testing.T) {
	t.Parallel()
	doc := fmt.Sprintf(`
name = "users"
[[customizations.user]]
name = "root"
key = %q
[[customizations.user]]
name = "_svc-1$"
uid = 65534
[[customizations.user]]
name = "ops"
key = """
# comment lines and blank lines are allowed

from="10.0.0.0/8",no-pty %s
"""
password = %q
`, testKey, testKey, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7")
	mustParse(t, doc, FormatTOML)
	for _, h := range []string{testHash, "$5$abc$sCOGUciM.GdmYMCUvmUcgu03oRH87O0clF96.9mwWGB", "$1$abc$OGyl6dDvZCDiGmIVbeuCq/",
		"$6$rounds=10000$abc$" + strings.Repeat("a", 86), "$2b$12$" + strings.Repeat("a", 53)} {
		if !IsPasswordHash(h) {
			t.Errorf("hash %q not recognised", h)
		}
	}
}

func TestValidateStorage(t *testing.T) {
	t.Parallel()
	fs := func(mp string) string {
		return fmt.Sprintf("[[customizations.filesystem]]\nmountpoint = %q\nminsize = \"1 GiB\"\n", mp)
	}
	runBadCases(t, []badCase{
		{"mountpoint missing", "[[customizations.filesystem]]\nminsize = 1024", "customizations.filesystem[0].mountpoint", "required"},
		{"mountpoint relative", fs("var"), "customizations.filesystem[0].mountpoint", "not an absolute path"},
		{"mountpoint traversal", fs("/var/../etc"), "customizations.filesystem[0].mountpoint", "not in canonical form"},
		{"mountpoint dot", fs("/var/./log"), "customizations.filesystem[0].mountpoint", "not in canonical form"},
		{"mountpoint double slash", fs("//var"), "customizations.filesystem[0].mountpoint", "not in canonical form"},
		{"mountpoint trailing slash", fs("/var/"), "customizations.filesystem[0].mountpoint", "not in canonical form"},
		{"mountpoint space", fs("/var/my data"), "customizations.filesystem[0].mountpoint", "may contain only"},
		{"mountpoint etc", fs("/etc"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint etc below", fs("/etc/ssl"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint sys", fs("/sys"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint proc", fs("/proc"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint dev", fs("/dev"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint run", fs("/run"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint bin", fs("/bin"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint sbin", fs("/sbin"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint lib", fs("/lib"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint lib64", fs("/lib64"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint lost+found", fs("/lost+found"), "customizations.filesystem[0].mountpoint", "may contain only"},
		{"mountpoint usr below", fs("/usr/local"), "customizations.filesystem[0].mountpoint", "cannot be a separate mount point"},
		{"mountpoint var run", fs("/var/run"), "customizations.filesystem[0].mountpoint", "link to /run"},
		{"mountpoint duplicate", fs("/var") + fs("/var"), "customizations.filesystem[1].mountpoint", "also mounted by customizations.filesystem[0].mountpoint"},
		{"minsize too large", "[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = \"2048 TiB\"", "customizations.filesystem[0].minsize", "larger than the limit"},
		{"minsize overflow", "[[customizations.filesystem]]\nmountpoint = \"/\"\nminsize = \"99999999999 TiB\"", "customizations.filesystem[0].minsize", "too large"},
		{"filesystem and disk", fs("/") + "[customizations.disk]\n[[customizations.disk.partitions]]\nmountpoint = \"/\"", "customizations.disk", "cannot be used together with customizations.filesystem"},
		{"too many filesystems", strings.Repeat(fs("/data"), MaxMountpoints+1), "customizations.filesystem", "limit"},

		{"disk type", "[customizations.disk]\ntype = \"mbr\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"", "customizations.disk.type", `use "gpt" or "dos"`},
		{"disk no partitions", "[customizations.disk]\ntype = \"gpt\"", "customizations.disk.partitions", "required"},
		{"partition type", "[[customizations.disk.partitions]]\ntype = \"raid\"\nmountpoint = \"/\"", "customizations.disk.partitions[0].type", `use "plain"`},
		{"partition btrfs", "[[customizations.disk.partitions]]\ntype = \"btrfs\"", "customizations.disk.partitions[0].type", "not supported yet"},
		{"plain without mountpoint", "[[customizations.disk.partitions]]\nfs_type = \"ext4\"", "customizations.disk.partitions[0].mountpoint", "required"},
		{"plain bad fs", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\nfs_type = \"ntfs\"", "customizations.disk.partitions[0].fs_type", "not a supported filesystem"},
		{"plain bad mountpoint", "[[customizations.disk.partitions]]\nmountpoint = \"/etc\"", "customizations.disk.partitions[0].mountpoint", "cannot be a separate mount point"},
		{"plain swap with mountpoint", "[[customizations.disk.partitions]]\nmountpoint = \"/swap\"\nfs_type = \"swap\"", "customizations.disk.partitions[0].mountpoint", "swap is not mounted"},
		{"plain with lvm name", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\nname = \"vg\"", "customizations.disk.partitions[0].name", "only an lvm partition"},
		{"plain with lvs", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/var\"", "customizations.disk.partitions[0].logical_volumes", "only an lvm partition"},
		{"plain label too long for xfs", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\nfs_type = \"xfs\"\nlabel = \"abcdefghijklm\"", "customizations.disk.partitions[0].label", "at most 12"},
		{"plain label bad chars", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\nlabel = \"my root\"", "customizations.disk.partitions[0].label", "not a filesystem label"},
		{"part_type bad", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_type = \"linux\"", "customizations.disk.partitions[0].part_type", "not a partition type"},
		{"part_type mbr on gpt", "[customizations.disk]\ntype = \"gpt\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_type = \"83\"", "customizations.disk.partitions[0].part_type", "MBR type, but the table is gpt"},
		{"part_type guid on dos", "[customizations.disk]\ntype = \"dos\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_type = \"0fc63daf-8483-4772-8e79-3d69d8477de4\"", "customizations.disk.partitions[0].part_type", "GPT type GUID, but the table is dos"},
		{"part_label on dos", "[customizations.disk]\ntype = \"dos\"\n[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_label = \"root\"", "customizations.disk.partitions[0].part_label", "no partition labels"},
		{"part_label too long", "[[customizations.disk.partitions]]\nmountpoint = \"/\"\npart_label = \"" + strings.Repeat("r", 37) + "\"", "customizations.disk.partitions[0].part_label", "at most 36"},
		{"lvm with mountpoint", "[[customizations.disk.partitions]]\ntype = \"lvm\"\nmountpoint = \"/\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/var\"", "customizations.disk.partitions[0].mountpoint", "move mountpoint into a logical_volumes entry"},
		{"lvm without lvs", "[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"vg0\"", "customizations.disk.partitions[0].logical_volumes", "required for an lvm partition"},
		{"lvm bad vg name", "[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"-vg\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/\"", "customizations.disk.partitions[0].name", "not an LVM name"},
		{"lvm reserved vg name", "[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"..\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/\"", "customizations.disk.partitions[0].name", "reserved by LVM"},
		{"lvm duplicate vg", "[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"vg\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/\"\n[[customizations.disk.partitions]]\ntype = \"lvm\"\nname = \"vg\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/var\"", "customizations.disk.partitions[1].name", "also defined"},
		{"lv bad name", "[[customizations.disk.partitions]]\ntype = \"lvm\"\n[[customizations.disk.partitions.logical_volumes]]\nname = \"root lv\"\nmountpoint = \"/\"", "customizations.disk.partitions[0].logical_volumes[0].name", "not an LVM name"},
		{"lv duplicate name", "[[customizations.disk.partitions]]\ntype = \"lvm\"\n[[customizations.disk.partitions.logical_volumes]]\nname = \"lv\"\nmountpoint = \"/\"\n[[customizations.disk.partitions.logical_volumes]]\nname = \"lv\"\nmountpoint = \"/var\"", "customizations.disk.partitions[0].logical_volumes[1].name", "also defined"},
		{"lv without mountpoint", "[[customizations.disk.partitions]]\ntype = \"lvm\"\n[[customizations.disk.partitions.logical_volumes]]\nfs_type = \"xfs\"", "customizations.disk.partitions[0].logical_volumes[0].mountpoint", "required"},
		{"lv vfat", "[[customizations.disk.partitions]]\ntype = \"lvm\"\n[[customizations.disk.partitions.logical_volumes]]\nfs_type = \"vfat\"\nmountpoint = \"/data\"", "customizations.disk.partitions[0].logical_volumes[0].fs_type", "plain partition"},
		{"mountpoint shared by partition and lv", "[[customizations.disk.partitions]]\nmountpoint = \"/var\"\n[[customizations.disk.partitions]]\ntype = \"lvm\"\n[[customizations.disk.partitions.logical_volumes]]\nmountpoint = \"/var\"", "customizations.disk.partitions[1].logical_volumes[0].mountpoint", "also mounted by customizations.disk.partitions[0].mountpoint"},
	})
}

func TestMountpointsAccepted(t *testing.T) {
	t.Parallel()
	for _, mp := range []string{"/", "/boot", "/usr", "/var", "/var/log/audit", "/home", "/opt/app", "/srv", "/tmp", "/app", "/data/db"} {
		if msg := checkMountpoint(mp); msg != "" {
			t.Errorf("%s: %s", mp, msg)
		}
	}
}

func TestValidateFiles(t *testing.T) {
	t.Parallel()
	file := func(p string) string { return fmt.Sprintf("[[customizations.files]]\npath = %q\ndata = \"x\"\n", p) }
	dir := func(p string) string { return fmt.Sprintf("[[customizations.directories]]\npath = %q\n", p) }
	runBadCases(t, []badCase{
		{"file path missing", "[[customizations.files]]\ndata = \"x\"", "customizations.files[0].path", "empty"},
		{"file path relative", file("etc/motd"), "customizations.files[0].path", "not an absolute path"},
		{"file path dotdot relative", file("../x"), "customizations.files[0].path", "not an absolute path"},
		{"file path traversal", file("/etc/../etc/passwd"), "customizations.files[0].path", "not in canonical form"},
		{"file path root", file("/"), "customizations.files[0].path", "root directory"},
		{"file passwd", file("/etc/passwd"), "customizations.files[0].path", "customizations.user"},
		{"file shadow", file("/etc/shadow"), "customizations.files[0].path", "generated"},
		{"file group", file("/etc/group"), "customizations.files[0].path", "generated"},
		{"file gshadow", file("/etc/gshadow"), "customizations.files[0].path", "generated"},
		{"file fstab", file("/etc/fstab"), "customizations.files[0].path", "generated"},
		{"file proc", file("/proc/sys/kernel/x"), "customizations.files[0].path", "under /proc"},
		{"file sys", file("/sys/x"), "customizations.files[0].path", "under /sys"},
		{"file dev", file("/dev/sda"), "customizations.files[0].path", "under /dev"},
		{"file run", file("/run/x"), "customizations.files[0].path", "under /run"},
		{"file boot", file("/boot/grub/grub.cfg"), "customizations.files[0].path", "under /boot"},
		{"file usr", file("/usr/bin/sudo"), "customizations.files[0].path", "under /usr"},
		{"file bin", file("/bin/sh"), "customizations.files[0].path", "under /bin"},
		{"file system dir", file("/etc"), "customizations.files[0].path", "standard system directory"},
		{"file shell characters", file("/etc/$(reboot)"), "customizations.files[0].path", "may contain only"},
		{"file space", file("/etc/my file"), "customizations.files[0].path", "may contain only"},
		{"file mode bad", file("/etc/a") + "mode = \"rwxr-xr-x\"", "customizations.files[0].mode", "not a mode"},
		{"file mode 8", file("/etc/a") + "mode = \"0789\"", "customizations.files[0].mode", "not an octal mode"},
		{"file mode type bits", file("/etc/a") + "mode = \"0100644\"", "customizations.files[0].mode", "not a mode"},
		{"file mode too big", file("/etc/a") + "mode = \"17777\"", "customizations.files[0].mode", "above 07777"},
		{"file user bad", file("/etc/a") + "user = \"Bad User\"", "customizations.files[0].user", "not a valid user name"},
		{"file group id range", file("/etc/a") + "group = 70000", "customizations.files[0].group", "outside 0-65534"},
		{"file duplicate", file("/etc/a") + file("/etc/a"), "customizations.files[1].path", "also declared by customizations.files[0].path"},
		{"file is a directory", dir("/etc/a") + file("/etc/a"), "customizations.files[0].path", "also declared as a directory"},
		{"file under file", file("/etc/a") + file("/etc/a/b"), "customizations.files[1].path", "declares as a file"},
		{"directory under file", file("/srv/a") + dir("/srv/a/b/c"), "customizations.directories[0].path", "declares as a file"},
		{"file data too large", "[[customizations.files]]\npath = \"/etc/big\"\ndata = \"" + strings.Repeat("x", MaxFileDataSize+1) + "\"", "customizations.files[0].data", "at most 1048576 bytes"},
		{"files data total too large", strings.Repeat("[[customizations.files]]\npath = \"/etc/big\"\ndata = \""+strings.Repeat("x", MaxFileDataSize)+"\"\n", 3) + "[[customizations.files]]\npath = \"/etc/big\"\ndata = \"x\"", "customizations.files", "3 MiB"},
		{"directory duplicate", dir("/srv/a") + dir("/srv/a"), "customizations.directories[1].path", "also declared"},
		{"directory traversal", dir("/srv/../etc"), "customizations.directories[0].path", "not in canonical form"},
		{"directory mode", dir("/srv/a") + "mode = \"u+rwx\"", "customizations.directories[0].mode", "not an octal mode"},
		{"directory owner negative", "[[customizations.directories]]\npath = \"/srv/a\"\nuser = -1", "customizations.directories[0].user", "cannot be negative"},
		{"directory usr", dir("/usr/lib/x"), "customizations.directories[0].path", "under /usr"},
	})
	mustParse(t, "name = \"ok\"\n"+dir("/usr/local/share/x")+file("/usr/local/bin/tool")+file("/etc/motd")+"mode = \"0o644\"\n"+dir("/etc/app")+"mode = \"2775\"\n", FormatTOML)
}

func TestValidateRepositories(t *testing.T) {
	t.Parallel()
	repo := func(extra string) string {
		return "[[customizations.repositories]]\nid = \"r\"\nbaseurls = [\"https://deb.example.org/debian\"]\nsuite = \"bookworm\"\ncomponents = [\"main\"]\n" + extra + "\n"
	}
	runBadCases(t, []badCase{
		{"id missing", "[[customizations.repositories]]\nbaseurls = [\"https://a.example/\"]\nsuite = \"./\"", "customizations.repositories[0].id", "required"},
		{"id bad", strings.Replace(repo(""), `id = "r"`, `id = "my repo"`, 1), "customizations.repositories[0].id", "not a repository id"},
		{"id duplicate", repo("") + repo(""), "customizations.repositories[1].id", "also the id of customizations.repositories[0]"},
		{"baseurls missing", "[[customizations.repositories]]\nid = \"r\"\nsuite = \"./\"", "customizations.repositories[0].baseurls", "required"},
		{"baseurl scheme", strings.Replace(repo(""), "https://deb.example.org/debian", "ftp://deb.example.org/debian", 1), "customizations.repositories[0].baseurls[0]", "does not use one of the schemes"},
		{"baseurl space", strings.Replace(repo(""), "https://deb.example.org/debian", "https://deb.example.org/deb ian", 1), "customizations.repositories[0].baseurls[0]", "spaces"},
		{"baseurl newline", strings.Replace(repo(""), "https://deb.example.org/debian", `https://deb.example.org/\nDeb`, 1), "customizations.repositories[0].baseurls[0]", "control characters"},
		{"baseurl credentials", strings.Replace(repo(""), "https://deb.example.org/debian", "https://user:secret@deb.example.org/debian", 1), "customizations.repositories[0].baseurls[0]", "credentials"},
		{"baseurl no host", strings.Replace(repo(""), "https://deb.example.org/debian", "https:///debian", 1), "customizations.repositories[0].baseurls[0]", "no host"},
		{"baseurl relative file", strings.Replace(repo(""), "https://deb.example.org/debian", "file:repo", 1), "customizations.repositories[0].baseurls[0]", "not a local path"},
		{"suite missing", "[[customizations.repositories]]\nid = \"r\"\nbaseurls = [\"https://a.example/\"]", "customizations.repositories[0].suite", "required"},
		{"suite traversal", strings.Replace(repo(""), `suite = "bookworm"`, `suite = "../../x"`, 1), "customizations.repositories[0].suite", "without '..'"},
		{"suite absolute", strings.Replace(repo(""), `suite = "bookworm"`, `suite = "/x/"`, 1), "customizations.repositories[0].suite", "relative path"},
		{"suite shell", strings.Replace(repo(""), `suite = "bookworm"`, `suite = "bookworm; x"`, 1), "customizations.repositories[0].suite", "not a suite"},
		{"components missing", "[[customizations.repositories]]\nid = \"r\"\nbaseurls = [\"https://a.example/\"]\nsuite = \"stable\"", "customizations.repositories[0].components", "required for suite"},
		{"components on flat", "[[customizations.repositories]]\nid = \"r\"\nbaseurls = [\"https://a.example/\"]\nsuite = \"./\"\ncomponents = [\"main\"]", "customizations.repositories[0].components", "flat repository"},
		{"component bad", strings.Replace(repo(""), `["main"]`, `["main", "Non Free"]`, 1), "customizations.repositories[0].components[1]", "not a component"},
		{"gpgkey garbage", repo("gpgkeys = [\"not a key\"]"), "customizations.repositories[0].gpgkeys[0]", "neither an armored public key block nor a URL"},
		{"gpgkey private", repo("gpgkeys = [\"-----BEGIN PGP PRIVATE KEY BLOCK-----\"]"), "customizations.repositories[0].gpgkeys[0]", "private key"},
		{"gpgkey bad body", repo("gpgkeys = [\"\"\"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n$(reboot)\n-----END PGP PUBLIC KEY BLOCK-----\"\"\"]"), "customizations.repositories[0].gpgkeys[0]", "not base64"},
		{"gpgkey empty block", repo("gpgkeys = [\"-----BEGIN PGP PUBLIC KEY BLOCK-----\\n-----END PGP PUBLIC KEY BLOCK-----\"]"), "customizations.repositories[0].gpgkeys[0]", "empty key block"},
		{"gpgkey url scheme", repo("gpgkeys = [\"file:///etc/key.asc\"]"), "customizations.repositories[0].gpgkeys[0]", "does not use one of the schemes https;"},
		{"priority range", repo("priority = 40000"), "customizations.repositories[0].priority", "not an apt pin priority"},
		{"filename with slash", repo("filename = \"../../etc/passwd\""), "customizations.repositories[0].filename", "without '/'"},
		{"filename duplicate", repo("filename = \"x\"") + strings.Replace(repo("filename = \"x\""), `id = "r"`, `id = "s"`, 1), "customizations.repositories[1].filename", "also the file of"},
		{"name newline", repo("name = \"a\\nb\""), "customizations.repositories[0].name", "one line"},
		{"cacert garbage", "[customizations.cacerts]\npem_certs = [\"hello\"]", "customizations.cacerts.pem_certs[0]", "no PEM certificate"},
		{"cacert private key", "[customizations.cacerts]\npem_certs = [\"\"\"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\"\"\"]", "customizations.cacerts.pem_certs[0]", "treat the key as leaked"},
		{"cacert bad der", "[customizations.cacerts]\npem_certs = [\"\"\"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\"\"\"]", "customizations.cacerts.pem_certs[0]", "does not parse as X.509"},
		{"cacert trailing junk", "[customizations.cacerts]\npem_certs = [\"\"\"" + testCert + "\nrm -rf /\"\"\"]", "customizations.cacerts.pem_certs[0]", "text after the last certificate"},
	})
}

func TestValidateBlueprintBuiltInCode(t *testing.T) {
	t.Parallel()
	if err := (*Blueprint)(nil).Validate(); err == nil {
		t.Fatal("a nil blueprint must not validate")
	}
	pw := "hunter2"
	bp := &Blueprint{Name: "code", Customizations: &Customizations{User: []UserCustomization{{Name: "a", Password: &pw}}}}
	err := bp.Validate()
	if err == nil || !strings.Contains(err.Error(), "customizations.user[0].password: is not a crypt(3) hash") || strings.Contains(err.Error(), pw) {
		t.Fatalf("have %v", err)
	}
	if err := bp.HashPasswords(zeroReader{}); err != nil {
		t.Fatal(err)
	}
	if err := bp.Validate(); err != nil {
		t.Fatalf("after HashPasswords: %v", err)
	}
}
