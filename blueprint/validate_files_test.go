package blueprint

import (
	"encoding/json"
	"testing"
)

// pathFields are the fields that name a path in the image, as JSON
// blueprint fragments around one path value.
var pathFields = []struct {
	name, path string
	doc        func(p string) map[string]any
}{
	{"file", "customizations.files[0].path", func(p string) map[string]any {
		return map[string]any{"files": []any{map[string]any{"path": p, "data": "x"}}}
	}},
	{"directory", "customizations.directories[0].path", func(p string) map[string]any {
		return map[string]any{"directories": []any{map[string]any{"path": p}}}
	}},
	{"home", "customizations.user[0].home", func(p string) map[string]any {
		return map[string]any{"user": []any{map[string]any{"name": "ops", "home": p}}}
	}},
	{"filesystem", "customizations.filesystem[0].mountpoint", func(p string) map[string]any {
		return map[string]any{"filesystem": []any{map[string]any{"mountpoint": p, "minsize": 1 << 30}}}
	}},
	{"partition", "customizations.disk.partitions[0].mountpoint", func(p string) map[string]any {
		return map[string]any{"disk": map[string]any{"partitions": []any{map[string]any{"mountpoint": p, "fs_type": "ext4"}}}}
	}},
	{"logical volume", "customizations.disk.partitions[0].logical_volumes[0].mountpoint", func(p string) map[string]any {
		return map[string]any{"disk": map[string]any{"partitions": []any{map[string]any{"type": "lvm",
			"logical_volumes": []any{map[string]any{"mountpoint": p, "fs_type": "ext4"}}}}}}
	}},
}

// pathDoc is a JSON blueprint with the customizations c.
func pathDoc(t *testing.T, c map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"name": "paths", "customizations": c})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPathSyntaxIsRefusedEverywhere gives every path field each malformed
// path and wants exactly one problem, at that field, with the exact words.
func TestPathSyntaxIsRefusedEverywhere(t *testing.T) {
	t.Parallel()
	const (
		chars      = " may contain only letters, digits and / . _ - + @ : , = ~"
		mountChars = " may contain only letters, digits and / . _ -"
	)
	tests := []struct {
		name, value string
		want        string // the message for files, directories and homes
		mountWant   string // the message for mount points, when it differs
	}{
		{"relative", "srv/data", `"srv/data" is not an absolute path; start it with /`, ""},
		{"dot-dot relative", "../srv", `"../srv" is not an absolute path; start it with /`, ""},
		{"dot-dot", "/srv/../etc/x", `"/srv/../etc/x" is not in canonical form (no '..', '.', '//' or trailing '/'); write "/etc/x"`, ""},
		{"dot", "/srv/./data", `"/srv/./data" is not in canonical form (no '..', '.', '//' or trailing '/'); write "/srv/data"`, ""},
		{"double slash", "/srv//data", `"/srv//data" is not in canonical form (no '..', '.', '//' or trailing '/'); write "/srv/data"`, ""},
		{"leading double slash", "//srv/data", `"//srv/data" is not in canonical form (no '..', '.', '//' or trailing '/'); write "/srv/data"`, ""},
		{"trailing slash", "/srv/data/", `"/srv/data/" is not in canonical form (no '..', '.', '//' or trailing '/'); write "/srv/data"`, ""},
		{"newline", "/srv/da\nta", `"/srv/da\nta"` + chars, `"/srv/da\nta"` + mountChars},
		{"tab", "/srv/da\tta", `"/srv/da\tta"` + chars, `"/srv/da\tta"` + mountChars},
		{"escape", "/srv/\x1b[31mdata", `"/srv/\x1b[31mdata"` + chars, `"/srv/\x1b[31mdata"` + mountChars},
		{"DEL", "/srv/data\x7f", `"/srv/data\x7f"` + chars, `"/srv/data\x7f"` + mountChars},
		{"NUL", "/srv/da\x00ta", "contains a NUL byte; remove it", ""},
		{"space", "/srv/my data", `"/srv/my data"` + chars, `"/srv/my data"` + mountChars},
	}
	for _, f := range pathFields {
		for _, tc := range tests {
			if f.name == "home" && tc.name == "trailing slash" {
				continue // a home's trailing slash is stripped, as osbuild does (TestParseStripsTrailingSlashOfHome)
			}
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				want := tc.want
				if tc.mountWant != "" && (f.name == "filesystem" || f.name == "partition" || f.name == "logical volume") {
					want = tc.mountWant
				}
				errs := problemsOf(t, pathDoc(t, f.doc(tc.value)), FormatJSON)
				if len(errs) != 1 || errs[0] != (Problem{Path: f.path, Message: want}) {
					t.Fatalf("want exactly\n  %s: %s\nhave:\n%v", f.path, want, errs)
				}
			})
		}
	}
}

// TestLinkedDebianPathsAreRefused covers Debian's symbolic links that the
// blueprint layer knows without a distribution: the merged-/usr links and
// /var/run and /var/lock, as files and directories and below them.
func TestLinkedDebianPathsAreRefused(t *testing.T) {
	t.Parallel()
	under := func(p, root string) string {
		return `"` + p + `" is under ` + root + `, which is not writable by blueprints (it is virtual, or belongs to the system's packages)`
	}
	tests := []struct{ path, want string }{
		{"/bin", `"/bin" is a standard system directory and already exists; give a path below it`},
		{"/sbin", `"/sbin" is a standard system directory and already exists; give a path below it`},
		{"/lib", `"/lib" is a standard system directory and already exists; give a path below it`},
		{"/lib64", `"/lib64" is a standard system directory and already exists; give a path below it`},
		{"/var/run", `"/var/run" is a link to /run in Debian, which is not on disk; a file or directory here would replace the link and break the system (create what is needed under /run at boot with a file in /etc/tmpfiles.d)`},
		{"/var/lock", `"/var/lock" is a link to /run/lock in Debian, which is not on disk; a file or directory here would replace the link and break the system (create what is needed under /run at boot with a file in /etc/tmpfiles.d)`},
		{"/bin/tool", under("/bin/tool", "/bin")},
		{"/sbin/tool", under("/sbin/tool", "/sbin")},
		{"/lib/tool", under("/lib/tool", "/lib")},
		{"/lib64/tool", under("/lib64/tool", "/lib64")},
		{"/var/run/app", under("/var/run/app", "/var/run")},
		{"/var/lock/app", under("/var/lock/app", "/var/lock")},
	}
	for _, f := range pathFields[:2] {
		for _, tc := range tests {
			t.Run(f.name+tc.path, func(t *testing.T) {
				t.Parallel()
				errs := problemsOf(t, pathDoc(t, f.doc(tc.path)), FormatJSON)
				if len(errs) != 1 || errs[0] != (Problem{Path: f.path, Message: tc.want}) {
					t.Fatalf("want exactly\n  %s: %s\nhave:\n%v", f.path, tc.want, errs)
				}
			})
		}
	}
}

func TestSpecialModes(t *testing.T) {
	t.Parallel()
	const (
		fileWhy = "kiln refuses setuid, setgid and sticky modes in blueprints because anyone who can submit a blueprint could plant a privileged binary"
		dirWhy  = "kiln refuses setuid and sticky modes on directories (setgid is allowed: it grants no privilege)"
	)
	bad := []struct {
		name, doc, path, want string
	}{
		{"setuid file", `{"files":[{"path":"/usr/local/bin/tool","data":"x","mode":"4755"}]}`, "customizations.files[0].mode", `"4755" sets the setuid bit; ` + fileWhy + `; use "0755"`},
		{"setuid file 0o", `{"files":[{"path":"/usr/local/bin/tool","data":"x","mode":"0o4711"}]}`, "customizations.files[0].mode", `"0o4711" sets the setuid bit; ` + fileWhy + `; use "0711"`},
		{"setuid and setgid file", `{"files":[{"path":"/usr/local/bin/tool","data":"x","mode":"06755"}]}`, "customizations.files[0].mode", `"06755" sets the setuid bit; ` + fileWhy + `; use "0755"`},
		{"setgid file", `{"files":[{"path":"/usr/local/bin/tool","data":"x","mode":"2755"}]}`, "customizations.files[0].mode", `"2755" sets the setgid bit; ` + fileWhy + `; use "0755"`},
		{"sticky file", `{"files":[{"path":"/etc/motd","data":"x","mode":"1644"}]}`, "customizations.files[0].mode", `"1644" sets the sticky bit; ` + fileWhy + `; use "0644"`},
		{"setuid directory", `{"directories":[{"path":"/srv/data","mode":"4755"}]}`, "customizations.directories[0].mode", `"4755" sets the setuid bit; ` + dirWhy + `; use "0755"`},
		{"sticky directory", `{"directories":[{"path":"/srv/shared","mode":"1777"}]}`, "customizations.directories[0].mode", `"1777" sets the sticky bit; ` + dirWhy + `; use "0777"`},
		{"sticky setgid directory", `{"directories":[{"path":"/srv/shared","mode":"03775"}]}`, "customizations.directories[0].mode", `"03775" sets the sticky bit; ` + dirWhy + `; use "2775"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := problemsOf(t, `{"name":"modes","customizations":`+tc.doc+`}`, FormatJSON)
			if len(errs) != 1 || errs[0] != (Problem{Path: tc.path, Message: tc.want}) {
				t.Fatalf("want exactly\n  %s: %s\nhave:\n%v", tc.path, tc.want, errs)
			}
		})
	}
	for _, doc := range []string{
		`{"directories":[{"path":"/srv/team","mode":"2775","group":"users"}]}`,
		`{"directories":[{"path":"/srv/team","mode":"02770"}]}`,
		`{"files":[{"path":"/usr/local/bin/tool","data":"x","mode":"0755"}]}`,
		`{"files":[{"path":"/etc/motd","data":"x","mode":"644"}]}`,
	} {
		mustParse(t, `{"name":"modes","customizations":`+doc+`}`, FormatJSON)
	}
}

// TestPathsAccepted keeps ordinary paths working.
func TestPathsAccepted(t *testing.T) {
	t.Parallel()
	mustParse(t, pathDoc(t, map[string]any{
		"files": []any{
			map[string]any{"path": "/etc/motd", "data": "x"},
			map[string]any{"path": "/usr/local/bin/tool", "data": "x", "mode": "0755"},
			map[string]any{"path": "/etc/localtime", "data": "x"},
			map[string]any{"path": "/etc/ssh/sshd_config.d/50-kiln.conf", "data": "x"},
		},
		"directories": []any{
			map[string]any{"path": "/srv/data"},
			map[string]any{"path": "/var/lib/app"},
			map[string]any{"path": "/var/mail/archive"},
		},
		"user":       []any{map[string]any{"name": "ops", "home": "/srv/ops", "shell": "/bin/bash"}},
		"filesystem": []any{map[string]any{"mountpoint": "/srv", "minsize": 1 << 30}},
	}), FormatJSON)
}
