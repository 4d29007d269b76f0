// Package emulation says whether this host can run the programs of an
// image's architecture, natively or through qemu-user, and registers
// qemu-user's binfmt_misc handlers when asked.
//
// A build runs the tree's own programs (maintainer scripts, useradd,
// update-initramfs, grub-mkimage) inside the sandbox, whose root holds
// nothing of the host. A foreign architecture's programs therefore run
// only through a binfmt_misc handler registered with the fix-binary (F)
// flag: the kernel opens the emulator when the handler is registered, so
// it need not exist inside the tree. Check demands exactly that, by
// executing a tiny program of the architecture, and Register sets it up
// from qemu-user-static's own handler definitions.
package emulation

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Arch is what kiln knows of one CPU architecture.
type Arch struct {
	// Name is kiln's name ("x86_64", "aarch64"); QEMU's is the same.
	Name string
	// GOARCH is Go's name ("amd64", "arm64"), also Debian's.
	GOARCH string
	// machine is the ELF e_machine value.
	machine uint16
	// code is a program that exits with status probeStatus.
	code []byte
}

// probeStatus is the exit status of the probe programs: a status that
// no failure to run them produces.
const probeStatus = 42

// arches are the architectures kiln builds for.
var arches = []Arch{
	{Name: "x86_64", GOARCH: "amd64", machine: 0x3e, code: []byte{
		0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
		0xbf, probeStatus, 0x00, 0x00, 0x00, // mov edi, 42
		0x0f, 0x05, // syscall
	}},
	{Name: "aarch64", GOARCH: "arm64", machine: 0xb7, code: []byte{
		0x40, 0x05, 0x80, 0xd2, // mov x0, #42
		0xa8, 0x0b, 0x80, 0xd2, // mov x8, #93 (exit)
		0x01, 0x00, 0x00, 0xd4, // svc #0
	}},
}

// Lookup returns the architecture kiln calls name.
func Lookup(name string) (Arch, bool) {
	for _, a := range arches {
		if a.Name == name {
			return a, true
		}
	}
	return Arch{}, false
}

// Host returns kiln's name of the host's architecture.
func Host() string {
	for _, a := range arches {
		if a.GOARCH == runtime.GOARCH {
			return a.Name
		}
	}
	return runtime.GOARCH
}

// Mode says how an architecture's programs run here.
type Mode string

const (
	Native   Mode = "native"
	Emulated Mode = "emulated"
)

// binfmtDir is where the kernel's binfmt_misc handlers are listed.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// handlerDefs is where qemu-user-static keeps its handler definitions
// (systemd's binfmt.d format: one ":name:type:offset:magic:mask:interpreter:flags" line).
const handlerDefs = "/usr/lib/binfmt.d"

// Check says whether programs of the architecture name run on this host,
// and how. The error names what is missing and the command that fixes it.
func Check(name string) (Mode, error) {
	a, ok := Lookup(name)
	if !ok {
		return "", fmt.Errorf("kiln knows no architecture %q (it knows x86_64 and aarch64)", name)
	}
	if a.Name == Host() {
		return Native, nil
	}
	fix := fmt.Sprintf("install qemu-user-static and register its handler with the F flag: run `kiln doctor --fix` as root")
	h, err := findHandler(a)
	if err != nil {
		return "", fmt.Errorf("%s programs cannot run on this %s host: %v; %s", a.Name, Host(), err, fix)
	}
	if !strings.Contains(h.flags, "F") {
		return "", fmt.Errorf("%s programs cannot run in kiln's build sandbox: the binfmt_misc handler %s was registered without the fix-binary (F) flag, so its emulator %s would have to exist inside every image tree; %s",
			a.Name, h.name, h.interpreter, fix)
	}
	if err := run(a); err != nil {
		return "", fmt.Errorf("%s programs cannot run on this %s host although the binfmt_misc handler %s is registered: %v; %s", a.Name, Host(), h.name, err, fix)
	}
	return Emulated, nil
}

// handler is one registered binfmt_misc handler.
type handler struct {
	name, interpreter, flags string
}

// findHandler returns the enabled handler that takes ELF programs of a.
func findHandler(a Arch) (handler, error) {
	if _, err := os.Stat(filepath.Join(binfmtDir, "status")); err != nil {
		return handler{}, fmt.Errorf("binfmt_misc is not mounted at %s", binfmtDir)
	}
	if b, err := os.ReadFile(filepath.Join(binfmtDir, "status")); err == nil && strings.TrimSpace(string(b)) != "enabled" {
		return handler{}, errors.New("binfmt_misc is disabled")
	}
	entries, err := os.ReadDir(binfmtDir)
	if err != nil {
		return handler{}, err
	}
	header := probeProgram(a)[:64]
	for _, e := range entries {
		if e.Name() == "status" || e.Name() == "register" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(binfmtDir, e.Name()))
		if err != nil {
			continue
		}
		h, magic, mask, offset, enabled := parseHandler(e.Name(), b)
		if enabled && matches(header, magic, mask, offset) {
			return h, nil
		}
	}
	return handler{}, fmt.Errorf("no binfmt_misc handler takes %s programs", a.Name)
}

// parseHandler reads one entry of binfmt_misc.
func parseHandler(name string, b []byte) (h handler, magic, mask []byte, offset int, enabled bool) {
	h.name = name
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "enabled":
			enabled = true
		case strings.HasPrefix(line, "interpreter "):
			h.interpreter = strings.TrimPrefix(line, "interpreter ")
		case strings.HasPrefix(line, "flags: "):
			h.flags = strings.TrimPrefix(line, "flags: ")
		case strings.HasPrefix(line, "offset "):
			fmt.Sscan(strings.TrimPrefix(line, "offset "), &offset)
		case strings.HasPrefix(line, "magic "):
			magic = unhex(strings.TrimPrefix(line, "magic "))
		case strings.HasPrefix(line, "mask "):
			mask = unhex(strings.TrimPrefix(line, "mask "))
		}
	}
	return h, magic, mask, offset, enabled
}

func unhex(s string) []byte {
	var out []byte
	for i := 0; i+1 < len(s); i += 2 {
		var v byte
		if _, err := fmt.Sscanf(s[i:i+2], "%02x", &v); err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}

// matches says whether a handler's magic (under its mask, at offset)
// takes a file that begins with header.
func matches(header, magic, mask []byte, offset int) bool {
	if len(magic) == 0 || offset+len(magic) > len(header) {
		return false
	}
	for i, m := range magic {
		k := byte(0xff)
		if i < len(mask) {
			k = mask[i]
		}
		if header[offset+i]&k != m&k {
			return false
		}
	}
	return true
}

// probeProgram returns a minimal static ELF program of a that exits with probeStatus.
func probeProgram(a Arch) []byte {
	const base, hdr, phdr = 0x400000, 64, 56
	var b bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { binary.Write(&b, le, v) }
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	w(uint16(2))                 // ET_EXEC
	w(a.machine)                 // e_machine
	w(uint32(1))                 // e_version
	w(uint64(base + hdr + phdr)) // e_entry
	w(uint64(hdr))               // e_phoff
	w(uint64(0))                 // e_shoff
	w(uint32(0))                 // e_flags
	w(uint16(hdr))               // e_ehsize
	w(uint16(phdr))              // e_phentsize
	w(uint16(1))                 // e_phnum
	w(uint16(0))                 // e_shentsize
	w(uint16(0))                 // e_shnum
	w(uint16(0))                 // e_shstrndx
	size := uint64(hdr + phdr + len(a.code))
	w(uint32(1))    // PT_LOAD
	w(uint32(5))    // PF_R|PF_X
	w(uint64(0))    // p_offset
	w(uint64(base)) // p_vaddr
	w(uint64(base)) // p_paddr
	w(size)         // p_filesz
	w(size)         // p_memsz
	w(uint64(0x1000))
	b.Write(a.code)
	return b.Bytes()
}

// run executes the probe program of a and checks its exit status.
func run(a Arch) error {
	dir, err := os.MkdirTemp("", "kiln-emulation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "probe-"+a.Name)
	if err := os.WriteFile(p, probeProgram(a), 0o755); err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.Command(p)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == probeStatus {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a test program exited 0, not %d", probeStatus)
	}
	return fmt.Errorf("a test program failed: %v %s", err, strings.TrimSpace(out.String()))
}

// Register makes the programs of the architecture name run on this host
// through qemu-user: it mounts binfmt_misc when it is not, and registers
// qemu-user-static's handler for the architecture with the F flag,
// replacing a registration without it. It needs root. A native
// architecture needs nothing.
func Register(name string) error {
	a, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("kiln knows no architecture %q (it knows x86_64 and aarch64)", name)
	}
	if a.Name == Host() {
		return nil
	}
	def := filepath.Join(handlerDefs, "qemu-"+a.Name+".conf")
	line, err := os.ReadFile(def)
	if err != nil {
		return fmt.Errorf("qemu-user's handler for %s is missing (%v): install it with: apt-get install qemu-user-static", a.Name, err)
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		if err := unix.Mount("binfmt_misc", binfmtDir, "binfmt_misc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting binfmt_misc at %s: %w", binfmtDir, err)
		}
	}
	spec := strings.TrimSpace(string(line))
	fields := strings.Split(spec, ":")
	if len(fields) != 8 || fields[0] != "" {
		return fmt.Errorf("%s: %q is not a binfmt_misc handler definition", def, spec)
	}
	if !strings.Contains(fields[7], "F") {
		fields[7] += "F"
		spec = strings.Join(fields, ":")
	}
	entry := filepath.Join(binfmtDir, fields[1])
	if b, err := os.ReadFile(entry); err == nil {
		h, _, _, _, enabled := parseHandler(fields[1], b)
		if enabled && strings.Contains(h.flags, "F") {
			return nil
		}
		// Registered without F (or disabled): replace it.
		if err := os.WriteFile(entry, []byte("-1"), 0); err != nil {
			return fmt.Errorf("removing the handler %s registered without the F flag: %w", fields[1], err)
		}
	}
	if err := os.WriteFile(filepath.Join(binfmtDir, "register"), []byte(spec), 0); err != nil {
		return fmt.Errorf("registering the binfmt_misc handler %s: %w", fields[1], err)
	}
	return nil
}

// Foreign lists the architectures kiln builds that are not the host's.
func Foreign() []string {
	var out []string
	for _, a := range arches {
		if a.Name != Host() {
			out = append(out, a.Name)
		}
	}
	return out
}
