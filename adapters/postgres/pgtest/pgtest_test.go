package pgtest_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.WithTemplate(seed))
}

// seed stands in for a package's migrations.
func seed(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		CREATE TABLE seeded (id int PRIMARY KEY, note text NOT NULL);
		INSERT INTO seeded VALUES (1, 'from template');`)
	return err
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func tableExists(t *testing.T, conn *pgx.Conn, table string) bool {
	t.Helper()
	var reg *string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT to_regclass($1)::text", table).Scan(&reg))
	return reg != nil
}

func TestNewDBDatabasesAreIndependent(t *testing.T) {
	t.Parallel()
	dsnA, dsnB := pgtest.NewDB(t), pgtest.NewDB(t)
	require.NotEqual(t, dsnA, dsnB)
	a, b := connect(t, dsnA), connect(t, dsnB)

	_, err := a.Exec(t.Context(), "CREATE TABLE only_in_a (x int)")
	require.NoError(t, err)
	require.True(t, tableExists(t, a, "only_in_a"))
	require.False(t, tableExists(t, b, "only_in_a"))

	var nameA, nameB string
	require.NoError(t, a.QueryRow(t.Context(), "SELECT current_database()").Scan(&nameA))
	require.NoError(t, b.QueryRow(t.Context(), "SELECT current_database()").Scan(&nameB))
	require.NotEqual(t, nameA, nameB)
}

func TestNewDBClonesTemplate(t *testing.T) {
	t.Parallel()
	a, b := connect(t, pgtest.NewDB(t)), connect(t, pgtest.NewDB(t))
	for _, conn := range []*pgx.Conn{a, b} {
		var note string
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT note FROM seeded WHERE id = 1").Scan(&note))
		require.Equal(t, "from template", note)
	}

	// Writes to a clone reach neither the template nor its siblings.
	_, err := a.Exec(t.Context(), "INSERT INTO seeded VALUES (2, 'only in a')")
	require.NoError(t, err)
	var n int
	require.NoError(t, b.QueryRow(t.Context(), "SELECT count(*) FROM seeded").Scan(&n))
	require.Equal(t, 1, n)
	c := connect(t, pgtest.NewDB(t))
	require.NoError(t, c.QueryRow(t.Context(), "SELECT count(*) FROM seeded").Scan(&n))
	require.Equal(t, 1, n)
}

// The path a pgbench benchmark takes: server binaries plus PG* variables.
func TestPGEnvDrivesCommandLineTools(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	env, err := pgtest.PGEnv(dsn)
	require.NoError(t, err)
	bin, err := pgtest.BinDir()
	require.NoError(t, err)
	psql := filepath.Join(bin, "psql")
	if _, err := os.Stat(psql); err != nil {
		t.Skipf("no psql next to the server binaries in %s", bin)
	}

	cmd := exec.CommandContext(t.Context(), psql, "-XAtc", "SELECT count(*) FROM seeded")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "1", strings.TrimSpace(string(out)))
}

func TestStartStop(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL set: this run uses an external server, not private clusters")
	}
	t.Parallel()
	c, err := pgtest.Start(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	require.DirExists(t, c.Dir)
	require.Equal(t, "127.0.0.1", c.Host)
	require.NotZero(t, c.Port)

	conn := connect(t, c.DSN("postgres"))
	var one int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT 1").Scan(&one))
	require.NoError(t, conn.Close(t.Context()))

	require.NoError(t, c.Stop())
	require.NoError(t, c.Stop(), "Stop is idempotent")
	require.NoDirExists(t, c.Dir)
	_, err = pgx.Connect(t.Context(), c.DSN("postgres"))
	require.Error(t, err)
}

// A test binary that dies without cleaning up (panic, -timeout, kill -9)
// must not leave a running server or its directory behind.
func TestCrashedOwnerIsCleanedUp(t *testing.T) {
	if os.Getenv("PGTEST_CRASH_HELPER") == "1" {
		c, err := pgtest.Start(t.Context())
		require.NoError(t, err)
		os.Stdout.WriteString("cluster " + c.Dir + " " + c.DSN("postgres") + "\n")
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // not reached
	}
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL set: this run uses an external server, not private clusters")
	}
	t.Parallel()

	helper := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashedOwnerIsCleanedUp$", "-test.count=1")
	helper.Env = append(os.Environ(), "PGTEST_CRASH_HELPER=1")
	out, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())
	var dir, dsn string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "cluster" {
			dir, dsn = f[1], f[2]
		}
	}
	require.Error(t, helper.Wait(), "helper should have been killed")
	require.NotEmpty(t, dir, "helper did not report its cluster")

	require.Eventually(t, func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	}, 20*time.Second, 50*time.Millisecond, "watchdog should remove %s", dir)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, dsn)
	require.Error(t, err, "server should be gone")
}
