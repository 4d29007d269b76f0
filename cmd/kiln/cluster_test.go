package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-project/kiln/internal/compose/composetest"
	"github.com/kiln-project/kiln/internal/engine"
	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/postgres"
	"github.com/kiln-project/kiln/internal/testhost"
)

// builtKilns are the kiln binaries this run built, by build tags: tests
// that run the same one build it once. TestMain removes them.
var builtKilns struct {
	sync.Mutex
	dir  string
	bins map[string]string
}

// buildKiln builds the kiln binary for tests that run it as processes,
// with the build tags given, once per run.
func buildKiln(t testing.TB, tags ...string) string {
	t.Helper()
	key := strings.Join(tags, ",")
	builtKilns.Lock()
	defer builtKilns.Unlock()
	if bin, ok := builtKilns.bins[key]; ok {
		return bin
	}
	if builtKilns.dir == "" {
		dir, err := os.MkdirTemp("", "kiln-test-bin-")
		require.NoError(t, err)
		builtKilns.dir, builtKilns.bins = dir, map[string]string{}
	}
	bin := filepath.Join(builtKilns.dir, fmt.Sprintf("kiln-%d", len(builtKilns.bins)))
	out, err := exec.Command("go", "build", "-tags", key, "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	builtKilns.bins[key] = bin
	return bin
}

// fakeKiln builds a kiln whose workers build fake images (fakebuild.go):
// for tests of the queue, failover and recovery, which need images to
// exist but not to be real.
func fakeKiln(t testing.TB) string {
	t.Helper()
	return buildKiln(t, "kilnfake")
}

// proc is a kiln process of a cluster test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	url    string      // a server's address, once it serves
	stderr *syncBuffer // its log
	exited chan struct{}
}

// startProc starts bin with args and waits until its first line of
// output (a server's "kiln serves on URL", a worker's greeting).
// adminCommand returns a function that runs a kiln subcommand with
// where (the flags naming its database) appended, fails t if it fails
// (with its stderr), and returns what it printed, trimmed.
func adminCommand(t testing.TB, ctx context.Context, bin string, env []string, where ...string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append(args, where...)...)
		cmd.Env = env
		out, err := cmd.Output()
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		require.NoError(t, err, string(stderr))
		return strings.TrimSpace(string(out))
	}
}

func startProc(t testing.TB, ctx context.Context, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.CommandContext(ctx, bin, args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", p.name, tail(p.stderr.String(), 40))
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		if m := regexp.MustCompile(`kiln serves on (http://\S+)`).FindStringSubmatch(line); m != nil {
			p.url = m[1]
		}
	case <-p.exited:
		t.Fatalf("%s exited at start:\n%s", name, p.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not start:\n%s", name, p.stderr.String())
	}
	return p
}

func (p *proc) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// apiClient speaks the image-builder API of one replica.
type apiClient struct {
	url, token string
	http       *http.Client
}

func (c apiClient) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+"/api/image-builder/v1"+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

// cluster is PostgreSQL, an S3-compatible server, two `kiln serve`
// replicas and some `kiln worker` processes, all separate processes but
// the S3 server, which runs in the test on loopback.
type cluster struct {
	dsn                string
	replicaA, replicaB *proc
	workers            map[string]*proc
	clientA, clientB   apiClient
	token              string
	lease              time.Duration
}

// fakeImageSize is the size of the cluster test's fake images: larger than
// one part of an upload to the bucket.
const fakeImageSize = 2<<20 + 12345

// startCluster starts a cluster of workers `kiln worker` processes. Its
// images are real with real set, else fake ones whose stages take 300 ms.
func startCluster(t testing.TB, ctx context.Context, workers int, real bool) *cluster {
	var bin string
	env := os.Environ()
	if real {
		testhost.RequireBuildHost(t, engine.HostProblems(nil))
		bin = buildKiln(t)
	} else {
		bin = fakeKiln(t)
		env = append(env, "KILN_FAKE_STAGE_TIME=300ms", fmt.Sprintf("KILN_FAKE_SIZE=%d", fakeImageSize))
	}
	c := &cluster{dsn: testhost.StartPostgres(t), workers: map[string]*proc{}, lease: 8 * time.Second}
	artifactsSpec, s3env := testhost.StartS3(t)
	for k, v := range s3env {
		env = append(env, k+"="+v)
	}
	cache := engineCache(t)

	admin := adminCommand(t, ctx, bin, env, "--database", c.dsn)
	admin("migrate")
	workerToken := admin("worker-token", "create", "--name", "cluster")
	c.token = admin("token", "create", "--org", "acme", "--name", "cluster")

	serve := func(name string) *proc {
		return startProc(t, ctx, name, bin, env, "--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--database", c.dsn, "--artifacts", artifactsSpec, "--workers", "-1", "--lease", c.lease.String(), "--rate-limit", "-1")
	}
	c.replicaA, c.replicaB = serve("serve-a"), serve("serve-b")
	for i := 1; i <= workers; i++ {
		name := fmt.Sprintf("w%d", i)
		// Each worker knows both replicas and goes to the other when one
		// stops answering.
		c.workers[name] = startProc(t, ctx, name, bin, env, "--cache-dir", cache, "worker",
			"--server", c.replicaB.url+","+c.replicaA.url, "--worker-token", workerToken, "--name", name, "--grace", "0s")
	}
	c.clientA = apiClient{url: c.replicaA.url, token: c.token, http: &http.Client{Timeout: 30 * time.Second}}
	c.clientB = apiClient{url: c.replicaB.url, token: c.token, http: &http.Client{Timeout: 30 * time.Second}}
	return c
}

// submit starts n composes through both replicas, image type typ(i), of
// variants different blueprints (their hostnames differ): composes of one
// variant give one image, built once and found in the cache after.
func (c *cluster) submit(t testing.TB, ctx context.Context, prefix string, n, variants int, typ func(i int) string) []string {
	var ids []string
	for i := range n {
		body := map[string]any{
			"distribution": "debian-12",
			"image_requests": []any{map[string]any{"architecture": "x86_64", "image_type": typ(i),
				"upload_request": map[string]any{"type": "local", "options": map[string]any{}}}},
			"customizations": map[string]any{"hostname": fmt.Sprintf("%s-%02d", prefix, i%variants)},
		}
		var created struct{ ID string }
		client := c.clientA
		if i%2 == 1 {
			client = c.clientB
		}
		_, err := client.do(ctx, http.MethodPost, "/compose", body, &created)
		require.NoError(t, err)
		ids = append(ids, created.ID)
	}
	return ids
}

// waitSuccess waits until every compose succeeded, asking replica A.
func (c *cluster) waitSuccess(t testing.TB, ctx context.Context, ids []string, within time.Duration) {
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	for deadline := time.Now().Add(within); len(pending) > 0 && time.Now().Before(deadline); time.Sleep(time.Second) {
		for id := range pending {
			var st struct {
				ImageStatus struct {
					Status string `json:"status"`
					Error  any    `json:"error"`
				} `json:"image_status"`
			}
			_, err := c.clientA.do(ctx, http.MethodGet, "/composes/"+id, nil, &st)
			require.NoError(t, err)
			switch st.ImageStatus.Status {
			case "success":
				delete(pending, id)
			case "failure":
				t.Fatalf("compose %s failed: %v", id, st.ImageStatus.Error)
			}
		}
	}
	require.Empty(t, pending, "every compose ends in success")
}

// TestCluster runs kiln as a scaled-out deployment on one machine:
// PostgreSQL, an S3-compatible server, two `kiln serve` replicas and three
// `kiln worker` processes, all separate, building fake images (the test is
// about the queue, not the builds). It submits twelve composes (eleven
// tar, one qcow2), kills one worker with SIGKILL in the middle of a build
// and one replica in the middle of a request, and checks that every
// compose still succeeds, that no job ran to completion twice, that every
// image is in the bucket, and that the surviving replica answered
// throughout. It logs the throughput and how long a dead worker's job
// waited to be requeued.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := startCluster(t, ctx, 3, false)
	replicaA, replicaB, workers, clientA, apiToken := c.replicaA, c.replicaB, c.workers, c.clientA, c.token

	// Twelve composes through both replicas, one of them a qcow2, the
	// tar ones of four blueprints (BenchmarkClusterThroughput measures
	// twelve different real images).
	start := time.Now()
	ids := c.submit(t, ctx, "cluster", 12, 4, func(i int) string {
		if i == 5 {
			return "qcow2"
		}
		return "tar"
	})
	// The surviving replica must answer throughout.
	var answered, failed atomic.Int64
	pollCtx, stopPolling := context.WithCancel(ctx)
	var polling sync.WaitGroup
	polling.Add(1)
	go func() {
		defer polling.Done()
		for i := 0; pollCtx.Err() == nil; i++ {
			if _, err := clientA.do(pollCtx, http.MethodGet, "/composes/"+ids[i%len(ids)], nil, nil); err != nil {
				if pollCtx.Err() == nil {
					failed.Add(1)
					t.Logf("replica A did not answer: %v", err)
				}
			} else {
				answered.Add(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	db, err := postgres.Open(ctx, c.dsn, postgres.Options{})
	require.NoError(t, err)
	defer db.Close()

	// Kill the worker of the first build that runs, in the middle of it.
	var victim store.Job
	for deadline := time.Now().Add(5 * time.Minute); victim.ID == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, id := range ids {
			js, err := db.ComposeJobs(ctx, "acme", id)
			require.NoError(t, err)
			for _, j := range js {
				if j.Type == "build" && j.State == store.JobRunning {
					victim = j
				}
			}
		}
	}
	require.NotEmpty(t, victim.ID, "a build started")
	victimName, _, _ := strings.Cut(victim.Worker, "/")
	require.Contains(t, workers, victimName)
	killedAt := time.Now()
	workers[victimName].kill(t)
	t.Logf("killed worker %s while it built job %s (attempt %d)", victimName, victim.ID, victim.Attempts)
	js, err := db.ComposeJobs(ctx, "acme", victim.ComposeID)
	require.NoError(t, err)
	for _, j := range js {
		if j.ID == victim.ID {
			require.Equal(t, store.JobRunning, j.State, "the worker died in the middle of the build")
		}
	}

	// The dead worker's job goes back to the queue once its lease runs out.
	var requeuedAfter time.Duration
	for deadline := time.Now().Add(2 * time.Minute); requeuedAfter == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		js, err := db.ComposeJobs(ctx, "acme", victim.ComposeID)
		require.NoError(t, err)
		for _, j := range js {
			if j.ID == victim.ID && (j.State == store.JobPending || j.Attempts > victim.Attempts) {
				requeuedAfter = time.Since(killedAt)
			}
		}
	}
	require.NotZero(t, requeuedAfter, "the dead worker's job was requeued")
	t.Logf("kill to requeue: %.1f s (lease %s)", requeuedAfter.Seconds(), c.lease)

	// Kill replica B while it answers a request: a build log it streams.
	logsCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	streaming := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(logsCtx, http.MethodGet, replicaB.url+"/api/image-builder/v1/composes/"+ids[len(ids)-1]+"/logs", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			streaming <- err
			return
		}
		defer resp.Body.Close()
		streaming <- nil
		_, err = io.Copy(io.Discard, resp.Body)
		streaming <- err
	}()
	require.NoError(t, <-streaming, "replica B streams a build log")
	replicaB.kill(t)
	assert.Error(t, <-streaming, "the stream ended with replica B")

	c.waitSuccess(t, ctx, ids, 12*time.Minute)
	elapsed := time.Since(start)
	stopPolling()
	polling.Wait()
	t.Logf("12 composes in %.0f s: %.1f composes/minute with 3 workers (one killed)", elapsed.Seconds(), 12/elapsed.Minutes())
	assert.Zero(t, failed.Load(), "replica A answered every status request")
	assert.Positive(t, answered.Load())

	// Every image is in the bucket, whole, and downloads through the
	// surviving replica (a redirect to a presigned URL): each compose's own,
	// built from its manifest (the fake image carries it).
	for i, id := range ids {
		resp, err := clientA.http.Do(authed(t, ctx, replicaA.url+"/api/image-builder/v1/composes/"+id+"/download", apiToken))
		require.NoError(t, err)
		image, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "compose %d's image", i)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		name := ".tar.xz\n"
		if i == 5 {
			name = ".qcow2\n"
		}
		header, _, _ := strings.Cut(strings.TrimPrefix(string(image), composetest.Magic), "\n")
		assert.True(t, strings.HasPrefix(string(image), composetest.Magic), "compose %d's image is the fake builder's", i)
		assert.True(t, strings.HasSuffix(header+"\n", name), "compose %d's image is %s", i, header)
		assert.Contains(t, string(image), fmt.Sprintf(`"hostname": "cluster-%02d"`, i%4), "compose %d's image is its own", i)
		assert.Len(t, image, fakeImageSize, "compose %d's image is whole", i)
	}

	// No job ran to completion twice: each finished once, in the workers'
	// logs and in the queue.
	done := map[string]int{}
	for _, w := range workers {
		for _, line := range strings.Split(w.stderr.String(), "\n") {
			var rec struct{ Msg, JobID string }
			var raw map[string]any
			if json.Unmarshal([]byte(line), &raw) != nil {
				continue
			}
			rec.Msg, _ = raw["msg"].(string)
			rec.JobID, _ = raw["job_id"].(string)
			if rec.Msg == "job done" {
				done[rec.JobID]++
			}
		}
	}
	jobs := 0
	for _, id := range ids {
		js, err := db.ComposeJobs(ctx, "acme", id)
		require.NoError(t, err)
		for _, j := range js {
			jobs++
			assert.Equal(t, store.JobSuccess, j.State)
			assert.Equal(t, 1, done[j.ID], "job %s (%s) finished exactly once", j.ID, j.Type)
		}
	}
	assert.Equal(t, 36, jobs)
	assert.Len(t, done, 36, "no other job finished")
}

func authed(t testing.TB, ctx context.Context, url, token string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// BenchmarkClusterThroughput measures composes per minute for tar images
// with one and with three workers (two cores here: the workers share them).
// Each run submits $KILN_BENCH_COMPOSES (default 12) composes of different
// blueprints, so each builds its own image.
func BenchmarkClusterThroughput(b *testing.B) {
	for _, workers := range []int{1, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			c := startCluster(b, ctx, workers, true)
			// One compose first, so every run starts from a warm cache.
			c.waitSuccess(b, ctx, c.submit(b, ctx, "warm", 1, 1, func(int) string { return "tar" }), 10*time.Minute)
			b.ResetTimer()
			n := composes()
			start := time.Now()
			for range b.N {
				c.waitSuccess(b, ctx, c.submit(b, ctx, "bench", n, n, func(int) string { return "tar" }), 30*time.Minute)
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Minutes(), "composes/min")
		})
	}
}

// TestMain removes the kiln binaries the tests built and stops the
// PostgreSQL server the cluster tests start.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtKilns.dir != "" {
		_ = os.RemoveAll(builtKilns.dir)
	}
	testhost.StopPostgres()
	os.Exit(code)
}

func composes() int {
	if n, err := strconv.Atoi(os.Getenv("KILN_BENCH_COMPOSES")); err == nil && n > 0 {
		return n
	}
	return 12
}
