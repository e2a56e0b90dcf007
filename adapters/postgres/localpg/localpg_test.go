package localpg_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres/localpg"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	return conn
}

// A kept directory survives Stop and is reused by the next start: what
// `medsettle dev --data-dir` relies on.
func TestKeptDirSurvivesRestart(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL set: this run uses an external server, not private clusters")
	}
	t.Parallel()
	dir, err := os.MkdirTemp("/tmp", "localpg-kept-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sub := dir + "/cluster"

	c, err := localpg.StartWith(t.Context(), localpg.Options{Dir: sub, Durable: true})
	require.NoError(t, err)
	conn := connect(t, c.DSN("postgres"))
	_, err = conn.Exec(t.Context(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(t.Context()))
	require.NoError(t, c.Stop())
	require.DirExists(t, sub+"/data")

	c, err = localpg.StartWith(t.Context(), localpg.Options{Dir: sub, Durable: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	conn = connect(t, c.DSN("postgres"))
	var x int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT x FROM kept").Scan(&x))
	require.Equal(t, 7, x)
	require.NoError(t, conn.Close(t.Context()))
}

func TestStartStop(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL set: this run uses an external server, not private clusters")
	}
	t.Parallel()
	c, err := localpg.Start(t.Context())
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
	if os.Getenv("LOCALPG_CRASH_HELPER") == "1" {
		c, err := localpg.Start(t.Context())
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
	helper.Env = append(os.Environ(), "LOCALPG_CRASH_HELPER=1")
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
