package worker_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/kiln-project/kiln"

// forbidden are the packages, or trees of packages (ending in "/"), that
// a worker must not link: the server and everything below it, the SQL
// layer with its drivers, and the S3 client of the artifact store. A
// worker speaks to the service only through internal/workerproto.
// database/sql/driver alone is allowed: it is interfaces only, which
// github.com/google/uuid (brought by the cloud SDKs of the upload
// targets) implements for its UUID type.
var forbidden = []string{
	module + "/internal/service",
	module + "/internal/service/",
	"database/sql",
	"modernc.org/sqlite",
	"modernc.org/sqlite/",
	"github.com/jackc/pgx/",
	"github.com/lib/pq",
	"github.com/mattn/go-sqlite3",
	"github.com/minio/",
}

// goTool finds the go command: on PATH, else the toolchain this test was
// built with.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the toolchain that built the test
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("no go command on PATH nor at %s: %v", p, err)
	}
	return p
}

// deps lists pkg and every package it depends on, as go list -deps does
// (without test dependencies).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command(goTool(t), "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// isForbidden tells which entry of forbidden, if any, path falls under.
func isForbidden(path string) (string, bool) {
	for _, f := range forbidden {
		if path == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(path, f)) {
			return f, true
		}
	}
	return "", false
}

// The worker and its contract with the service link none of the server:
// no store, no SQL driver, no S3 client. The dependency runs the other
// way, from the service (which runs built-in workers) to the worker.
func TestWorkerLinksNoneOfTheServer(t *testing.T) {
	for _, pkg := range []string{module + "/internal/worker", module + "/internal/workerproto"} {
		t.Run(strings.TrimPrefix(pkg, module+"/"), func(t *testing.T) {
			all := deps(t, pkg)
			if len(all) < 2 || all[len(all)-1] != pkg {
				t.Fatalf("go list -deps %s listed %d packages, ending in %q: not the dependencies of %s", pkg, len(all), all[len(all)-1:], pkg)
			}
			for _, d := range all {
				if rule, bad := isForbidden(d); bad {
					t.Errorf("%s depends on %s (forbidden: %s); find the import with: go list -deps -f '{{.ImportPath}}: {{.Imports}}' %s", pkg, d, rule, pkg)
				}
			}
		})
	}
}

// The rule matches the packages a worker used to link, so that the test
// above cannot pass by matching nothing.
func TestForbiddenMatchesWhatTheWorkerUsedToLink(t *testing.T) {
	for _, path := range []string{
		module + "/internal/service",
		module + "/internal/service/store",
		module + "/internal/service/workerapi",
		"database/sql",
		"modernc.org/sqlite",
		"modernc.org/sqlite/lib",
		"github.com/jackc/pgx/v5/stdlib",
		"github.com/minio/minio-go/v7",
	} {
		if _, bad := isForbidden(path); !bad {
			t.Errorf("%s is not forbidden", path)
		}
	}
	for _, path := range []string{
		module + "/internal/worker",
		module + "/internal/workerproto",
		module + "/internal/servicefoo",
		"database/sqlx",
		"database/sql/driver", // interfaces only, which github.com/google/uuid implements
		"net/http",
	} {
		if rule, bad := isForbidden(path); bad {
			t.Errorf("%s is forbidden by %s", path, rule)
		}
	}
}
