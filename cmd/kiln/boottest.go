package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/boottest"
	"github.com/kiln-project/kiln/internal/compose"
	"github.com/kiln-project/kiln/internal/manifest"
)

// bootTestOptions are the flags of kiln boot-test.
type bootTestOptions struct {
	sshKey   string
	user     string
	firmware string
	arch     string
	checks   []string
	timeout  time.Duration
	memory   int
	console  bool
}

func newBootTestCommand(a *app) *cobra.Command {
	var o bootTestOptions
	cmd := &cobra.Command{
		Use:   "boot-test IMAGE",
		Short: "Boot a disk image in QEMU and check it over SSH",
		Long: "boot-test boots IMAGE (raw or qcow2, never modified) in QEMU with BIOS or UEFI firmware, " +
			"logs in over SSH and checks that the system is running: systemd's state (running or degraded, " +
			"with the failed units listed), the host name, the kernel and the root filesystem, then runs " +
			"each --check command. It exits non-zero when a boot or a check fails.\n\n" +
			"The machine has the image's architecture: that of the manifest kiln build wrote beside it " +
			"(<name>-<distro>-<arch>.manifest.json), else --arch, else this host's. An aarch64 image boots " +
			"on qemu-system-aarch64's virt machine with UEFI (AAVMF) only, emulated with TCG on an x86_64 " +
			"host: expect minutes.",
		Example: "  kiln boot-test web.qcow2 --ssh-key ~/.ssh/id_ed25519 --user ops --firmware both \\\n" +
			"      --check 'systemctl is-active nginx'\n" +
			"  kiln boot-test out/web-debian-12-aarch64.qcow2 --ssh-key ~/.ssh/id_ed25519 --user ops --check 'uname -m'",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var firmwares []string
			switch o.firmware {
			case "bios", "uefi":
				firmwares = []string{o.firmware}
			case "both":
				firmwares = []string{"bios", "uefi"}
			default:
				return fmt.Errorf("--firmware %q: expected bios, uefi or both", o.firmware)
			}
			if o.sshKey == "" {
				return errors.New("--ssh-key is required: the private key whose public half the image authorizes for --user")
			}
			arch, note, err := bootTestArch(args[0], o.arch)
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintf(a.stderr, "kiln: %s\n", note)
			}
			if arch == boottest.ArchAarch64 {
				if o.firmware == "bios" {
					return errors.New("--firmware bios: aarch64 machines boot with UEFI only (pass --firmware uefi, or leave the flag out)")
				}
				firmwares = []string{"uefi"}
			}
			o.arch = arch
			failed := 0
			for _, fw := range firmwares {
				if err := bootTestOne(cmd.Context(), a, args[0], fw, o); err != nil {
					fmt.Fprintf(a.stdout, "%s: FAILED: %v\n", fw, err)
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("boot test of %s failed with %d of %d firmware(s)", args[0], failed, len(firmwares))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.sshKey, "ssh-key", "", "private SSH key to log in with (required)")
	cmd.Flags().StringVar(&o.user, "user", "root", "user to log in as")
	cmd.Flags().StringVar(&o.firmware, "firmware", "both", "firmware to boot with: bios, uefi or both (aarch64: uefi only)")
	cmd.Flags().StringVar(&o.arch, "arch", "", "the image's architecture, x86_64 or aarch64 (default: its manifest's, else this host's)")
	cmd.Flags().StringArrayVar(&o.checks, "check", nil, "a command to run on the machine (with sh -c); it must succeed (repeatable)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "how long to wait for SSH (default 5m with KVM; without, 10m for x86_64 and 20m for aarch64)")
	cmd.Flags().IntVar(&o.memory, "memory", 1024, "memory of the machine in MiB")
	cmd.Flags().BoolVar(&o.console, "console", false, "copy the serial console to stderr")
	return cmd
}

// bootTestOne boots the image with one firmware and runs the checks,
// printing one line per check.
func bootTestOne(ctx context.Context, a *app, image, fw string, o bootTestOptions) error {
	cfg := boottest.Config{Image: image, Arch: o.arch, Firmware: fw, SSHKey: o.sshKey, User: o.user, Timeout: o.timeout, Memory: o.memory}
	if o.console {
		cfg.Log = a.stderr
	}
	kvm := boottest.KVMUsableFor(o.arch)
	accel := "TCG (no KVM: expect minutes)"
	if kvm {
		accel = "KVM"
	}
	fmt.Fprintf(a.stdout, "%s: booting %s (%s) with %s\n", fw, image, o.arch, accel)
	if a.log != nil {
		a.log.Info("boot test", "image", image, "arch", o.arch, "firmware", fw, "kvm", kvm)
	}
	m, err := boottest.Boot(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(a.stdout, "%s: SSH answered after %.1f s\n", fw, m.SSHAfter().Seconds())

	var errs []error
	check := func(name string, fn func() (string, error)) {
		out, err := fn()
		if err != nil && out != "" {
			err = fmt.Errorf("%w (output: %s)", err, out)
		}
		if err != nil {
			fmt.Fprintf(a.stdout, "  FAIL  %s: %v\n", name, err)
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		fmt.Fprintf(a.stdout, "  ok    %s: %s\n", name, out)
	}
	check("system state", func() (string, error) { return systemState(ctx, m, a.stdout) })
	// Once systemd is done: its split of the boot, kernel and userspace.
	if times, err := m.BootTimes(ctx); err == nil && times != "" {
		fmt.Fprintf(a.stdout, "%s: %s\n", fw, times)
	}
	check("hostname", func() (string, error) { return runTrimmed(ctx, m, "hostname") })
	check("kernel", func() (string, error) { return runTrimmed(ctx, m, "uname", "-r") })
	check("root filesystem", func() (string, error) {
		return runTrimmed(ctx, m, "findmnt", "-n", "-o", "SOURCE,FSTYPE,UUID", "/")
	})
	for _, c := range o.checks {
		check(c, func() (string, error) {
			out, err := runTrimmed(ctx, m, "sh", "-c", c)
			if out == "" && err == nil {
				out = "succeeded"
			}
			return out, err
		})
	}
	return errors.Join(errs...)
}

// bootTestArch is the architecture to boot image as, and a note for the
// user when the manifest beside the image could not say. The manifest
// kiln build wrote beside the image decides; archFlag, when given, must
// agree with it. Without a manifest it is archFlag, else the host's.
func bootTestArch(image, archFlag string) (arch, note string, err error) {
	if archFlag != "" && archFlag != boottest.ArchX86_64 && archFlag != boottest.ArchAarch64 {
		return "", "", fmt.Errorf("--arch %q: expected %s or %s", archFlag, boottest.ArchX86_64, boottest.ArchAarch64)
	}
	path := compose.OutputFiles(filepath.Dir(image), filepath.Base(image)).Manifest
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if archFlag != "" {
			return archFlag, "", nil
		}
		return hostArch(), "", nil
	}
	if err == nil {
		var m *manifest.Manifest
		if m, err = manifest.Parse(b); err == nil && m.Target.Arch == "" {
			err = errors.New("it names no target.arch")
		}
		if err == nil {
			built := m.Target.Arch
			if archFlag != "" && archFlag != built {
				return "", "", fmt.Errorf("--arch %s disagrees with the manifest beside the image, %s, which built it for %s: leave --arch out, or boot the image of that architecture", archFlag, path, built)
			}
			return built, "", nil
		}
	}
	if archFlag == "" {
		return "", "", fmt.Errorf("the manifest beside the image, %s, cannot be read: %w (pass --arch to say the image's architecture)", path, err)
	}
	return archFlag, fmt.Sprintf("the manifest beside the image, %s, cannot be read (%v): booting it as --arch says, %s", path, err, archFlag), nil
}

func runTrimmed(ctx context.Context, m *boottest.Machine, argv ...string) (string, error) {
	out, err := m.Run(ctx, argv...)
	return strings.Join(strings.Fields(out), " "), err
}

// systemState waits for systemd to finish starting up. "running" and
// "degraded" pass; the failed units of a degraded system are listed.
func systemState(ctx context.Context, m *boottest.Machine, w io.Writer) (string, error) {
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// is-system-running exits non-zero unless "running": read its output.
	out, _ := m.Run(waitCtx, "systemctl", "is-system-running", "--wait")
	state := strings.TrimSpace(out)
	switch state {
	case "running":
		return state, nil
	case "degraded":
		failed, err := m.Run(ctx, "systemctl", "--failed", "--no-legend", "--plain", "--no-pager")
		if err == nil {
			for _, line := range strings.Split(strings.TrimSpace(failed), "\n") {
				if line != "" {
					fmt.Fprintf(w, "        failed unit: %s\n", line)
				}
			}
		}
		return state + " (see the failed units)", nil
	case "":
		return "", errors.New("systemctl is-system-running gave no answer")
	}
	return "", fmt.Errorf("the system is %s, expected running or degraded", state)
}
