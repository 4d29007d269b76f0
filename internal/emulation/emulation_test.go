package emulation

import (
	"bytes"
	"debug/elf"
	"os"
	"strings"
	"testing"
)

func TestProbeProgramsAreValidELF(t *testing.T) {
	want := map[string]elf.Machine{"x86_64": elf.EM_X86_64, "aarch64": elf.EM_AARCH64}
	for _, a := range arches {
		f, err := elf.NewFile(bytes.NewReader(probeProgram(a)))
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if f.Machine != want[a.Name] || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
			t.Errorf("%s: machine %v class %v type %v", a.Name, f.Machine, f.Class, f.Type)
		}
		if len(f.Progs) != 1 || f.Entry != f.Progs[0].Vaddr+64+56 {
			t.Errorf("%s: entry %#x outside its one segment", a.Name, f.Entry)
		}
	}
}

// qemuAarch64 is the entry binfmt_misc shows for Debian's qemu-user-static
// aarch64 handler.
const qemuAarch64 = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`

func TestHandlerMatchesOnlyItsArchitecture(t *testing.T) {
	h, magic, mask, offset, enabled := parseHandler("qemu-aarch64", []byte(qemuAarch64))
	if !enabled || h.flags != "POF" || h.interpreter != "/usr/libexec/qemu-binfmt/aarch64-binfmt-P" {
		t.Fatalf("parsed %+v enabled=%v", h, enabled)
	}
	for _, a := range arches {
		got := matches(probeProgram(a)[:64], magic, mask, offset)
		if got != (a.Name == "aarch64") {
			t.Errorf("handler qemu-aarch64 takes %s programs: %v", a.Name, got)
		}
	}
	_, _, _, _, enabled = parseHandler("x", []byte(strings.Replace(qemuAarch64, "enabled", "disabled", 1)))
	if enabled {
		t.Error("a disabled handler counts as enabled")
	}
}

func TestUnknownArchitecture(t *testing.T) {
	if _, err := Check("riscv64"); err == nil || !strings.Contains(err.Error(), "aarch64") {
		t.Errorf("Check(riscv64) = %v, want an error naming the known ones", err)
	}
	if err := Register("sparc"); err == nil {
		t.Error("Register(sparc) succeeded")
	}
}

func TestHostRunsItsOwnPrograms(t *testing.T) {
	if m, err := Check(Host()); err != nil || m != Native {
		t.Fatalf("Check(%s) = %v, %v", Host(), m, err)
	}
	// The probe itself, executed for real: the native program must exit
	// with the probe's status, so a wrong encoding fails here.
	a, _ := Lookup(Host())
	if err := run(a); err != nil {
		t.Fatal(err)
	}
}

// TestForeignArchitecturesWhereRegistered runs the probe of every foreign
// architecture whose handler is registered here with F: the emulated
// program must exit with the probe's status.
func TestForeignArchitecturesWhereRegistered(t *testing.T) {
	if _, err := os.Stat(binfmtDir + "/status"); err != nil {
		t.Skip("binfmt_misc is not mounted here")
	}
	for _, name := range Foreign() {
		a, _ := Lookup(name)
		h, err := findHandler(a)
		if err != nil || !strings.Contains(h.flags, "F") {
			continue
		}
		if m, err := Check(name); err != nil || m != Emulated {
			t.Errorf("Check(%s) = %v, %v", name, m, err)
		}
	}
}
