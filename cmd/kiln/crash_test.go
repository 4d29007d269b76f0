package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeSurvivesKill9 kills `kiln serve` with SIGKILL while its worker
// builds a compose (a fake build, whose stages take 300 ms each).
// The restarted service still has the compose; the job whose worker died
// is requeued when its lease expires, and the compose ends in success.
// SIGTERM then stops the service cleanly.
// servedURL reads kiln serve's stdout up to the line that says where it
// serves and returns that URL ("" when the output ends first), and keeps
// reading the rest in the background so the pipe never fills.
func servedURL(stdout io.Reader) string {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`kiln serves on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1]
		}
	}
	return ""
}

func TestServeSurvivesKill9(t *testing.T) {
	bin := fakeKiln(t)
	data, cache := t.TempDir(), engineCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	start := func() (*exec.Cmd, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, "--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", data, "--lease", "6s")
		cmd.Env = append(os.Environ(), "KILN_FAKE_STAGE_TIME=300ms")
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		url := servedURL(stdout)
		require.NotEmpty(t, url, "kiln serve did not start")
		return cmd, url
	}
	first, url := start()
	tok, _, err := run(t, "token", "create", "--org", "acme", "--name", "crash", "--data", data)
	require.NoError(t, err)
	svc := []string{"--server", url, "--token", strings.TrimSpace(tok)}
	bp := writeBlueprint(t, "name = \"crash\"\n[customizations]\nhostname = \"crash\"\n")
	idOut, errOut, err := run(t, append([]string{"compose", "start", bp, "-t", "tar"}, svc...)...)
	require.NoError(t, err, errOut)
	id := strings.TrimSpace(idOut)

	// Wait until the build job runs, then kill the service outright.
	building := false
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		st, _, err := run(t, append([]string{"compose", "status", id}, svc...)...)
		require.NoError(t, err)
		if strings.Contains(st, "stages") { // the build reports progress
			building = true
			break
		}
	}
	require.True(t, building, "the build started")
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	second, url := start()
	svc[1] = url
	st, _, err := run(t, append([]string{"compose", "status", id}, svc...)...)
	require.NoError(t, err, "the compose survived the crash")
	assert.Contains(t, st, "building", "it is not lost, and not yet done")
	st, errOut, err = run(t, append([]string{"compose", "status", id, "--wait"}, svc...)...)
	require.NoError(t, err, errOut)
	assert.Contains(t, st, "success")

	require.NoError(t, second.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "SIGTERM stops the service cleanly")
	case <-time.After(60 * time.Second):
		t.Error("kiln serve did not stop on SIGTERM")
		_ = second.Process.Kill()
	}
}

// TestComposeStatusSaysNoWorkerBuildsItsArch: a service whose workers
// build x86_64 only accepts an aarch64 compose, and `kiln compose status`
// says what it waits for, while an x86_64 compose is built.
func TestComposeStatusSaysNoWorkerBuildsItsArch(t *testing.T) {
	bin := fakeKiln(t)
	data, cache := t.TempDir(), engineCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", data, "--worker-arch", "x86_64")
	cmd.Env = append(os.Environ(), "KILN_FAKE_STAGE_TIME=10ms")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	url := servedURL(stdout)
	require.NotEmpty(t, url, "kiln serve did not start")
	tok, _, err := run(t, "token", "create", "--org", "acme", "--name", "arch", "--data", data)
	require.NoError(t, err)
	svc := []string{"--server", url, "--token", strings.TrimSpace(tok)}
	bp := writeBlueprint(t, "name = \"arch\"\n[customizations]\nhostname = \"arch\"\n")

	idOut, errOut, err := run(t, append([]string{"compose", "start", bp, "-t", "tar", "--arch", "aarch64"}, svc...)...)
	require.NoError(t, err, errOut)
	armID := strings.TrimSpace(idOut)
	idOut, errOut, err = run(t, append([]string{"compose", "start", bp, "-t", "tar", "--arch", "x86_64"}, svc...)...)
	require.NoError(t, err, errOut)
	x86ID := strings.TrimSpace(idOut)

	st, errOut, err := run(t, append([]string{"compose", "status", x86ID, "--wait"}, svc...)...)
	require.NoError(t, err, errOut)
	assert.Contains(t, st, "success")
	st, errOut, err = run(t, append([]string{"compose", "status", armID}, svc...)...)
	require.NoError(t, err, errOut)
	// Its packages are solved (any worker does that); its build waits.
	assert.Regexp(t, "^(pending|building): no connected worker builds aarch64; start one with `kiln worker --arch aarch64`\n$", st)
}
