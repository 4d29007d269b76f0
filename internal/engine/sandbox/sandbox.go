// Package sandbox runs commands on an image tree without the host's
// privileges. Everything that executes code from a tree — package
// maintainer scripts, update-initramfs, locale-gen, useradd, grub tools —
// runs through Run:
//
//   - in a new user namespace whose root is an unprivileged host uid range
//     (UIDBase … UIDBase+65535), so it has no capability on the host;
//   - with new mount, PID, network (loopback only, down), UTS, IPC and
//     cgroup namespaces;
//   - with pivot_root (never chroot) into a root that holds nothing of the
//     host: the tree itself, or, for tools that must come from the host
//     (mmdebstrap), a tmpfs with the host's /usr read-only and the tree at
//     /target;
//   - with the tree mounted through an idmapped mount, so files the
//     sandbox's root writes are owned by root on disk and the image keeps
//     the right owners without any chown afterwards;
//   - a minimal /dev (null zero full random urandom tty), a private /proc,
//     a read-only /sys and an empty /run;
//   - with no_new_privs, a reduced capability set (no CAP_SYS_ADMIN,
//     CAP_SYS_PTRACE, CAP_SYS_MODULE, …) and a seccomp filter that refuses
//     what a build never needs (mount in the tree, ptrace, kexec, bpf,
//     keyctl, module loading, reboot, …).
//
// Every mount lives in the command's own mount namespace and every process
// in its own PID namespace, so all of it disappears when the command
// exits, also when it or kiln is killed: nothing is left to clean up.
//
// The parent side (this file) prepares the mounts as detached file
// descriptors (open_tree, mount_setattr) and hands them to the child over
// a socket; the child side (child.go) is this same binary re-executed
// under a fixed argv[0] and assembles the root from those descriptors
// only, so it never looks up a host path with the host's permissions.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// UIDBase is the first host uid (and gid) of the range the sandbox's ids
// 0…65535 map to. It lies above any uid Debian hands out to users or
// system accounts and inside the range systemd leaves to containers.
const UIDBase = 1_879_048_192 - RangeSize

// RangeSize is how many ids the sandbox maps.
const RangeSize = 65536

// Mode says what the sandbox's root is.
type Mode int

const (
	// InTree: the tree itself is /. Used for tools of the image (its own
	// useradd, locale-gen, update-initramfs …), run by absolute path.
	InTree Mode = iota
	// HostTools: / is an empty tmpfs holding the host's /usr (read-only,
	// with the usrmerge links) and /etc (read-only), and the tree at
	// /target with /proc, /dev and /sys mounted inside it. Used for
	// mmdebstrap, which chroots into /target for the maintainer scripts.
	HostTools
)

// Bind is a host directory made visible read-only inside the sandbox.
type Bind struct {
	Host, Inside string
}

// Options describe one sandboxed command.
type Options struct {
	// Root is the tree (a directory on the host).
	Root string
	Mode Mode
	// Binds are extra read-only directories (HostTools mode only).
	Binds []Bind
	// Env is the whole environment (KEY=VALUE); nothing of the host's
	// leaks in. Nil means DefaultEnv.
	Env   []string
	Stdin io.Reader
	// Out receives stdout and stderr.
	Out io.Writer
}

// DefaultEnv is the environment every command gets unless Options.Env
// says otherwise.
var DefaultEnv = []string{
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C.UTF-8",
	"LANG=C.UTF-8",
	"HOME=/root",
	"DEBIAN_FRONTEND=noninteractive",
	"DEBCONF_NONINTERACTIVE_SEEN=true",
}

// initArg0 is the argv[0] under which this binary acts as the sandbox's
// init (see child.go).
const initArg0 = "kiln-sandbox-init"

// spec is what the parent sends the child, beside the mount descriptors.
type spec struct {
	Mode  Mode       `json:"mode"`
	Argv  []string   `json:"argv"`
	Env   []string   `json:"env"`
	Binds []bindSpec `json:"binds"` // in the order of their descriptors
}

type bindSpec struct {
	Inside string `json:"inside"`
	File   bool   `json:"file,omitempty"`
}

// hostEtc is what the host-tools root has of the host's /etc: what the
// dynamic linker, perl, dpkg and user look-ups read, nothing else (no
// apt credentials, no service configuration with secrets in it).
var hostEtc = []string{
	"passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	"alternatives", "dpkg", "perl", "localtime", "debian_version", "os-release",
}

// The order of the descriptors sent to the child.
const (
	fdTree     = iota
	fdDevFirst // then one per devNodes entry; in HostTools mode /usr and the binds follow
)

// devNodes are the only device nodes the sandbox has.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// Run runs argv inside the tree at root (InTree mode). argv[0] must be an
// absolute path. Output goes to out; stdin may be nil. Extra environment
// entries (KEY=VALUE) follow DefaultEnv.
func Run(ctx context.Context, root string, stdin io.Reader, out io.Writer, extraEnv []string, argv ...string) error {
	return Exec(ctx, Options{
		Root: root, Mode: InTree, Stdin: stdin, Out: out,
		Env: append(append([]string{}, DefaultEnv...), extraEnv...),
	}, argv...)
}

// Exec runs argv in a sandbox described by o.
func Exec(ctx context.Context, o Options, argv ...string) error {
	if len(argv) == 0 {
		return errors.New("sandbox: no command")
	}
	if !filepath.IsAbs(argv[0]) {
		return fmt.Errorf("sandbox: %q is not an absolute path; commands in the sandbox run by absolute path only", argv[0])
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("sandbox: %s is not a directory", root)
	}
	if o.Env == nil {
		o.Env = DefaultEnv
	}
	if o.Mode == InTree && len(o.Binds) > 0 {
		return errors.New("sandbox: binds are for the host-tools mode only")
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	parentSock := os.NewFile(uintptr(pair[0]), "sandbox-parent")
	childSock := os.NewFile(uintptr(pair[1]), "sandbox-child")
	defer parentSock.Close()

	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{initArg0}
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, out, out
	cmd.ExtraFiles = []*os.File{childSock}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | unix.CLONE_NEWCGROUP,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: UIDBase, Size: RangeSize}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: UIDBase, Size: RangeSize}},
		GidMappingsEnableSetgroups: true,
		// Become the namespace's root (the host's uid UIDBase): the
		// caller's own uid is not mapped in it.
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		childSock.Close()
		return fmt.Errorf("sandbox: starting %s: %w", argv[0], err)
	}
	childSock.Close()
	// From here on the child waits for its descriptors; if anything
	// fails, killing it ends the whole namespace.
	fail := func(err error) error {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("sandbox: %w", err)
	}
	fds, binds, err := prepareMounts(cmd.Process.Pid, root, o)
	if err != nil {
		return fail(err)
	}
	s := spec{Mode: o.Mode, Argv: argv, Env: o.Env, Binds: binds}
	msg, err := json.Marshal(s)
	if err != nil {
		closeAll(fds)
		return fail(err)
	}
	err = unix.Sendmsg(int(parentSock.Fd()), msg, unix.UnixRights(fds...), nil, 0)
	closeAll(fds)
	if err != nil {
		return fail(fmt.Errorf("handing the mounts to the sandbox: %w", err))
	}

	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// PID 1 of the namespace: killing it kills everything in it.
			cmd.Process.Kill()
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", argv[0], ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == setupFailed {
			return fmt.Errorf("%s: the sandbox could not be set up (see the log; `kiln doctor` checks this host)", argv[0])
		}
		return fmt.Errorf("%s (in the sandbox): %w", argv[0], err)
	}
	return nil
}

// setupFailed is the exit status of a child that could not build its root.
const setupFailed = 125

// prepareMounts makes the detached mounts the child assembles its root
// from: the tree, idmapped into the child's user namespace; the device
// nodes; in HostTools mode the host's /usr, part of its /etc and the binds,
// as read-only clones.
func prepareMounts(pid int, root string, o Options) (fds []int, binds []bindSpec, err error) {
	defer func() {
		if err != nil {
			closeAll(fds)
			fds, binds = nil, nil
		}
	}()
	userns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the sandbox's user namespace: %w", err)
	}
	defer unix.Close(userns)

	tree, err := clone(root, true)
	if err != nil {
		return nil, nil, fmt.Errorf("mounting the tree %s: %w", root, err)
	}
	fds = append(fds, tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(userns),
	}); err != nil {
		return nil, nil, fmt.Errorf("idmapping the tree %s (the kernel or its filesystem lacks idmapped mounts?): %w", root, err)
	}
	for _, n := range devNodes {
		fd, err := clone("/dev/"+n, false)
		if err != nil {
			return nil, nil, fmt.Errorf("/dev/%s: %w", n, err)
		}
		fds = append(fds, fd)
	}
	if o.Mode != HostTools {
		return fds, nil, nil
	}
	usr, err := readOnlyClone("/usr")
	if err != nil {
		return nil, nil, err
	}
	fds = append(fds, usr)
	for _, name := range hostEtc {
		fi, err := os.Stat("/etc/" + name)
		if err != nil {
			continue
		}
		fd, err := readOnlyClone("/etc/" + name)
		if err != nil {
			return nil, nil, err
		}
		fds = append(fds, fd)
		binds = append(binds, bindSpec{Inside: "/etc/" + name, File: !fi.IsDir()})
	}
	for _, b := range o.Binds {
		fd, err := readOnlyClone(b.Host)
		if err != nil {
			return nil, nil, err
		}
		fds = append(fds, fd)
		binds = append(binds, bindSpec{Inside: b.Inside})
	}
	return fds, binds, nil
}

func clone(path string, recursive bool) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.OpenTree(unix.AT_FDCWD, path, flags)
}

func readOnlyClone(path string) (int, error) {
	fd, err := clone(path, true)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{
		Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
	}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s read-only: %w", path, err)
	}
	return fd, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
