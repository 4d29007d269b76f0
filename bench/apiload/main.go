// Command apiload measures the service's API with builds paused (no
// worker): POST /compose and GET /composes/{id} at 64 concurrent clients,
// GET /composes pages in an org with 100 000 composes, and the idle RSS of
// `kiln serve`. bench/api.sh runs it; it prints one line per case.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kiln-project/kiln/internal/service/store"
	"github.com/kiln-project/kiln/internal/service/store/sqlite"
)

func main() {
	bin := flag.String("kiln", "bin/kiln", "the kiln binary")
	clients := flag.Int("clients", 64, "concurrent clients")
	dur := flag.Duration("duration", 10*time.Second, "how long each case runs")
	seed := flag.Int("seed-composes", 100000, "composes in the listing org")
	flag.Parse()
	if err := run(*bin, *clients, *dur, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func run(bin string, clients int, dur time.Duration, seedN int) error {
	ctx := context.Background()
	data, err := os.MkdirTemp("", "kiln-apiload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)

	// Tokens and the big org are written before the server starts.
	db, err := sqlite.Open(ctx, filepath.Join(data, "kiln.db"), sqlite.Options{})
	if err != nil {
		return err
	}
	tokens := map[string]string{}
	for _, org := range []string{"load", "big"} {
		secret, hash := store.NewSecret("kiln_")
		if err := db.CreateToken(ctx, store.Token{ID: store.NewID(), OrgID: org, Name: "bench", Hash: hash, CreatedAt: time.Now()}); err != nil {
			return err
		}
		tokens[org] = secret
	}
	t0 := time.Now()
	req := json.RawMessage(`{"distribution":"debian-12","image_requests":[{"architecture":"x86_64","image_type":"qcow2","upload_request":{"type":"local"}}]}`)
	base := time.Now().Add(-time.Hour)
	for i := range seedN {
		c := store.Compose{ID: store.NewID(), OrgID: "big", CreatedAt: base.Add(time.Duration(i) * time.Millisecond), ImageName: "seeded", Request: req}
		if err := db.CreateCompose(ctx, c, nil); err != nil {
			return err
		}
	}
	fmt.Printf("seeded %d composes in %.1fs\n", seedN, time.Since(t0).Seconds())
	db.Close()

	cache, _ := os.MkdirTemp("", "kiln-apiload-cache-")
	defer os.RemoveAll(cache)
	cmd := exec.Command(bin, "--cache-dir", cache, "serve", "--listen", "127.0.0.1:0", "--data", data, "--workers", "0",
		"--quota", "100000000", "--rate-limit", "-1")
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	var server string
	for sc.Scan() {
		if m := regexp.MustCompile(`kiln serves on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			server = m[1]
			break
		}
	}
	if server == "" {
		return fmt.Errorf("kiln serve did not start")
	}
	go io.Copy(io.Discard, stdout)
	time.Sleep(2 * time.Second)
	fmt.Printf("idle RSS of kiln serve: %.1f MB\n", rssMB(cmd.Process.Pid))

	api := server + "/api/image-builder/v1"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2}}
	do := func(method, url, token string, body []byte) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		r, _ := http.NewRequest(method, url, rd)
		r.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(r)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	compose := []byte(`{"distribution":"debian-12","image_name":"load","image_requests":[{"architecture":"x86_64","image_type":"qcow2","upload_request":{"type":"local","options":{}}}],
		"customizations":{"packages":["nginx"],"hostname":"web01","users":[{"name":"ops","groups":["sudo"],"ssh_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSOSKLZH9GYzn+gjqei1p55feF26p8vNjwhvky0aGR8 ops@example"}]}}`)

	var mu sync.Mutex
	var ids []string
	post := func() error {
		code, b, err := do("POST", api+"/compose", tokens["load"], compose)
		if err != nil || code != http.StatusCreated {
			return fmt.Errorf("%d %v %s", code, err, b)
		}
		var out struct{ ID string }
		_ = json.Unmarshal(b, &out)
		mu.Lock()
		ids = append(ids, out.ID)
		mu.Unlock()
		return nil
	}
	measure("POST /compose", clients, dur, 0, post)
	measure("POST /compose", clients, dur, 200, post)
	var n int
	var nmu sync.Mutex
	get := func() error {
		nmu.Lock()
		id := ids[n%len(ids)]
		n++
		nmu.Unlock()
		code, b, err := do("GET", api+"/composes/"+id, tokens["load"], nil)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %v %s", code, err, b)
		}
		return nil
	}
	measure("GET /composes/{id}", clients, dur, 0, get)
	measure("GET /composes/{id}", clients, dur, 1000, get)
	var page int
	list := func() error {
		nmu.Lock()
		off := (page % 50) * 100
		page++
		nmu.Unlock()
		code, b, err := do("GET", fmt.Sprintf("%s/composes?limit=100&offset=%d", api, off), tokens["big"], nil)
		if err != nil || code != http.StatusOK || !strings.Contains(string(b), `"count":`+fmt.Sprint(seedN)) {
			return fmt.Errorf("%d %v %.200s", code, err, b)
		}
		return nil
	}
	listName := fmt.Sprintf("GET /composes (org of %d, page of 100)", seedN)
	measure(listName, clients, dur, 0, list)
	measure(listName, clients, dur, 100, list)
	fmt.Printf("RSS of kiln serve after the load: %.1f MB\n", rssMB(cmd.Process.Pid))
	return nil
}

// measure runs f from clients goroutines for d and prints the rate and
// latency percentiles. With rate 0 every client sends its next request
// when the last is answered (the most the server does); with a rate,
// requests are due at that rate and a latency counts from when a request
// was due, so queueing inside the load generator is not hidden.
func measure(name string, clients int, d time.Duration, rate float64, f func() error) {
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var firstErr error
	deadline := time.Now().Add(d)
	var due chan time.Time
	if rate > 0 {
		due = make(chan time.Time, int(rate*d.Seconds())+1)
		go func() {
			start := time.Now()
			for i := 0; ; i++ {
				at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if at.After(deadline) {
					close(due)
					return
				}
				time.Sleep(time.Until(at))
				due <- at
			}
		}()
		name += fmt.Sprintf(" @%.0f/s", rate)
	}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				if due != nil {
					at, ok := <-due
					if !ok {
						break
					}
					t = at
				}
				err := f()
				el := time.Since(t)
				if err != nil {
					mu.Lock()
					errs++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, el)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}
	fmt.Printf("%-45s %8.0f req/s  p50 %6.1f ms  p99 %6.1f ms  errors %d\n", name, float64(len(lat))/d.Seconds(), pct(0.5), pct(0.99), errs)
	if firstErr != nil {
		fmt.Printf("  first error: %v\n", firstErr)
	}
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
