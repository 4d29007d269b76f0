package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// Isolation is what a sandboxed command saw of itself.
type Isolation struct {
	// UIDMap is the command's /proc/self/uid_map, e.g. "0 1878982656 65536".
	UIDMap string
	// CapEff is its effective capability set (hex, in its own namespace).
	CapEff string
	// NoNewPrivs and Seccomp are the fields of /proc/self/status.
	NoNewPrivs, Seccomp string
}

// Probe starts a sandbox on an empty tree and reports what isolation the
// command in it has. An error says which part this host cannot give
// (user namespaces, idmapped mounts, pivot_root, seccomp); kiln builds
// nothing on such a host.
func Probe(ctx context.Context) (*Isolation, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "kiln-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	err = Exec(ctx, Options{Root: dir, Mode: HostTools, Out: &out},
		"/usr/bin/cat", "/proc/self/status", "/proc/self/uid_map")
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, strings.TrimSpace(out.String()))
	}
	iso := &Isolation{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			iso.UIDMap = strings.Join(strings.Fields(line), " ")
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			iso.CapEff = v
		case "NoNewPrivs":
			iso.NoNewPrivs = v
		case "Seccomp":
			iso.Seccomp = v
		}
	}
	if iso.NoNewPrivs != "1" || iso.Seccomp != "2" || !strings.HasPrefix(iso.UIDMap, "0 ") || strings.HasPrefix(iso.UIDMap, "0 0 ") {
		return iso, fmt.Errorf("the sandbox is weaker than it must be: uid map %q, no_new_privs %q, seccomp %q", iso.UIDMap, iso.NoNewPrivs, iso.Seccomp)
	}
	return iso, nil
}
