package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls are refused with EPERM in every sandbox: nothing a
// package installation or an image tool does needs them, and each is a
// way out of, or through, a sandbox: new mounts or namespaces, another
// process's memory, the kernel's keyrings, modules, kexec, BPF, the
// clock, swap, reboot.
var deniedSyscalls = []string{
	"mount", "umount2", "umount", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
	"fsmount", "fspick", "mount_setattr",
	"unshare", "setns",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"kexec_load", "kexec_file_load", "reboot",
	"init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "userfaultfd",
	"keyctl", "add_key", "request_key",
	"swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"syslog", "iopl", "ioperm", "open_by_handle_at",
	"lookup_dcookie", "nfsservctl", "uselib", "vhangup",
}

// filterFor assembles the seccomp program for the native architecture
// (and, on x86_64, for the i386 ABI, which can be reached from a 64-bit
// process and would otherwise bypass the list). The x32 ABI is refused
// whole; an unknown architecture kills the process.
func filterFor(goarch string) ([]bpf.RawInstruction, error) {
	var abis []*arch.Info
	switch goarch {
	case "amd64":
		abis = []*arch.Info{arch.X86_64, arch.I386}
	case "arm64":
		abis = []*arch.Info{arch.AARCH64}
	default:
		return nil, fmt.Errorf("no seccomp filter for %s", goarch)
	}
	const (
		archOffset  = 4 // struct seccomp_data.arch
		nrOffset    = 0 // struct seccomp_data.nr
		retAllow    = unix.SECCOMP_RET_ALLOW
		retEPERM    = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		retENOSYS   = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		retKill     = unix.SECCOMP_RET_KILL_PROCESS
		x32Bit      = 0x40000000
		maxSkipping = 255
	)
	// One block per ABI: [jne arch → next block] ld nr; (x32 check);
	// jeq each denied nr → EPERM; ret allow; EPERM: ret errno.
	var prog []bpf.Instruction
	for _, a := range abis {
		var nrs []uint32
		for _, name := range deniedSyscalls {
			if nr, ok := a.SyscallNames[name]; ok {
				nrs = append(nrs, uint32(nr))
			}
		}
		var block []bpf.Instruction
		block = append(block, bpf.LoadAbsolute{Off: nrOffset, Size: 4})
		if a == arch.X86_64 {
			block = append(block,
				bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
				bpf.RetConstant{Val: retENOSYS})
		}
		for j, nr := range nrs {
			// Jump to the EPERM return after the allow.
			skip := len(nrs) - j - 1 + 1
			block = append(block, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: uint8(skip)})
		}
		block = append(block, bpf.RetConstant{Val: retAllow}, bpf.RetConstant{Val: retEPERM})
		if len(block) > maxSkipping {
			return nil, fmt.Errorf("seccomp block too long")
		}
		prog = append(prog, bpf.LoadAbsolute{Off: archOffset, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(a.ID), SkipTrue: uint8(len(block))})
		prog = append(prog, block...)
	}
	prog = append(prog, bpf.RetConstant{Val: retKill})
	return bpf.Assemble(prog)
}

// loadSeccomp installs the filter on this thread (no_new_privs must be
// set already).
func loadSeccomp() error {
	raw, err := filterFor(runtime.GOARCH)
	if err != nil {
		return err
	}
	filters := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filters[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return errno
	}
	return nil
}
