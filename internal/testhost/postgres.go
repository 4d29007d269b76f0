package testhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgCluster is the one throwaway PostgreSQL server of a test binary.
var pgCluster struct {
	once sync.Once
	err  error

	mu     sync.Mutex
	dir    string // owns the data directory, the socket and the log
	proc   *os.Process
	exited chan struct{}
	port   int

	dbs atomic.Int64
}

// StartPostgres returns the DSN of a new, empty database for this test on
// a PostgreSQL server that the test binary starts the first time it is
// asked (initdb into a temporary directory, listening on 127.0.0.1 on a
// free port with its socket in that directory, fsync off, trust auth). The
// database is dropped when the test ends. Call MainWithPostgres (or
// StopPostgres) from TestMain to stop the server when the tests end; if the
// test binary dies instead, the kernel stops the server with it.
//
// The server's binaries come from Debian's postgresql package
// (/usr/lib/postgresql/*/bin); without them the test fails, saying to run
// ./scripts/setup.
func StartPostgres(tb testing.TB) string {
	tb.Helper()
	pgCluster.once.Do(func() { pgCluster.err = startPostgres() })
	if pgCluster.err != nil {
		tb.Fatalf("starting a PostgreSQL server for the tests: %v", pgCluster.err)
	}
	name := fmt.Sprintf("kiln_test_%d_%d", os.Getpid(), pgCluster.dbs.Add(1))
	if err := pgAdmin(context.Background(), `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("creating the test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgAdmin(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Logf("dropping the test database: %v", err)
		}
	})
	return pgDSN(name)
}

// MainWithPostgres runs the tests, stops the PostgreSQL server if a test
// started one and exits: call it as TestMain.
func MainWithPostgres(m *testing.M) {
	code := m.Run()
	StopPostgres()
	os.Exit(code)
}

// StopPostgres stops the server StartPostgres started, if any, and removes
// its files.
func StopPostgres() {
	pgCluster.mu.Lock()
	defer pgCluster.mu.Unlock()
	if pgCluster.proc != nil {
		// SIGINT: fast shutdown (clients are disconnected).
		_ = pgCluster.proc.Signal(syscall.SIGINT)
		select {
		case <-pgCluster.exited:
		case <-time.After(15 * time.Second):
			_ = pgCluster.proc.Signal(syscall.SIGQUIT)
			<-pgCluster.exited
		}
		pgCluster.proc = nil
	}
	if pgCluster.dir != "" {
		_ = os.RemoveAll(pgCluster.dir)
		pgCluster.dir = ""
	}
}

func pgDSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pgCluster.port, db)
}

func pgAdmin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, pgDSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// postgresBinDir finds the newest PostgreSQL server installed the Debian
// way, else one on PATH.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && isExecutable(filepath.Join(filepath.Dir(p), "postgres")) {
		return filepath.Dir(p), nil
	}
	return "", errors.New("the PostgreSQL server (initdb, postgres) is not installed: run ./scripts/setup")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func startPostgres() error {
	bin, err := postgresBinDir()
	if err != nil {
		return err
	}
	removeStalePostgresDirs()
	// PostgreSQL refuses to run as root: as root, run it as the postgres
	// user that Debian's package creates.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, the server runs as the postgres user, which is missing (run ./scripts/setup): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "kiln-pg-")
	if err != nil {
		return err
	}
	pgCluster.dir = dir
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "data")
	env := []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + dir}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir, initdb.Env = dir, env
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		pgCluster.dir = ""
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	// Another test binary may take the free port first: try a few.
	for try := 0; ; try++ {
		err = runPostgres(bin, dir, data, env, cred)
		if err == nil || try == 4 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		pgCluster.dir = ""
	}
	return err
}

func runPostgres(bin, dir, data string, env []string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "postgres.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=500", "-c", "shared_buffers=128MB")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, log, log
	// If the test binary dies without stopping the server, the kernel
	// sends it SIGQUIT (immediate shutdown): no server outlives the tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	pgCluster.mu.Lock()
	pgCluster.proc, pgCluster.exited, pgCluster.port = cmd.Process, exited, port
	pgCluster.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			pgCluster.mu.Lock()
			pgCluster.proc = nil
			pgCluster.mu.Unlock()
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start: %s", strings.TrimSpace(string(out)))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, pgDSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			StopPostgres()
			return fmt.Errorf("postgres did not accept connections in time: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStalePostgresDirs removes what test binaries that died left behind:
// directories of servers that are no longer running, a while old.
func removeStalePostgresDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "kiln-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(pid), "\n")
			if n, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && syscall.Kill(n, 0) == nil {
				continue
			}
		}
		_ = os.RemoveAll(d)
	}
}
