package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

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
	_, err = pgtest.BinDir()
	require.NoError(t, err)
	psql, err := pgtest.Tool("psql")
	if err != nil {
		t.Skip(err)
	}

	cmd := exec.CommandContext(t.Context(), psql, "-XAtc", "SELECT count(*) FROM seeded")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "1", strings.TrimSpace(string(out)))
}
