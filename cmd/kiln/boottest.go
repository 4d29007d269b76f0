package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/boottest"
)

// bootTestOptions are the flags of kiln boot-test.
type bootTestOptions struct {
	sshKey   string
	user     string
	firmware string
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
			"each --check command. It exits non-zero when a boot or a check fails.",
		Example: "  kiln boot-test web.qcow2 --ssh-key ~/.ssh/id_ed25519 --user ops --firmware both \\\n" +
			"      --check 'systemctl is-active nginx'",
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
	cmd.Flags().StringVar(&o.firmware, "firmware", "both", "firmware to boot with: bios, uefi or both")
	cmd.Flags().StringArrayVar(&o.checks, "check", nil, "a command to run on the machine (with sh -c); it must succeed (repeatable)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "how long to wait for SSH (default 5m with KVM, 10m without)")
	cmd.Flags().IntVar(&o.memory, "memory", 1024, "memory of the machine in MiB")
	cmd.Flags().BoolVar(&o.console, "console", false, "copy the serial console to stderr")
	return cmd
}

// bootTestOne boots the image with one firmware and runs the checks,
// printing one line per check.
func bootTestOne(ctx context.Context, a *app, image, fw string, o bootTestOptions) error {
	cfg := boottest.Config{Image: image, Firmware: fw, SSHKey: o.sshKey, User: o.user, Timeout: o.timeout, Memory: o.memory}
	if o.console {
		cfg.Log = a.stderr
	}
	accel := "TCG (no KVM: expect minutes)"
	if boottest.KVMUsable() {
		accel = "KVM"
	}
	fmt.Fprintf(a.stdout, "%s: booting %s with %s\n", fw, image, accel)
	if a.log != nil {
		a.log.Info("boot test", "image", image, "firmware", fw, "kvm", boottest.KVMUsable())
	}
	start := time.Now()
	m, err := boottest.Boot(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(a.stdout, "%s: SSH answered after %s\n", fw, time.Since(start).Round(time.Second))

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
