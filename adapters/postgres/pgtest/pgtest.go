// Package pgtest gives tests a real, throwaway PostgreSQL database.
//
// Mocks and SQLite stand-ins hide exactly the behaviour a settlement engine
// depends on (transaction isolation, constraints, numeric rounding), so tests
// run against the real server. To keep that cheap, one private cluster is
// started per test binary and every test gets its own database cloned from a
// template, which takes about a tenth of a second and lets tests run in
// parallel without seeing each other's rows.
//
// Typical use:
//
//	func TestMain(m *testing.M) {
//		pgtest.Main(m, pgtest.WithTemplate(store.Migrate))
//	}
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDB(t) // migrated, empty, private to this test
//		...
//	}
//
// When DATABASE_URL is set no cluster is started; databases are created on
// that server instead (the role needs CREATEDB), under unique names, and
// dropped again afterwards. That is how to run the tests where PostgreSQL
// binaries cannot be installed. Otherwise missing binaries fail the tests
// with an install hint: database tests must never pass by not running.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/medsettle/medsettle/adapters/postgres/localpg"
)

// Option configures Main.
type Option func(*options)

type options struct {
	prepare func(ctx context.Context, dsn string) error
}

// WithTemplate runs prepare once per test binary against an empty database
// that then becomes the template for every NewDB. Running migrations here
// instead of in each test turns a per-test schema build into a cheap file
// copy. prepare must close its connections before returning; any it leaks are
// terminated, because PostgreSQL cannot clone a database that is in use.
func WithTemplate(prepare func(ctx context.Context, dsn string) error) Option {
	return func(o *options) { o.prepare = prepare }
}

// startTimeout bounds cluster start plus the template hook, which may run
// a whole migration history.
const startTimeout = 2 * time.Minute

var current atomic.Pointer[harness]

// Main runs the package's tests with the harness set up and exits with their
// status; it does not return. The cluster is started lazily by the first
// NewDB, so a package whose selected tests need no database pays nothing,
// and a start failure is reported (not skipped) by each test that needed it.
// Afterwards the cluster is stopped and its directory removed; if the binary
// dies instead (panic, -timeout), the cluster's watchdog does that.
func Main(m *testing.M, opts ...Option) {
	h := &harness{}
	for _, o := range opts {
		o(&h.opts)
	}
	current.Store(h)
	code := m.Run()
	current.Store(nil)
	if err := h.close(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: teardown:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDB returns the URL of a new database for this test, cloned from the
// template (or empty without WithTemplate). It is dropped when the test
// ends, after the test's own cleanups, so close pools with t.Cleanup.
// It needs Main in the package's TestMain and fails the test otherwise.
func NewDB(t testing.TB) string {
	t.Helper()
	h := current.Load()
	if h == nil {
		t.Fatal("pgtest: NewDB needs `func TestMain(m *testing.M) { pgtest.Main(m) }` in this package")
	}
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	name := h.nextName()
	if err := h.exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(h.template)); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: a connection the test leaked must not fail the next test's
		// teardown or keep disk in use.
		if err := h.exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(h.adminDSN, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// PGEnv turns a DSN into PGHOST/PGPORT/PGUSER/... variables for command-line
// tools such as psql and pgbench (see BinDir), so benchmarks can drive
// whichever server NewDB used, the private cluster or DATABASE_URL.
func PGEnv(dsn string) ([]string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	env := []string{
		"PGHOST=" + cfg.Host,
		"PGPORT=" + strconv.Itoa(int(cfg.Port)),
		"PGUSER=" + cfg.User,
		"PGDATABASE=" + cfg.Database,
	}
	if cfg.Password != "" {
		env = append(env, "PGPASSWORD="+cfg.Password)
	}
	if cfg.TLSConfig == nil {
		env = append(env, "PGSSLMODE=disable")
	}
	return env, nil
}

type harness struct {
	opts options

	once     sync.Once
	startErr error

	cluster  *localpg.Cluster // nil when using DATABASE_URL
	adminDSN string
	prefix   string // database names are prefix + counter
	template string // what NewDB clones
	ownTmpl  bool   // template was created by us and must be dropped

	mu    sync.Mutex // pgx.Conn is not safe for concurrent use
	admin *pgx.Conn
	n     atomic.Int64
}

func (h *harness) start() error {
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		h.startErr = h.doStart(ctx)
	})
	return h.startErr
}

func (h *harness) doStart(ctx context.Context) error {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		// A shared server may serve several test binaries at once (go test
		// runs packages in parallel) and keeps what crashed runs leave, so
		// names carry a random run id and a recognisable prefix.
		var b [4]byte
		_, _ = rand.Read(b[:])
		h.adminDSN, h.prefix = u, "pgtest_"+hex.EncodeToString(b[:])+"_"
	} else {
		c, err := localpg.Start(ctx)
		if err != nil {
			return err
		}
		h.cluster, h.adminDSN, h.prefix = c, c.DSN("postgres"), "test"
	}
	conn, err := pgx.Connect(ctx, h.adminDSN)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	h.admin = conn

	// template0 rather than template1: nobody can be connected to it, so
	// cloning never fails with "source database is being accessed".
	h.template = "template0"
	if h.opts.prepare == nil {
		return nil
	}
	tmpl := h.prefix + "template"
	if h.cluster != nil {
		tmpl = "pgtest_template"
	}
	if err := h.exec(ctx, "CREATE DATABASE "+ident(tmpl)+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("pgtest: create template database: %w", err)
	}
	h.template, h.ownTmpl = tmpl, true
	dsn, err := withDatabase(h.adminDSN, tmpl)
	if err != nil {
		return err
	}
	began := time.Now()
	if err := h.opts.prepare(ctx, dsn); err != nil {
		return fmt.Errorf("pgtest: template hook: %w", err)
	}
	slog.Debug("pgtest: template prepared", "database", tmpl, "took", time.Since(began))
	// Lock out new connections first, then end stragglers, so nothing can
	// slip in between and make CREATE DATABASE ... TEMPLATE fail.
	if err := h.exec(ctx, "ALTER DATABASE "+ident(tmpl)+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("pgtest: seal template: %w", err)
	}
	h.mu.Lock()
	_, err = h.admin.Exec(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", tmpl)
	h.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pgtest: disconnect template users: %w", err)
	}
	return nil
}

func (h *harness) nextName() string {
	return h.prefix + strconv.FormatInt(h.n.Add(1), 10)
}

func (h *harness) exec(ctx context.Context, sql string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.admin.Exec(ctx, sql)
	return err
}

// close undoes whatever start managed to do, including after a failed start.
func (h *harness) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if h.admin != nil {
		// On a private cluster the template vanishes with the cluster.
		if h.ownTmpl && h.cluster == nil {
			if err := h.exec(ctx, "DROP DATABASE IF EXISTS "+ident(h.template)+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop template: %w", err))
			}
		}
		_ = h.admin.Close(ctx)
	}
	if h.cluster != nil {
		errs = append(errs, h.cluster.Stop())
	}
	return errors.Join(errs...)
}

// withDatabase points a DSN (URL or keyword/value form) at another database.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgtest: parse DSN: %w", err)
		}
		u.Path, u.RawPath = "/"+db, ""
		return u.String(), nil
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return dsn + " dbname=" + db, nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// BinDir returns the directory holding the PostgreSQL server binaries
// (initdb, postgres, and on Debian also psql and pgbench), so benchmarks can
// run pgbench from the same installation the tests use.
func BinDir() (string, error) { return localpg.BinDir() }

// Tool is the path of a PostgreSQL client program (psql, pgbench) that
// stands next to the server binaries, or an error naming where it was
// looked for; run it with PGEnv.
func Tool(name string) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("pgtest: no %s next to the server binaries in %s: %w", name, dir, err)
	}
	return bin, nil
}
