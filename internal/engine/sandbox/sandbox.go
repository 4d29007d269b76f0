// Package sandbox runs commands inside an image tree, never against the
// host: each command gets its own mount, PID, network, UTS and IPC
// namespaces, a private /proc, a /dev holding only the harmless device
// nodes, an empty /run and no network at all. Every mount lives in the
// command's own mount namespace, so it disappears with the command — also
// when the command, or kiln, is killed — and nothing is left to clean up.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// setup is run by sh inside the new namespaces, before chroot. It is a
// constant: the tree and the command arrive as positional parameters and
// are never part of the script's text.
const setup = `set -eu
root=$1; shift
mount --make-rprivate /
for d in proc dev sys run tmp; do [ -d "$root/$d" ] || mkdir -p "$root/$d"; done
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=16m kiln-dev "$root/dev"
for n in null zero full random urandom tty; do
	: >"$root/dev/$n"
	mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,nodev,mode=0755,size=64m kiln-run "$root/run"
mkdir -p "$root/run/lock"
exec chroot "$root" "$@"
`

// Env is the environment every command gets; nothing of the host's leaks in.
var Env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C.UTF-8",
	"LANG=C.UTF-8",
	"HOME=/root",
	"DEBIAN_FRONTEND=noninteractive",
	"DEBCONF_NONINTERACTIVE_SEEN=true",
}

// Run runs argv inside the tree at root. Output goes to out; stdin may be
// nil. Extra environment entries (KEY=VALUE) follow Env.
func Run(ctx context.Context, root string, stdin io.Reader, out io.Writer, extraEnv []string, argv ...string) error {
	if len(argv) == 0 {
		return errors.New("sandbox: no command")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return fmt.Errorf("sandbox: %s is not a directory", abs)
	}
	args := append([]string{"--mount", "--pid", "--net", "--uts", "--ipc", "--fork", "--kill-child",
		"--", "/bin/sh", "-c", setup, "kiln-sandbox", abs}, argv...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(append([]string{}, Env...), extraEnv...)
	cmd.Stdin = stdin
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", argv[0], ctx.Err())
		}
		return fmt.Errorf("%s (in the image tree): %w", argv[0], err)
	}
	return nil
}
