// Package localpg runs a private PostgreSQL server from the machine's server
// binaries: for tests (through pgtest) and for `medsettle dev`, so that a
// laptop needs no database set up by hand.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL server that lives in a temporary directory
// and belongs to the process that started it. Tests get a real server with
// production semantics, but nothing they do can touch a developer's or CI
// machine's own databases, and everything disappears on Stop.
type Cluster struct {
	// Host is always 127.0.0.1: TCP works for every client (pgx, psql,
	// pgbench) without socket-path length limits or peer-auth surprises.
	Host string
	// Port is a free port picked at start, so any number of test binaries
	// (go test runs packages in parallel) can each run their own cluster.
	Port int
	// User is the superuser. Authentication is "trust" because the server
	// listens on loopback only and lives for a single test run.
	User string
	// Dir holds the data directory, the server log (server.log, worth
	// reading when a test fails mysteriously) and the Unix socket. Stop
	// removes it.
	Dir string

	postmaster *exec.Cmd
	exited     chan struct{} // closed once the postmaster has been reaped
	watchdog   *exec.Cmd
	watchIn    io.WriteCloser

	keep    bool // Dir outlives the cluster
	durable bool

	stopOnce sync.Once
	stopErr  error
}

// superuser is fixed (initdb -U) so DSNs look the same whoever runs the tests.
const superuser = "postgres"

// Server settings. Durability is switched off because a crashed test cluster
// is thrown away anyway, and fsync dominates the cost of DDL-heavy tests.
// max_connections leaves room for t.Parallel tests that each open a pool.
// The time zone is pinned so results never depend on the machine's TZ.
var serverSettings = []string{
	"listen_addresses=127.0.0.1",
	"fsync=off",
	"synchronous_commit=off",
	"full_page_writes=off",
	"max_connections=200",
	"shared_buffers=128MB",
	"timezone=UTC",
	"log_timezone=UTC",
}

// installHint is part of every "no binaries" error so that a missing
// package is fixed in one step instead of silently skipping database tests.
const installHint = "install PostgreSQL with `apt-get install -y postgresql` " +
	"(or set DATABASE_URL to use an existing server)"

var binDir = sync.OnceValues(findBinDir)

// BinDir returns the directory holding the PostgreSQL server binaries
// (initdb, postgres, and on Debian also psql and pgbench). It is exported so
// benchmarks can run pgbench from the same installation the tests use.
func BinDir() (string, error) { return binDir() }

// findBinDir looks where PostgreSQL actually ends up. On Debian the server
// binaries are not on PATH (only wrappers are), and pg_config may come from a
// libpq-dev of another major version, so every candidate is checked for
// initdb and postgres before it is trusted.
func findBinDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	if dirs, err := filepath.Glob("/usr/lib/postgresql/*/bin"); err == nil {
		// Newest major version first: "15" must sort above "9.6".
		slices.SortFunc(dirs, func(a, b string) int {
			return -compareVersion(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
		})
		candidates = append(candidates, dirs...)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("localpg: PostgreSQL server binaries (initdb, postgres) not found "+
		"via pg_config --bindir, /usr/lib/postgresql/*/bin or PATH; %s", installHint)
}

func compareVersion(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Start creates and starts a new cluster. ctx bounds only the startup; the
// server keeps running until Stop, which the caller must call (Main does it
// for tests). If the calling process dies without calling Stop — a panicking
// test, a -timeout, a SIGKILL — a watchdog process still shuts the server
// down and removes Dir, so crashed runs do not leak servers or disk.
func Start(ctx context.Context) (*Cluster, error) { return StartWith(ctx, Options{}) }

// Options change how a cluster is kept.
type Options struct {
	// Dir, when set, holds the cluster across runs: it is initialised when
	// empty, reused otherwise, and neither Stop nor the watchdog removes it.
	Dir string
	// Durable keeps fsync and synchronous commit on (a cluster whose data is kept).
	Durable bool
	// Port to listen on; 0 picks a free one.
	Port int
}

// StartWith starts a cluster as opts says; see Start.
func StartWith(ctx context.Context, opts Options) (_ *Cluster, err error) {
	began := time.Now()
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}

	// initdb and postgres refuse to run as root, so as root they run as the
	// postgres user, which needs to own the directory and reach it.
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	base, err := tempBase(cred != nil)
	if err != nil {
		return nil, err
	}
	var dir string
	if opts.Dir != "" {
		if dir, err = filepath.Abs(opts.Dir); err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
		if err == nil && cred != nil && !searchable(filepath.Dir(dir)) {
			err = fmt.Errorf("%s is not reachable by the postgres user", dir)
		}
	} else {
		dir, err = os.MkdirTemp(base, "localpg-")
	}
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	c := &Cluster{Host: "127.0.0.1", User: superuser, Dir: dir, keep: opts.Dir != "", durable: opts.Durable}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				slog.Warn("localpg: cleanup after failed start", "dir", dir, "err", stopErr)
			}
		}
	}()
	// The watchdog goes first so that even a crash during initdb leaves no
	// directory behind.
	if err := c.startWatchdog(); err != nil {
		return c, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return c, fmt.Errorf("localpg: %w", err)
		}
	}

	dataDir := filepath.Join(dir, "data")
	if _, statErr := os.Stat(filepath.Join(dataDir, "PG_VERSION")); statErr != nil {
		initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
			"-D", dataDir, "-U", superuser, "--auth=trust", "--no-sync",
			"--encoding=UTF8", "--locale=C")
		prepareServerCmd(initdb, dir, cred)
		if out, err := initdb.CombinedOutput(); err != nil {
			return c, fmt.Errorf("localpg: initdb: %w\n%s", err, out)
		}
	}

	logPath := filepath.Join(dir, "server.log")
	// Picking a free port and binding it are separate steps, and parallel
	// test binaries race for ports, so a lost race is retried.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return c, err
			}
		}
		err = c.startPostmaster(ctx, bin, dataDir, logPath, port, cred)
		if err == nil {
			c.Port = port
			break
		}
		if !errors.Is(err, errPortInUse) || attempt == attempts || opts.Port != 0 {
			return c, err
		}
	}
	slog.Debug("localpg: cluster ready", "dir", dir, "port", c.Port, "took", time.Since(began))
	return c, nil
}

var errPortInUse = errors.New("port already in use")

func (c *Cluster) startPostmaster(ctx context.Context, bin, dataDir, logPath string, port int, cred *syscall.Credential) error {
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	defer logFile.Close() // the child holds its own copy
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	args := []string{"-D", dataDir, "-p", strconv.Itoa(port)}
	for _, s := range serverSettings {
		if c.durable && (s == "fsync=off" || s == "synchronous_commit=off" || s == "full_page_writes=off") {
			continue
		}
		args = append(args, "-c", s)
	}
	// sun_path is about 107 bytes; with a long TMPDIR the socket is dropped
	// rather than failing the start, since clients use TCP anyway.
	sockDir := c.Dir
	if len(filepath.Join(sockDir, ".s.PGSQL.65535")) > 100 {
		sockDir = ""
	}
	args = append(args, "-c", "unix_socket_directories="+sockDir)

	// Not CommandContext: the server must outlive the startup context.
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	prepareServerCmd(cmd, c.Dir, cred)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localpg: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.postmaster, c.exited = cmd, exited
	if _, err := fmt.Fprintf(c.watchIn, "pid %d\n", cmd.Process.Pid); err != nil {
		slog.Warn("localpg: watchdog not told about server", "err", err)
	}

	dsn := c.dsnForPort(port, "postgres")
	for {
		err := ping(ctx, dsn)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			tail := readFrom(logPath, logStart)
			if strings.Contains(tail, "Address already in use") {
				return errPortInUse
			}
			return fmt.Errorf("localpg: postgres exited during startup (%s):\n%s", cmd.ProcessState, tail)
		case <-ctx.Done():
			return fmt.Errorf("localpg: postgres not ready: %w (last error: %v)\n%s",
				ctx.Err(), err, readFrom(logPath, logStart))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// watchdogScript outlives the test process on purpose. It learns the
// postmaster's pid over stdin; "done" means Stop cleaned up. EOF without
// "done" means the owner died (the kernel closes its pipe however it died),
// so the script does an immediate shutdown and removes the directory.
const watchdogScript = `
pid=
while read -r cmd arg; do
	case "$cmd" in
	pid) pid="$arg" ;;
	done) exit 0 ;;
	esac
done
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null
fi
[ "$2" = keep ] || rm -rf "$1"
`

func (c *Cluster) startWatchdog() error {
	mode := "remove"
	if c.keep {
		mode = "keep"
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "localpg-watchdog", c.Dir, mode)
	// Own process group: a Ctrl-C aimed at go test must not kill the
	// watchdog before it has done its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("localpg: watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localpg: watchdog: %w", err)
	}
	c.watchdog, c.watchIn = cmd, in
	return nil
}

// Stop shuts the server down and removes Dir. It is safe to call more than
// once. A fast shutdown (disconnecting clients) is tried first; a server that
// does not comply is escalated to an immediate shutdown and then killed, so
// Stop never hangs a test binary.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	var errs []error
	if c.postmaster != nil {
		stopped := false
		for _, step := range []struct {
			sig  os.Signal
			wait time.Duration
		}{{syscall.SIGINT, 15 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
			_ = c.postmaster.Process.Signal(step.sig) // fails only if already gone
			select {
			case <-c.exited:
				stopped = true
			case <-time.After(step.wait):
				slog.Warn("localpg: postgres did not stop, escalating", "signal", step.sig, "dir", c.Dir)
			}
			if stopped {
				break
			}
		}
		if !stopped {
			errs = append(errs, fmt.Errorf("localpg: postgres (pid %d) did not exit", c.postmaster.Process.Pid))
		}
	}
	var removeErr error
	if !c.keep {
		removeErr = os.RemoveAll(c.Dir)
	}
	if removeErr != nil {
		errs = append(errs, fmt.Errorf("localpg: %w", removeErr))
	}
	if c.watchdog != nil {
		// Only a clean stop dismisses the watchdog; otherwise it retries.
		if removeErr == nil && len(errs) == 0 {
			_, _ = io.WriteString(c.watchIn, "done\n")
		}
		_ = c.watchIn.Close()
		_ = c.watchdog.Wait()
	}
	return errors.Join(errs...)
}

// DSN returns a URL for database db on this cluster.
func (c *Cluster) DSN(db string) string { return c.dsnForPort(c.Port, db) }

func (c *Cluster) dsnForPort(port int, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable",
		c.User, net.JoinHostPort(c.Host, strconv.Itoa(port)), db)
}

// serverCredential returns nil when the server can run as the current user,
// or the postgres user's identity when we are root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localpg: running as root needs a 'postgres' user to run the server as "+
			"(PostgreSQL refuses root): %w; %s", err, installHint)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("localpg: postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("localpg: postgres gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareServerCmd gives server binaries a predictable environment: the C
// locale (so messages such as "Address already in use" are not translated
// and initdb does not depend on installed locales), a working directory the
// postgres user can enter, no inherited PG* variables, and their own process
// group so terminal signals go to the test binary only.
func prepareServerCmd(cmd *exec.Cmd, dir string, cred *syscall.Credential) {
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

// shmMinFree keeps clusters off a small /dev/shm: Docker's default is 64 MB,
// while a cluster needs about 40 MB plus about 8 MB per live test database.
const shmMinFree = 1 << 30

// tempBase picks where the cluster directory goes. RAM is preferred: with
// durability off the cluster never needs a disk, and on ext4 CREATE DATABASE
// measured ~10x slower than on tmpfs. When the server runs as another user
// every ancestor must be searchable by it, which is not true of, say, a
// TMPDIR under /root; /tmp is the fallback.
func tempBase(otherUser bool) (string, error) {
	const shm = "/dev/shm"
	var st syscall.Statfs_t
	if syscall.Statfs(shm, &st) == nil && uint64(st.Bavail)*uint64(st.Bsize) >= shmMinFree &&
		(!otherUser || searchable(shm)) {
		return shm, nil
	}
	base := os.TempDir()
	if !otherUser || searchable(base) {
		return base, nil
	}
	if searchable("/tmp") {
		return "/tmp", nil
	}
	return "", fmt.Errorf("localpg: neither %s nor /tmp is reachable by the postgres user", base)
}

func searchable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readFrom returns what the server logged since offset, capped so an error
// message stays readable.
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	b = b[offset:]
	const maxTail = 4 << 10
	if len(b) > maxTail {
		b = b[len(b)-maxTail:]
	}
	return string(b)
}
