package apt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// aptOutput is what an apt run printed.
type aptOutput struct {
	stdout, stderr string
}

// all is stderr then stdout.
func (o aptOutput) all() string { return o.stderr + "\n" + o.stdout }

// run runs an apt program against m's private configuration, with an
// argument vector and no shell. A non-zero exit is returned as an error
// together with the output.
func (r *Resolver) run(ctx context.Context, m *metadata, prog string, args ...string) (aptOutput, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append([]string{"APT_CONFIG=" + m.aptConfig()}, r.env...)
	cmd.Dir = m.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// apt-get starts its download methods as children; end them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	out := aptOutput{stdout: stdout.String(), stderr: stderr.String()}
	r.cfg.Log.Debug("ran apt", "program", prog, "args", abbreviate(args), "duration", time.Since(start).Round(time.Millisecond), "error", err)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			return out, fmt.Errorf("%s %s: %w", prog, args[0], err)
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("%s %s: %w", prog, args[0], ctx.Err())
		}
		return out, fmt.Errorf("running %s: %w", prog, err)
	}
	return out, nil
}

// runLocal runs a command that reads only the local metadata, bounded by
// the configured timeout.
func (r *Resolver) runLocal(ctx context.Context, m *metadata, prog string, args ...string) (aptOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	return r.run(ctx, m, prog, append([]string{args[0], "-o", "Debug::NoLocking=1"}, args[1:]...)...)
}

func abbreviate(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
