package stages

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/kiln-project/kiln/internal/manifest"
)

// testKey returns a fresh authorized_keys line.
func testKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

// A yescrypt-shaped hash; chpasswd -e stores it as given.
const testHash = "$y$j9T$kilnSaltkilnSalt12345.$Wz0hR1OQbUFvR1p4dW1Ffz7n5cV0cYyXl7r8h7vNm8B"

func intp(i int) *int { return &i }

func TestUsersAndGroups(t *testing.T) {
	t.Parallel()
	tree := debianTree(t)
	ctx := context.Background()
	env, log := testEnv(t, tree)
	rootKey, opsKey1, opsKey2 := testKey(t, "root@test"), testKey(t, "ops@one"), testKey(t, "ops@two")

	groups := &Groups{Opts: manifest.Groups{Groups: []manifest.Group{
		{Name: "devs", GID: intp(2000)},
		{Name: "web-admins"},
		{Name: "sudo", GID: intp(27)}, // exists with that gid: left alone
	}}}
	require.NoError(t, groups.Run(ctx, env))
	require.NoError(t, groups.Run(ctx, env), "running twice changes nothing")
	require.Equal(t, "devs:x:2000:\n", inTree(t, tree, "getent", "group", "devs"))
	require.Contains(t, inTree(t, tree, "getent", "group", "web-admins"), "web-admins:x:")

	users := &Users{Opts: manifest.Users{Users: []manifest.User{
		{Name: "root", PasswordHash: testHash, SSHKeys: []string{rootKey}},
		{
			Name: "ops", Description: "Ops Team", PasswordHash: testHash,
			SSHKeys: []string{opsKey1, opsKey2}, Home: "/data/home/ops", Shell: "/bin/sh",
			Groups: []string{"devs", "sudo"}, UID: intp(1500), GID: intp(1600),
			ExpireDate: intp(20000), ForcePasswordReset: true,
		},
		{Name: "plain"},
	}}}
	require.NoError(t, users.Run(ctx, env))
	require.NotContains(t, log.String(), testHash, "the log never holds a password hash")

	require.Equal(t, "ops:x:1500:1600:Ops Team:/data/home/ops:/bin/sh\n", inTree(t, tree, "getent", "passwd", "ops"))
	require.Equal(t, "ops:x:1600:\n", inTree(t, tree, "getent", "group", "ops"), "gid 1600 got a group of its own")
	id := inTree(t, tree, "id", "ops")
	require.Contains(t, id, "uid=1500(ops) gid=1600(ops)")
	require.Contains(t, id, "2000(devs)")
	require.Contains(t, id, "27(sudo)")
	shadow := strings.Split(strings.TrimSpace(inTree(t, tree, "getent", "shadow", "ops")), ":")
	require.Equal(t, testHash, shadow[1])
	require.Equal(t, "0", shadow[2], "force_password_reset sets the last change to 0")
	require.Equal(t, "20000", shadow[7], "expiredate")
	rootShadow := strings.Split(inTree(t, tree, "getent", "shadow", "root"), ":")
	require.Equal(t, testHash, rootShadow[1])
	require.Equal(t, "19675", rootShadow[2], "dates come from the epoch, not the clock")
	plainShadow := strings.Split(inTree(t, tree, "getent", "shadow", "plain"), ":")
	require.Equal(t, "19675", plainShadow[2], "dates come from the epoch, not the clock")

	checkKeys := func(home string, uid, gid int, keys ...string) {
		t.Helper()
		dir := filepath.Join(tree, home, ".ssh")
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		st := fi.Sys().(*syscall.Stat_t)
		require.Equal(t, [2]int{uid, gid}, [2]int{int(st.Uid), int(st.Gid)})
		fi, err = os.Stat(filepath.Join(dir, "authorized_keys"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		st = fi.Sys().(*syscall.Stat_t)
		require.Equal(t, [2]int{uid, gid}, [2]int{int(st.Uid), int(st.Gid)})
		require.Equal(t, strings.Join(keys, "\n")+"\n", readTree(t, tree, home+"/.ssh/authorized_keys"))
	}
	checkKeys("/root", 0, 0, rootKey)
	checkKeys("/data/home/ops", 1500, 1600, opsKey1, opsKey2)

	plain := strings.Split(strings.TrimSpace(inTree(t, tree, "getent", "passwd", "plain")), ":")
	require.Equal(t, []string{"/home/plain", "/bin/bash"}, plain[5:])
	require.DirExists(t, filepath.Join(tree, "home/plain"))

	// Running again adds groups and keys, keeps what is there.
	opsKey3 := testKey(t, "ops@three")
	again := &Users{Opts: manifest.Users{Users: []manifest.User{{Name: "ops", Groups: []string{"web-admins"}, SSHKeys: []string{opsKey1, opsKey3}}}}}
	require.NoError(t, again.Run(ctx, env))
	id = inTree(t, tree, "id", "ops")
	require.Contains(t, id, "(web-admins)")
	require.Contains(t, id, "27(sudo)")
	checkKeys("/data/home/ops", 1500, 1600, opsKey1, opsKey2, opsKey3)

	t.Run("group conflicts", func(t *testing.T) {
		for _, g := range []manifest.Group{
			{Name: "devs", GID: intp(2001)},   // exists with another gid
			{Name: "others", GID: intp(2000)}, // gid taken
		} {
			err := (&Groups{Opts: manifest.Groups{Groups: []manifest.Group{g}}}).Run(ctx, env)
			require.Error(t, err)
			require.Contains(t, err.Error(), "2000")
		}
	})

	t.Run("symbolic links are not followed", func(t *testing.T) {
		hostShadow, err := os.ReadFile("/etc/shadow")
		require.NoError(t, err)
		require.NoError(t, (&Users{Opts: manifest.Users{Users: []manifest.User{{Name: "victim"}, {Name: "victim2"}}}}).Run(ctx, env))
		shadowBefore := readTree(t, tree, "/etc/shadow")
		// ~/.ssh pointing at /etc, ~/.ssh/authorized_keys at /etc/shadow.
		require.NoError(t, os.Symlink("/etc", filepath.Join(tree, "home/victim/.ssh")))
		require.NoError(t, os.Mkdir(filepath.Join(tree, "home/victim2/.ssh"), 0o700))
		require.NoError(t, os.Symlink("/etc/shadow", filepath.Join(tree, "home/victim2/.ssh/authorized_keys")))
		for _, name := range []string{"victim", "victim2"} {
			err := (&Users{Opts: manifest.Users{Users: []manifest.User{{Name: name, SSHKeys: []string{opsKey1}}}}}).Run(ctx, env)
			require.ErrorContains(t, err, "not followed")
		}
		require.Equal(t, shadowBefore, readTree(t, tree, "/etc/shadow"))
		require.NoFileExists(t, filepath.Join(tree, "etc/authorized_keys"))
		after, err := os.ReadFile("/etc/shadow")
		require.NoError(t, err)
		require.Equal(t, hostShadow, after)
	})

	t.Run("missing group", func(t *testing.T) {
		err := (&Users{Opts: manifest.Users{Users: []manifest.User{{Name: "newbie", Groups: []string{"nosuchgroup"}}}}}).Run(ctx, env)
		require.ErrorContains(t, err, `group "nosuchgroup" does not exist`)
		require.NotContains(t, readTree(t, tree, "/etc/passwd"), "newbie")
	})
}

func TestUsersRejectsBadOptions(t *testing.T) {
	t.Parallel()
	key := testKey(t, "k")
	tests := []struct {
		name string
		user manifest.User
		want string
	}{
		{"shell metacharacters", manifest.User{Name: "a;rm -rf /"}, "not a valid user name"},
		{"command substitution", manifest.User{Name: "$(id)"}, "not a valid user name"},
		{"option-like name", manifest.User{Name: "-o"}, "not a valid user name"},
		{"uppercase", manifest.User{Name: "Admin"}, "not a valid user name"},
		{"empty name", manifest.User{}, "empty user name"},
		{"too long", manifest.User{Name: strings.Repeat("a", 33)}, "limit is 32"},
		{"colon in description", manifest.User{Name: "a", Description: "x:0:0"}, "description"},
		{"newline in description", manifest.User{Name: "a", Description: "x\nroot::0:0::/:/bin/sh"}, "description"},
		{"plaintext password", manifest.User{Name: "a", PasswordHash: "hunter2"}, "not a crypt(3) hash"},
		{"hash with newline", manifest.User{Name: "a", PasswordHash: "$6$salt$abc\nroot:x"}, "not a crypt(3) hash"},
		{"hash with colon", manifest.User{Name: "a", PasswordHash: "$6$salt$abc:0"}, "not a crypt(3) hash"},
		{"relative home", manifest.User{Name: "a", Home: "home/a"}, "not absolute"},
		{"home with dotdot", manifest.User{Name: "a", Home: "/home/../etc"}, "not canonical"},
		{"shell with comma", manifest.User{Name: "a", Shell: "/bin/sh,x"}, "may not contain"},
		{"bad group", manifest.User{Name: "a", Groups: []string{"wheel;ls"}}, "not a valid group name"},
		{"uid 0", manifest.User{Name: "a", UID: intp(0)}, "uid 0 is root's"},
		{"root uid", manifest.User{Name: "root", UID: intp(5)}, "uid 0 is root's"},
		{"uid too big", manifest.User{Name: "a", UID: intp(70000)}, "outside 0-65534"},
		{"negative gid", manifest.User{Name: "a", GID: intp(-1)}, "outside 0-65534"},
		{"negative expiry", manifest.User{Name: "a", ExpireDate: intp(-3)}, "expiredate"},
		{"private key", manifest.User{Name: "a", SSHKeys: []string{"-----BEGIN OPENSSH PRIVATE KEY-----"}}, "private key"},
		{"not a key", manifest.User{Name: "a", SSHKeys: []string{"hello"}}, "not an SSH public key"},
		{"two keys in one", manifest.User{Name: "a", SSHKeys: []string{key + "\n" + key}}, "one line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, log := fileEnv(t, t.TempDir())
			err := (&Users{Opts: manifest.Users{Users: []manifest.User{tc.user}}}).Run(context.Background(), env)
			require.ErrorContains(t, err, tc.want)
			if tc.user.PasswordHash != "" {
				require.NotContains(t, err.Error(), tc.user.PasswordHash)
				require.NotContains(t, log.String(), tc.user.PasswordHash)
			}
		})
	}
	t.Run("duplicate", func(t *testing.T) {
		t.Parallel()
		env, _ := fileEnv(t, t.TempDir())
		err := (&Users{Opts: manifest.Users{Users: []manifest.User{{Name: "a"}, {Name: "a"}}}}).Run(context.Background(), env)
		require.ErrorContains(t, err, "listed twice")
	})
}

func TestGroupsRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		group manifest.Group
		want  string
	}{
		{"metacharacters", manifest.Group{Name: "g`id`"}, "not a valid group name"},
		{"option-like", manifest.Group{Name: "--help"}, "not a valid group name"},
		{"gid too big", manifest.Group{Name: "g", GID: intp(65535)}, "outside 0-65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := fileEnv(t, t.TempDir())
			err := (&Groups{Opts: manifest.Groups{Groups: []manifest.Group{tc.group}}}).Run(context.Background(), env)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
