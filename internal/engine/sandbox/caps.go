package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// keptCapabilities are the capabilities a command keeps inside its user
// namespace — where they reach only the tree's files and the sandbox's own
// processes. Package installation needs to own, chmod and setuid files and
// to change ids; dpkg also chroots into the tree in HostTools mode.
// Everything else (CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE,
// CAP_SYS_BOOT, CAP_NET_ADMIN, CAP_NET_RAW, CAP_MKNOD, CAP_SYS_TIME, …) is
// dropped from the bounding set, so no later exec regains it.
func keptCapabilities(m Mode) []uintptr {
	kept := []uintptr{
		unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER,
		unix.CAP_FSETID, unix.CAP_KILL, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP,
		unix.CAP_NET_BIND_SERVICE, unix.CAP_AUDIT_WRITE,
		// Only over the sandbox's own network namespace, which has nothing
		// but a loopback that is down: nft -c checks a ruleset through it.
		unix.CAP_NET_ADMIN,
	}
	if m == HostTools {
		kept = append(kept, unix.CAP_SYS_CHROOT)
	}
	return kept
}

// dropCapabilities removes every capability but kept from this thread's
// bounding, effective, permitted and inheritable sets and clears its
// ambient set.
func dropCapabilities(kept []uintptr) error {
	keep := map[uintptr]bool{}
	var mask [2]uint32
	for _, c := range kept {
		keep[c] = true
		mask[c/32] |= 1 << (c % 32)
	}
	// Up to the kernel's last capability, which may be newer than ours:
	// PR_CAPBSET_DROP answers EINVAL past it.
	for c := uintptr(0); c < 64; c++ {
		if keep[c] {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0)
		if err == unix.EINVAL && c > unix.CAP_LAST_CAP-8 {
			break
		}
		if err != nil {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: mask[0], Permitted: mask[0], Inheritable: 0},
		{Effective: mask[1], Permitted: mask[1], Inheritable: 0},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
