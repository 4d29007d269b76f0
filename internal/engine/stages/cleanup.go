package stages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/kiln-project/kiln/internal/manifest"
)

// Cleanup makes the tree a generic image that every machine booted from it
// personalises on its own:
//
//   - MachineID: /etc/machine-id is emptied (kept, so systemd generates an
//     id on first boot) and /var/lib/dbus/machine-id becomes a link to it.
//   - SSHHostKeys: /etc/ssh/ssh_host_* are removed, and when openssh-server
//     is installed two units make the machine's own keys on its first boot
//     (Debian's openssh-server makes keys only when installed):
//     kiln-ssh-keygen.service, before ssh.service, makes the Ed25519 and
//     ECDSA keys, which take milliseconds; kiln-ssh-keygen-rsa.service,
//     after it and at idle priority, runs "ssh-keygen -A" for the RSA key
//     (and any other type still missing), which takes seconds under
//     emulation and so is kept off the way to the first SSH login. sshd
//     starts with the keys there are and loads the host keys again for
//     every connection, so the RSA key is offered as soon as it exists.
//   - AptLists: the package lists in /var/lib/apt/lists (the directory and
//     partial/ stay), apt's caches (*.bin) and downloaded packages.
//
// Always: /etc/resolv.conf when it is a regular file left by the build (a
// symbolic link, such as systemd-resolved's, stays), /usr/sbin/policy-rc.d,
// the contents of /tmp and /var/tmp, /root/.bash_history, and the contents
// of the *.log files under /var/log (the files stay). /etc/hostname is the
// Hostname stage's and is not touched.
type Cleanup struct{ Opts manifest.Cleanup }

// sshKeygenUnit makes the fast host keys on the first boot of an image,
// before sshd starts: Ed25519 and ECDSA keys take milliseconds even under
// emulation. It runs only when the image has no host key at all, as
// "ssh-keygen -A" did, so a machine keeps the keys it has. It needs only a
// writable /etc and the kernel's random generator, so it runs as soon as
// the local filesystems are mounted, beside the rest of early boot,
// instead of after basic.target as ssh.service does.
const sshKeygenUnit = `[Unit]
Description=Generate SSH host keys on first boot
Documentation=man:ssh-keygen(1)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
DefaultDependencies=no
After=local-fs.target
Before=ssh.service ssh.socket shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -C "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -C "" -f /etc/ssh/ssh_host_ecdsa_key
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`

// sshKeygenRSAUnit makes the RSA host key (and any other default type still
// missing) after sshd has started, at idle priority: a 3072-bit RSA key
// takes about a second on hardware and over ten under emulation, time a
// first login need not wait for. "ssh-keygen -A" writes each key to a
// temporary file and renames it, so sshd never reads half a key.
const sshKeygenRSAUnit = `[Unit]
Description=Generate the SSH RSA host key on first boot
Documentation=man:ssh-keygen(1)
ConditionPathExists=!/etc/ssh/ssh_host_rsa_key
After=kiln-ssh-keygen.service ssh.service ssh.socket

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
Nice=19
IOSchedulingClass=idle
CPUSchedulingPolicy=idle
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`

const (
	sshKeygenUnitPath    = "/etc/systemd/system/kiln-ssh-keygen.service"
	sshKeygenRSAUnitPath = "/etc/systemd/system/kiln-ssh-keygen-rsa.service"
)

// Validate implements Stage: every combination of the switches is valid.
func (s *Cleanup) Validate() error { return nil }

// Run implements Stage.
func (s *Cleanup) Run(_ context.Context, env *Env) error {
	t := env.Tree
	if s.Opts.MachineID {
		if err := emptyMachineID(t); err != nil {
			return err
		}
		env.Logf("emptied /etc/machine-id")
	}
	if s.Opts.SSHHostKeys {
		n, err := removeGlob(t, "/etc/ssh", "ssh_host_*")
		if err != nil {
			return err
		}
		env.Logf("removed %d SSH host key files", n)
		if installed(t, "/usr/sbin/sshd") {
			if err := installSSHKeygen(t); err != nil {
				return err
			}
			env.Logf("enabled %s and %s to make host keys on first boot", sshKeygenUnitPath, sshKeygenRSAUnitPath)
		}
	}
	if s.Opts.AptLists {
		if err := emptyDir(t, "/var/lib/apt/lists", "partial", "lock"); err != nil {
			return err
		}
		if err := emptyDir(t, "/var/lib/apt/lists/partial"); err != nil {
			return err
		}
		for _, g := range []struct{ dir, pattern string }{
			{"/var/cache/apt", "*.bin"},
			{"/var/cache/apt/archives", "*.deb"},
			{"/var/cache/apt/archives/partial", "*"},
		} {
			if _, err := removeGlob(t, g.dir, g.pattern); err != nil {
				return err
			}
		}
		env.Logf("removed apt lists and caches")
	}
	if err := removeRegular(t, "/etc/resolv.conf"); err != nil {
		return err
	}
	for _, p := range []string{"/usr/sbin/policy-rc.d", "/root/.bash_history"} {
		if err := removeEntry(t, p); err != nil {
			return err
		}
	}
	for _, d := range []string{"/tmp", "/var/tmp"} {
		if err := emptyDir(t, d); err != nil {
			return err
		}
	}
	if err := truncateLogs(t); err != nil {
		return err
	}
	env.Logf("removed the build's resolv.conf, temporary files and logs")
	return nil
}

// installed says whether the absolute path p exists in the tree.
func installed(tree, p string) bool {
	host, err := ResolveInTree(tree, p)
	if err != nil {
		return false
	}
	_, err = os.Stat(host)
	return err == nil
}

// emptyMachineID leaves /etc/machine-id an empty file and points
// /var/lib/dbus/machine-id at it.
func emptyMachineID(tree string) error {
	host, err := resolveEntry(tree, "/etc/machine-id")
	if err != nil {
		return fmt.Errorf("/etc/machine-id: %w", err)
	}
	if fi, err := os.Lstat(host); err == nil && !fi.Mode().IsRegular() {
		if err := os.RemoveAll(host); err != nil {
			return fmt.Errorf("/etc/machine-id: %w", err)
		}
	}
	f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o444)
	if err != nil {
		return fmt.Errorf("emptying /etc/machine-id: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("emptying /etc/machine-id: %w", err)
	}
	dbus, err := resolveEntry(tree, "/var/lib/dbus/machine-id")
	if err != nil {
		return fmt.Errorf("/var/lib/dbus/machine-id: %w", err)
	}
	fi, err := os.Lstat(dbus)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("/var/lib/dbus/machine-id: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil
	}
	if err := os.RemoveAll(dbus); err != nil {
		return fmt.Errorf("/var/lib/dbus/machine-id: %w", err)
	}
	if err := os.Symlink("/etc/machine-id", dbus); err != nil {
		return fmt.Errorf("/var/lib/dbus/machine-id: %w", err)
	}
	return nil
}

// installSSHKeygen writes and enables the first-boot host key units, as
// "systemctl enable" would: a link in multi-user.target.wants.
func installSSHKeygen(tree string) error {
	for _, u := range []struct{ path, text string }{
		{sshKeygenUnitPath, sshKeygenUnit},
		{sshKeygenRSAUnitPath, sshKeygenRSAUnit},
	} {
		if err := WriteFile(tree, u.path, []byte(u.text), 0o644); err != nil {
			return err
		}
		if err := enableUnit(tree, u.path, "multi-user.target"); err != nil {
			return err
		}
	}
	return nil
}

// removeGlob removes the entries of the tree's directory dir whose names
// match pattern (links are removed, not followed) and returns how many. A
// dir that is itself a symbolic link is left alone.
func removeGlob(tree, dir, pattern string) (int, error) {
	host, err := resolveEntry(tree, dir)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", dir, err)
	}
	if fi, err := os.Lstat(host); err != nil || !fi.IsDir() {
		return 0, nil
	}
	entries, err := os.ReadDir(host)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		if ok, _ := filepath.Match(pattern, e.Name()); !ok {
			continue
		}
		if err := os.RemoveAll(filepath.Join(host, e.Name())); err != nil {
			return n, fmt.Errorf("removing %s/%s: %w", dir, e.Name(), err)
		}
		n++
	}
	return n, nil
}

// emptyDir removes everything in the tree's directory dir except the
// entries named in keep. A dir that is itself a symbolic link is left
// alone: what it points at is not the build's to clean.
func emptyDir(tree, dir string, keep ...string) error {
	host, err := resolveEntry(tree, dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if fi, err := os.Lstat(host); err != nil || !fi.IsDir() {
		return nil
	}
	entries, err := os.ReadDir(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for _, e := range entries {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(host, e.Name())); err != nil {
			return fmt.Errorf("removing %s/%s: %w", dir, e.Name(), err)
		}
	}
	return nil
}

// removeEntry removes the absolute path p from the tree (a link is removed,
// not followed); a missing entry is fine.
func removeEntry(tree, p string) error {
	host, err := resolveEntry(tree, p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := os.Remove(host); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}

// removeRegular removes p from the tree when it is a regular file.
func removeRegular(tree, p string) error {
	host, err := resolveEntry(tree, p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if fi, err := os.Lstat(host); err == nil && fi.Mode().IsRegular() {
		if err := os.Remove(host); err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	return nil
}

// truncateLogs empties every regular *.log file under /var/log, keeping the
// files (and their owners and modes) for the services that write them.
func truncateLogs(tree string) error {
	host, err := ResolveInTree(tree, "/var/log")
	if err != nil {
		return fmt.Errorf("/var/log: %w", err)
	}
	err = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".log") {
			return nil
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("emptying the logs in /var/log: %w", err)
	}
	return nil
}
