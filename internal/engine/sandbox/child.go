package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Any binary that links this package can act as the sandbox's init: Exec
// re-executes /proc/self/exe under argv[0] initArg0 in the new
// namespaces, and this init function takes over before main (or the test
// runner) starts. It never returns.
func init() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	// Capabilities, no_new_privs and the seccomp filter are set per
	// thread: do it all, and the final execve, on this one.
	runtime.LockOSThread()
	if err := child(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln sandbox: %v\n", err)
		os.Exit(setupFailed)
	}
}

// child runs as PID 1 of the new PID namespace, as root of the new user
// namespace. It receives the spec and the detached mounts on fd 3,
// assembles the new root from them, pivots into it, drops what the
// command must not have and executes it.
func child() error {
	sock := 3
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*256))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receiving the spec: %w", err)
	}
	unix.Close(sock)
	var s spec
	if err := json.Unmarshal(buf[:n], &s); err != nil {
		return fmt.Errorf("decoding the spec: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receiving the mounts: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return fmt.Errorf("receiving the mounts: %w", err)
	}
	want := fdDevFirst + len(devNodes)
	if s.Mode == HostTools {
		want += 1 + len(s.Binds)
	}
	if len(fds) != want || len(s.Argv) == 0 {
		return fmt.Errorf("received %d mounts, expected %d", len(fds), want)
	}

	// Nothing done from here on propagates to the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	// A scratch tmpfs to build the new root in. /tmp is the one host
	// directory every host lets anybody into.
	if err := unix.Mount("kiln-sandbox", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mounting a scratch tmpfs: %w", err)
	}
	newRoot := "/tmp/root"
	if err := os.Mkdir(newRoot, 0o755); err != nil {
		return err
	}
	devFDs := fds[fdDevFirst : fdDevFirst+len(devNodes)]
	switch s.Mode {
	case InTree:
		if err := attach(fds[fdTree], newRoot); err != nil {
			return fmt.Errorf("mounting the tree: %w", err)
		}
		if err := treeMounts(newRoot, devFDs, true); err != nil {
			return err
		}
	case HostTools:
		rest := fds[fdDevFirst+len(devNodes):]
		if err := hostToolsRoot(newRoot, fds[fdTree], devFDs, rest[0], s.Binds, rest[1:]); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %d", s.Mode)
	}

	if err := os.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The old root is now stacked on the new one: detach it, and with it
	// every path of the host.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if s.Mode == HostTools {
		if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making the tools root read-only: %w", err)
		}
	}
	if err := unix.Sethostname([]byte("kiln-build")); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return err
	}
	if err := dropCapabilities(keptCapabilities(s.Mode)); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := loadSeccomp(); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	err = syscall.Exec(s.Argv[0], s.Argv, s.Env)
	// Exec only returns on failure; by now the filter is in place, so
	// report it as the command's own failure.
	fmt.Fprintf(os.Stderr, "kiln sandbox: executing %s: %v\n", s.Argv[0], err)
	os.Exit(127)
	return nil
}

// attach mounts a detached mount at dir.
func attach(fd int, dir string) error {
	err := unix.MoveMount(fd, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH)
	unix.Close(fd)
	return err
}

// treeMounts gives the tree at root its /dev and, if all, its /proc, /sys
// and /run. Each must be a directory in the tree (created if missing): a
// symbolic link there would make the mount land wherever the link points.
func treeMounts(root string, devFDs []int, all bool) error {
	dirs := []string{"dev"}
	if all {
		dirs = append(dirs, "proc", "sys", "run")
	}
	for _, d := range dirs {
		p := filepath.Join(root, d)
		fi, err := os.Lstat(p)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("the tree's /%s is not a directory", d)
		}
	}
	dev := filepath.Join(root, "dev")
	if err := unix.Mount("kiln-dev", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for i, n := range devNodes {
		p := filepath.Join(dev, n)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := attach(devFDs[i], p); err != nil {
			return fmt.Errorf("/dev/%s: %w", n, err)
		}
	}
	if !all {
		// mmdebstrap makes the links and directories itself.
		return nil
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dev, "shm"), os.ModeSticky|0o777); err != nil {
		return err
	}
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	// sysfs may only be mounted where the kernel allows it (a network
	// namespace of our own); without it /sys stays an empty directory.
	_ = unix.Mount("sysfs", filepath.Join(root, "sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	run := filepath.Join(root, "run")
	if err := unix.Mount("kiln-run", run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64m"); err != nil {
		return fmt.Errorf("mounting /run: %w", err)
	}
	if err := os.Mkdir(filepath.Join(run, "lock"), 0o755); err != nil {
		return err
	}
	return os.Chmod(filepath.Join(run, "lock"), os.ModeSticky|0o777)
}

// hostToolsRoot assembles a root of the host's tools around the tree:
// /usr read-only, the usrmerge links as on the host, the tree at /target
// (with its own /dev), a private /proc, /dev and /tmp, and the binds (the
// few files of the host's /etc the tools read among them).
func hostToolsRoot(root string, tree int, devFDs []int, usr int, binds []bindSpec, bindFDs []int) error {
	if err := unix.Mount("kiln-root", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mounting the tools root: %w", err)
	}
	for _, d := range []string{"usr", "etc", "target", "proc", "dev", "tmp", "root", "run"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := attach(usr, filepath.Join(root, "usr")); err != nil {
		return fmt.Errorf("mounting /usr: %w", err)
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		target, err := os.Readlink("/" + l)
		if err != nil {
			if fi, serr := os.Lstat("/" + l); serr == nil && fi.IsDir() {
				return fmt.Errorf("the host's /%s is a directory, not a link into /usr: the sandbox needs a merged-/usr host (Debian 12 and later are)", l)
			}
			continue
		}
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			return err
		}
	}
	if err := attach(tree, filepath.Join(root, "target")); err != nil {
		return fmt.Errorf("mounting the tree: %w", err)
	}
	// The tree gets its /dev only: mmdebstrap unpacks base-files' /proc,
	// /sys and /run over the tree and must be able to set their owners
	// and times, which a mounted procfs or sysfs refuses. The tools root
	// binds the tree's /dev.
	if err := treeMounts(filepath.Join(root, "target"), devFDs, false); err != nil {
		return err
	}
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := unix.Mount(filepath.Join(root, "target", "dev"), filepath.Join(root, "dev"), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range []string{"tmp", "run"} {
		if err := unix.Mount("kiln-"+d, filepath.Join(root, d), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=256m"); err != nil {
			return fmt.Errorf("mounting /%s: %w", d, err)
		}
	}
	for i, b := range binds {
		inside := path.Clean("/" + b.Inside)
		dir := filepath.Join(root, inside)
		if !strings.HasPrefix(inside, "/target/") {
			// Outside the tree the tools root is ours: make the place.
			if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
				return err
			}
			var err error
			if b.File {
				err = os.WriteFile(dir, nil, 0o644)
			} else {
				err = os.Mkdir(dir, 0o755)
			}
			if err != nil {
				return err
			}
		} else if err := mkdirNoFollow(filepath.Join(root, "target"), strings.TrimPrefix(inside, "/target/")); err != nil {
			return err
		}
		if err := attach(bindFDs[i], dir); err != nil {
			return fmt.Errorf("mounting %s: %w", inside, err)
		}
		// A bind inside the tree is reached by the same path from the
		// tools and from inside the tree (after chroot /target).
		if rel, ok := strings.CutPrefix(inside, "/target/"); ok && !strings.Contains(rel, "/") {
			if err := os.Symlink(inside, filepath.Join(root, rel)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdirNoFollow creates rel below base, refusing any symbolic link on the
// way (the tree is not to be trusted).
func mkdirNoFollow(base, rel string) error {
	cur := base
	for _, elem := range strings.Split(rel, "/") {
		if elem == "" {
			continue
		}
		cur = filepath.Join(cur, elem)
		fi, err := os.Lstat(cur)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", cur)
		}
	}
	return nil
}
