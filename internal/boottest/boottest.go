// Package boottest boots a disk image in QEMU and checks it over SSH: the
// proof that an image does not merely build but starts, reaches its
// network and lets its user in.
//
// The image is never modified (QEMU runs it with snapshot=on), nor is an
// ISO attached as a CD-ROM; blank disks the guest may install onto are
// temporary files of the machine's own. KVM is used
// when /dev/kvm works and the guest's architecture is the host's;
// otherwise QEMU emulates the machine with TCG, which takes minutes to
// boot a Debian image rather than seconds.
//
// x86_64 machines are qemu-system-x86_64's q35 (or pc) with SeaBIOS or
// OVMF; aarch64 machines are qemu-system-aarch64's virt with the AAVMF
// UEFI firmware, the only firmware arm64 images boot with.
package boottest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-project/kiln/internal/emulation"
)

// Config says what to boot and how to log in.
type Config struct {
	// Image is the disk image (raw or qcow2). It may be empty when CDROM
	// is set.
	Image string
	// CDROM is an ISO attached read-only as a CD-ROM drive (AHCI), which
	// the machine boots from when no disk before it is bootable.
	CDROM string
	// Drives are further images (raw, qcow2 or ISO) attached read-only as
	// virtio disks after the image, never booted from: a cloud-init NoCloud
	// seed, a config drive.
	Drives []string
	// BlankDisks are the sizes in bytes of empty, writable virtio disks
	// attached after Image, in the boot order before CDROM: a machine that
	// installs onto one reboots into it. They are sparse files in the
	// machine's temporary directory, removed by Close.
	BlankDisks []int64
	// Arch is the guest's architecture: ArchX86_64 (the default) or
	// ArchAarch64.
	Arch string
	// Firmware is "bios" (SeaBIOS, the default on x86_64) or "uefi"
	// (OVMF; AAVMF on aarch64, where it is the default and the only
	// choice).
	Firmware string
	// SSHKey is the private key that logs in as User.
	SSHKey string
	// User is the user to log in as (default root).
	User string
	// Timeout bounds the wait for SSH (default 5 minutes with KVM; without
	// it 10 minutes for x86_64 and 20 for aarch64).
	Timeout time.Duration
	// Memory is the guest's memory in MiB (default 1024).
	Memory int
	// Log, when set, receives the serial console as it is written.
	Log io.Writer
	// OVMFCode and OVMFVars override where the UEFI firmware is looked
	// for: the code and the variable store template (AAVMF's on aarch64).
	OVMFCode, OVMFVars string
	// Machine is QEMU's machine type. On x86_64 "q35" (the default) or
	// "pc" (i440fx, what qemu-system-x86_64 gives when none is named); on
	// aarch64 "virt", the only one.
	Machine string
	// NIC is the network card: NICVirtio (the default) or NICDefault,
	// the card QEMU gives when none is named (e1000 on pc, e1000e on q35).
	NIC string
}

// Architectures a machine may have, named as kiln names them.
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
)

// Network cards a machine may get.
const (
	NICVirtio  = "virtio"
	NICDefault = "default"
)

// Machine is a running virtual machine.
type Machine struct {
	cfg     Config
	dir     string
	port    int
	cmd     *exec.Cmd
	console *consoleLog
	stderr  *bytes.Buffer
	done    chan struct{} // closed when QEMU has exited
	waitErr error
	kvm     bool
	// started is when QEMU was started, sshAfter how long after it SSH
	// first let the user in.
	started  time.Time
	sshAfter time.Duration

	closeOnce sync.Once
	closeErr  error
}

// archSpec is how machines of one architecture are made.
type archSpec struct {
	// qemu is the system emulator and qemuPackage the Debian package
	// that installs it.
	qemu, qemuPackage string
	// machines are the machine types accepted, the default first.
	machines []string
	// firmwares are the firmwares the machine boots with, the default
	// first.
	firmwares []string
	// uefi are the places distributions install the UEFI firmware, code
	// and variable store template in pairs; uefiName and uefiPackage
	// name it and Debian's package of it in errors.
	uefi                  [][2]string
	uefiName, uefiPackage string
	// tcgCPU is the CPU model emulated without KVM.
	tcgCPU string
	// tcgTimeout is the default wait for SSH without KVM.
	tcgTimeout time.Duration
}

var archSpecs = map[string]archSpec{
	ArchX86_64: {
		qemu: "qemu-system-x86_64", qemuPackage: "qemu-system-x86",
		machines:  []string{"q35", "pc"},
		firmwares: []string{"bios", "uefi"},
		uefi: [][2]string{
			{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
			{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
			{"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"},
			{"/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd"},
		},
		uefiName: "OVMF", uefiPackage: "ovmf",
		tcgCPU:     "max",
		tcgTimeout: 10 * time.Minute,
	},
	ArchAarch64: {
		qemu: "qemu-system-aarch64", qemuPackage: "qemu-system-arm",
		machines:  []string{"virt"},
		firmwares: []string{"uefi"},
		// The virt machine maps both flash devices at 64 MiB; all of
		// these are padded to it.
		uefi: [][2]string{
			// Debian and Ubuntu (qemu-efi-aarch64).
			{"/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"},
			// Fedora and its relatives (edk2-aarch64).
			{"/usr/share/edk2/aarch64/QEMU_EFI-silent-pflash.raw", "/usr/share/edk2/aarch64/vars-template-pflash.raw"},
			{"/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw", "/usr/share/edk2/aarch64/vars-template-pflash.raw"},
			// Arch Linux (edk2-aarch64).
			{"/usr/share/edk2/aarch64/QEMU_CODE.fd", "/usr/share/edk2/aarch64/QEMU_VARS.fd"},
			// openSUSE (qemu-uefi-aarch64).
			{"/usr/share/qemu/aavmf-aarch64-code.bin", "/usr/share/qemu/aavmf-aarch64-vars.bin"},
		},
		uefiName: "AAVMF", uefiPackage: "qemu-efi-aarch64",
		// The fastest model that Debian 12's arm64 kernels boot, measured
		// under TCG on an x86_64 host. Plain "max" takes 2.4 times as
		// long as the rest: it emulates pointer authentication with the
		// QARMA cipher; "pauth-impdef=on" swaps in QEMU's cheap one. A
		// kernel booting into a fork- and exec-heavy userland took the
		// same CPU time on cortex-a57, cortex-a72, neoverse-n1 and
		// "max,pauth-impdef=on" (best of five within 2%), but a whole
		// Debian 12 cloud image reached SSH in 61 and 65 s on the latter
		// and 81 s on cortex-a57: on a Cortex-A57 the kernel turns on page
		// table isolation (KPTI) and errata and Spectre-v2 workarounds,
		// on "max" it finds CSV3 (no KPTI), hardware dirty-bit
		// management and LSE atomics, each cheaper to emulate.
		tcgCPU:     "max,pauth-impdef=on",
		tcgTimeout: 20 * time.Minute,
	},
}

// spec returns the machine's architecture's archSpec; cfg has been
// validated.
func (c Config) spec() archSpec { return archSpecs[c.Arch] }

// KVMUsableFor reports whether a machine of arch runs with KVM here: the
// host is of that architecture and /dev/kvm can be opened.
func KVMUsableFor(arch string) bool {
	if arch == "" {
		arch = ArchX86_64
	}
	return arch == emulation.Host() && KVMUsable()
}

func (c Config) withDefaults() Config {
	if c.Arch == "" {
		c.Arch = ArchX86_64
	}
	spec, known := archSpecs[c.Arch]
	if c.Firmware == "" && known {
		c.Firmware = spec.firmwares[0]
	}
	if c.User == "" {
		c.User = "root"
	}
	if c.Memory == 0 {
		c.Memory = 1024
	}
	if c.Machine == "" && known {
		c.Machine = spec.machines[0]
	}
	if c.NIC == "" {
		c.NIC = NICVirtio
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Image == "" && c.CDROM == "" {
		errs = append(errs, errors.New("no image to boot"))
	} else if c.Image != "" {
		if fi, err := os.Stat(c.Image); err != nil || !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("image %q is not a readable file", c.Image))
		}
	}
	for i, d := range c.Drives {
		if fi, err := os.Stat(d); err != nil || !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("drive %d: %q is not a readable file", i, d))
		}
	}
	if c.CDROM != "" {
		if fi, err := os.Stat(c.CDROM); err != nil || !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("cdrom %q is not a readable file", c.CDROM))
		}
	}
	for i, size := range c.BlankDisks {
		if size < 1<<20 || size%512 != 0 {
			errs = append(errs, fmt.Errorf("blank disk %d: size %d is not a multiple of 512 bytes of at least 1 MiB", i, size))
		}
	}
	spec, known := archSpecs[c.Arch]
	switch {
	case !known:
		hint := ""
		if c.Arch == "arm64" || c.Arch == "amd64" {
			hint = " (kiln names architectures as the kernel does: aarch64, x86_64)"
		}
		errs = append(errs, fmt.Errorf("arch %q: expected %s or %s%s", c.Arch, ArchX86_64, ArchAarch64, hint))
	case c.Arch == ArchAarch64 && c.Firmware == "bios":
		errs = append(errs, errors.New(`firmware "bios": aarch64 machines boot with UEFI only (use uefi)`))
	case !slices.Contains(spec.firmwares, c.Firmware):
		errs = append(errs, fmt.Errorf("firmware %q: expected %s", c.Firmware, orList(spec.firmwares)))
	}
	if c.SSHKey == "" {
		errs = append(errs, errors.New("no SSH private key to log in with"))
	} else if _, err := os.Stat(c.SSHKey); err != nil {
		errs = append(errs, fmt.Errorf("SSH key: %w", err))
	}
	if known && !slices.Contains(spec.machines, c.Machine) {
		errs = append(errs, fmt.Errorf("machine %q: expected %s for %s", c.Machine, orList(spec.machines), c.Arch))
	}
	if c.NIC != NICVirtio && c.NIC != NICDefault {
		errs = append(errs, fmt.Errorf("nic %q: expected %s or %s", c.NIC, NICVirtio, NICDefault))
	}
	if c.Memory < 128 {
		errs = append(errs, fmt.Errorf("memory %d MiB is too little to boot (at least 128)", c.Memory))
	}
	if strings.ContainsAny(c.User, "@ \t\n") || strings.HasPrefix(c.User, "-") {
		errs = append(errs, fmt.Errorf("user %q is not a user name", c.User))
	}
	return errors.Join(errs...)
}

// KVMUsable reports whether /dev/kvm can be opened for use.
func KVMUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Boot starts the image and waits until SSH lets User in. The machine runs
// until Close, or until ctx is done. On failure nothing is left running
// and the error ends with the last lines of the serial console.
func Boot(ctx context.Context, cfg Config) (*Machine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("boot test: %w", err)
	}
	m, err := start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := m.waitSSH(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func start(ctx context.Context, cfg Config) (m *Machine, err error) {
	spec := cfg.spec()
	for _, tool := range []struct{ name, pkg string }{{spec.qemu, spec.qemuPackage}, {"ssh", "openssh-client"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			return nil, fmt.Errorf("boot test: %s is not installed (Debian package %s): %w", tool.name, tool.pkg, err)
		}
	}
	dir, err := os.MkdirTemp("", "kiln-boottest-*")
	if err != nil {
		return nil, fmt.Errorf("boot test: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("boot test: finding a free port for SSH: %w", err)
	}
	kvm := KVMUsableFor(cfg.Arch)
	args, err := qemuArgs(cfg, dir, port, kvm)
	if err != nil {
		return nil, fmt.Errorf("boot test: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
		if !kvm {
			cfg.Timeout = spec.tcgTimeout
		}
	}
	console, err := newConsoleLog(filepath.Join(dir, "console.log"), cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("boot test: %w", err)
	}
	cmd := exec.CommandContext(ctx, spec.qemu, args...)
	cmd.Stdout = console
	stderr := &bytes.Buffer{}
	cmd.Stderr = &lockedWriter{w: stderr, mu: &console.mu}
	// Its own process group, killed with kiln: QEMU never outlives us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		console.Close()
		return nil, fmt.Errorf("boot test: starting %s: %w", spec.qemu, err)
	}
	m = &Machine{cfg: cfg, dir: dir, port: port, cmd: cmd, console: console, stderr: stderr, done: make(chan struct{}), kvm: kvm, started: time.Now()}
	go func() {
		m.waitErr = cmd.Wait()
		close(m.done)
	}()
	return m, nil
}

// qemuArgs is the argument vector of the machine's QEMU (after the
// program's name), with kvm saying whether KVM accelerates it. Its files
// (blank disks, the private UEFI variable store) are made in dir; the
// guest's SSH port is forwarded to port on the host.
func qemuArgs(cfg Config, dir string, port int, kvm bool) ([]string, error) {
	spec := cfg.spec()
	var args []string
	switch {
	case cfg.Arch == ArchX86_64 && kvm:
		// QEMU tries accelerators in order: KVM, else TCG; "max" is the
		// host's CPU under KVM and everything TCG emulates under TCG.
		args = append(args, "-accel", "kvm", "-accel", "tcg")
	case kvm:
		// An aarch64 host: "-cpu host" below, which TCG cannot fall
		// back to.
		args = append(args, "-accel", "kvm")
	default:
		args = append(args, "-accel", "tcg")
	}
	args = append(args, "-nodefaults", "-display", "none")
	switch cfg.Arch {
	case ArchX86_64:
		args = append(args, "-vga", "std", "-machine", cfg.Machine, "-cpu", spec.tcgCPU)
	case ArchAarch64:
		if kvm {
			// The host's interrupt controller: GICv3 on most arm64
			// servers, where virt's default, GICv2, cannot be had.
			args = append(args, "-machine", cfg.Machine+",gic-version=host", "-cpu", "host")
		} else {
			args = append(args, "-machine", cfg.Machine, "-cpu", spec.tcgCPU)
		}
	}
	// The console is the first serial port: the 16550 UART (ttyS0) on
	// x86_64, the PL011 (ttyAMA0) on aarch64's virt.
	args = append(args,
		"-m", strconv.Itoa(cfg.Memory), "-smp", "2",
		"-serial", "stdio", "-monitor", "none")
	args = append(args, nicArgs(cfg, port)...)
	args = append(args, "-device", "virtio-rng-pci")
	drives, err := driveArgs(cfg, dir)
	if err != nil {
		return nil, err
	}
	args = append(args, drives...)
	if cfg.Firmware == "uefi" {
		code, vars, err := ovmf(cfg)
		if err != nil {
			return nil, err
		}
		varsCopy := filepath.Join(dir, filepath.Base(vars))
		if err := copyFile(varsCopy, vars); err != nil {
			return nil, fmt.Errorf("copying the UEFI variable store: %w", err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+qemuEscape(code),
			"-drive", "if=pflash,format=raw,unit=1,file="+qemuEscape(varsCopy))
	}
	return args, nil
}

// nicArgs are the arguments of the machine's network card: user-mode
// networking with the guest's SSH port forwarded to port on the host.
func nicArgs(cfg Config, port int) []string {
	user := fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port)
	if cfg.NIC == NICDefault {
		// -nic without model= gives the machine type's default card.
		return []string{"-nic", user}
	}
	return []string{"-netdev", user, "-device", "virtio-net-pci,netdev=n0"}
}

// driveArgs are the QEMU arguments of the machine's drives, in boot order:
// the image (a snapshot), the blank disks (made in dir), the CD-ROM; the
// read-only drives are not in the boot order.
func driveArgs(cfg Config, dir string) ([]string, error) {
	var args []string
	boot := 0
	if cfg.Image != "" {
		format, err := imageFormat(cfg.Image)
		if err != nil {
			return nil, err
		}
		args = append(args,
			"-drive", "file="+qemuEscape(cfg.Image)+",format="+format+",if=none,id=image,snapshot=on",
			"-device", fmt.Sprintf("virtio-blk-pci,drive=image,bootindex=%d", boot))
		boot++
	}
	for i, d := range cfg.Drives {
		format, err := imageFormat(d)
		if err != nil {
			return nil, err
		}
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=%s,if=none,id=drive%d,readonly=on", qemuEscape(d), format, i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=drive%d", i))
	}
	for i, size := range cfg.BlankDisks {
		file := filepath.Join(dir, fmt.Sprintf("blank%d.raw", i))
		f, err := os.Create(file)
		if err != nil {
			return nil, err
		}
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("making blank disk %d: %w", i, err)
		}
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=blank%d,discard=unmap,detect-zeroes=unmap", qemuEscape(file), i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=blank%d,bootindex=%d", i, boot))
		boot++
	}
	if cfg.CDROM != "" {
		args = append(args,
			"-drive", "file="+qemuEscape(cfg.CDROM)+",format=raw,if=none,id=cdrom,media=cdrom,readonly=on")
		if cfg.Arch == ArchAarch64 {
			// virt has no AHCI nor IDE: the CD-ROM is a SCSI one.
			args = append(args,
				"-device", "virtio-scsi-pci,id=scsi0",
				"-device", fmt.Sprintf("scsi-cd,drive=cdrom,bus=scsi0.0,bootindex=%d", boot))
		} else {
			args = append(args, "-device", fmt.Sprintf("ide-cd,drive=cdrom,bus=ide.0,bootindex=%d", boot))
		}
	}
	return args, nil
}

// KVM reports whether the machine runs with KVM (else under TCG).
func (m *Machine) KVM() bool { return m.kvm }

// Port is the host port forwarded to the guest's SSH port.
func (m *Machine) Port() int { return m.port }

// Console returns the serial console output so far.
func (m *Machine) Console() string { return m.console.String() }

// ConsoleTail returns the last n lines of the serial console.
func (m *Machine) ConsoleTail(n int) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(m.Console(), "\r", ""), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exited returns QEMU's exit error if it has exited.
func (m *Machine) exited() (bool, error) {
	select {
	case <-m.done:
		return true, m.waitErr
	default:
		return false, nil
	}
}

func (m *Machine) failure(format string, args ...any) error {
	m.console.mu.Lock()
	qerr := strings.TrimSpace(m.stderr.String())
	m.console.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if qerr != "" {
		msg += "\nqemu: " + qerr
	}
	name := m.cfg.Image
	if name == "" {
		name = m.cfg.CDROM
	}
	what := m.cfg.Firmware + ", " + filepath.Base(name)
	if m.cfg.Arch != ArchX86_64 {
		what = m.cfg.Arch + ", " + what
	}
	return fmt.Errorf("boot test (%s): %s\nlast lines of the serial console:\n%s", what, msg, m.ConsoleTail(40))
}

// sshArgs are the ssh options that log in to the machine non-interactively.
func (m *Machine) sshArgs(connectTimeout int) []string {
	return []string{
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=" + strconv.Itoa(connectTimeout),
		"-o", "ServerAliveInterval=10",
		"-F", "/dev/null",
		"-i", m.cfg.SSHKey,
		"-p", strconv.Itoa(m.port),
		"-l", m.cfg.User,
		"127.0.0.1",
	}
}

// SSHAfter is how long after QEMU started SSH first let the user in: the
// boot time a user waits for, firmware, boot loader, kernel and userspace
// included.
func (m *Machine) SSHAfter() time.Duration { return m.sshAfter }

// sshProbeInterval is how often waitSSH looks for sshd's banner: the
// resolution of SSHAfter.
const sshProbeInterval = 250 * time.Millisecond

// waitSSH polls until `true` runs over SSH. Until sshd answers, it only
// looks for the server's banner on the forwarded port, which is cheap
// enough to do four times a second (QEMU accepts the connection itself
// and closes it or stays silent while nothing listens in the guest), so
// the time to SSH is measured to a quarter of a second, not to the
// backoff of full ssh attempts.
func (m *Machine) waitSSH(ctx context.Context) error {
	start := time.Now()
	deadline := start.Add(m.cfg.Timeout)
	delay := time.Second
	var last string
	for {
		if exited, err := m.exited(); exited {
			return m.failure("QEMU exited before SSH answered: %v", err)
		}
		if !sshBanner(ctx, m.port) {
			last = "no SSH banner yet"
			if time.Now().After(deadline) {
				return m.failure("SSH did not let %s in within %s (last attempt: %s)", m.cfg.User, m.cfg.Timeout, last)
			}
			select {
			case <-ctx.Done():
				return m.failure("waiting for SSH: %v", ctx.Err())
			case <-m.done:
			case <-time.After(sshProbeInterval):
			}
			continue
		}
		attempt, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(attempt, "ssh", append(m.sshArgs(10), "--", "true")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err == nil {
			m.sshAfter = time.Since(m.started)
			return nil
		}
		last = strings.TrimSpace(out.String())
		if ctx.Err() != nil {
			return m.failure("waiting for SSH: %v", ctx.Err())
		}
		if time.Now().After(deadline) {
			return m.failure("SSH did not let %s in within %s (last attempt: %s)", m.cfg.User, m.cfg.Timeout, last)
		}
		select {
		case <-ctx.Done():
			return m.failure("waiting for SSH: %v", ctx.Err())
		case <-m.done:
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 5*time.Second)
	}
}

// sshBanner reports whether an SSH server greets a connection to port on
// the loopback address within a second.
func sshBanner(ctx context.Context, port int) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "SSH-"
}

// BootTimes is systemd's account of the boot, from "systemd-analyze" on
// the machine: the line "Startup finished in 1.2s (kernel) + 9.8s
// (userspace) = 11.0s" (with firmware and loader times under UEFI). It is
// only there once systemd has finished starting up.
func (m *Machine) BootTimes(ctx context.Context) (string, error) {
	out, err := m.Run(ctx, "systemd-analyze")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(line), nil
}

// Run runs argv on the machine over SSH, each argument quoted for the
// remote shell, and returns its standard output. A failure carries its
// standard error.
func (m *Machine) Run(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("boot test: no command to run")
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = ShellQuote(a)
	}
	cmd := exec.CommandContext(ctx, "ssh", append(m.sshArgs(30), "--", strings.Join(quoted, " "))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return stdout.String(), fmt.Errorf("running %s on the machine: %w: %s", strings.Join(quoted, " "), err, msg)
		}
		return stdout.String(), fmt.Errorf("running %s on the machine: %w", strings.Join(quoted, " "), err)
	}
	return stdout.String(), nil
}

// WaitOutput runs argv on the machine until its trimmed standard output is
// want, and returns it. Failures in between — SSH refused while the guest
// reboots, the command failing — are retried until timeout; QEMU exiting
// ends the wait. It is how a test waits for a state the guest reaches on
// its own, such as an installer rebooting into the installed system.
func (m *Machine) WaitOutput(ctx context.Context, timeout time.Duration, want string, argv ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if exited, err := m.exited(); exited {
			return last, m.failure("QEMU exited while waiting for %q to print %q: %v", strings.Join(argv, " "), want, err)
		}
		attempt, cancel := context.WithTimeout(ctx, 40*time.Second)
		out, err := m.Run(attempt, argv...)
		cancel()
		if err == nil {
			last = strings.TrimSpace(out)
			if last == want {
				return last, nil
			}
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return last, m.failure("waiting for %q to print %q: %v", strings.Join(argv, " "), want, ctx.Err())
		}
		if time.Now().After(deadline) {
			return last, m.failure("%q did not print %q within %s (last: %s)", strings.Join(argv, " "), want, timeout, last)
		}
		select {
		case <-ctx.Done():
		case <-m.done:
		case <-time.After(3 * time.Second):
		}
	}
}

// ShellQuote quotes s as one word for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Close powers the machine off (QEMU is killed: the image is a snapshot, so
// nothing is lost) and removes its temporary files, blank disks included.
// It may be called more than once.
func (m *Machine) Close() error {
	m.closeOnce.Do(func() {
		if exited, _ := m.exited(); !exited {
			syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-m.done
		}
		m.closeErr = m.console.Close()
		if err := os.RemoveAll(m.dir); err != nil && m.closeErr == nil {
			m.closeErr = err
		}
	})
	return m.closeErr
}

// imageFormat tells qcow2 from raw by the qcow2 magic.
func imageFormat(image string) (string, error) {
	f, err := os.Open(image)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if n, _ := f.ReadAt(magic, 0); n == 4 && string(magic) == "QFI\xfb" {
		return "qcow2", nil
	}
	return "raw", nil
}

// qemuEscape doubles commas, QEMU's escape inside option values.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ovmf returns the UEFI firmware of the machine's architecture: its code
// and the template of its variable store.
func ovmf(cfg Config) (code, vars string, err error) {
	return findFirmware(cfg, cfg.spec())
}

// findFirmware returns the UEFI firmware cfg names, else the first of
// spec's whose code and variable store template both exist.
func findFirmware(cfg Config, spec archSpec) (code, vars string, err error) {
	if cfg.OVMFCode != "" || cfg.OVMFVars != "" {
		if cfg.OVMFCode == "" || cfg.OVMFVars == "" {
			return "", "", fmt.Errorf("give both the %s code and variables files, or neither", spec.uefiName)
		}
		return cfg.OVMFCode, cfg.OVMFVars, nil
	}
	for _, c := range spec.uefi {
		if _, err := os.Stat(c[0]); err != nil {
			continue
		}
		if _, err := os.Stat(c[1]); err != nil {
			continue
		}
		return c[0], c[1], nil
	}
	return "", "", fmt.Errorf("no %s firmware found to boot %s with UEFI: install the %s package (looked for %s)",
		spec.uefiName, cfg.Arch, spec.uefiPackage, spec.uefi[0][0])
}

// copyFile copies src to a new file dst, readable only by its owner.
// AAVMF's variable store is 64 MiB: it is streamed, not read whole.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// consoleLog keeps the serial console in a file (and copies it to an
// optional writer as it arrives).
type consoleLog struct {
	mu   sync.Mutex
	f    *os.File
	tee  io.Writer
	path string
}

func newConsoleLog(path string, tee io.Writer) (*consoleLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &consoleLog{f: f, tee: tee, path: path}, nil
}

func (c *consoleLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tee != nil {
		c.tee.Write(p) // a failing log must not stop the machine
	}
	if c.f == nil {
		return len(p), nil
	}
	return c.f.Write(p)
}

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := os.ReadFile(c.path)
	if err != nil {
		return ""
	}
	return string(data)
}

func (c *consoleLog) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
