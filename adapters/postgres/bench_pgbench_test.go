package postgres_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
)

// pgbench -N, BenchmarkSettle's yardstick for the hardware.

// pgbench runs pgbench -N on a database of its own in the same cluster.
type pgbench struct {
	st  *postgres.Store // a connection to the same cluster, for its WAL position
	bin string
	env []string
}

// pgbenchResult is what one or more pgbench runs did.
type pgbenchResult struct {
	txns      int64
	elapsed   time.Duration
	serverCPU time.Duration
	wal       int64
}

func (r *pgbenchResult) add(o pgbenchResult) {
	r.txns += o.txns
	r.elapsed += o.elapsed
	r.serverCPU += o.serverCPU
	r.wal += o.wal
}

func newPgbench(b *testing.B, dsn string, st *postgres.Store) *pgbench {
	b.Helper()
	env, err := pgtest.PGEnv(dsn)
	require.NoError(b, err)
	bin, err := pgtest.Tool("pgbench")
	if err != nil {
		var onPath error
		if bin, onPath = exec.LookPath("pgbench"); onPath != nil {
			b.Fatalf("%v, nor on PATH", err)
		}
	}
	// pgbench is a client: unlike initdb and postgres it runs as root, and
	// reaches the cluster over TCP as PGUSER (trust authentication).
	p := &pgbench{bin: bin, env: env, st: st}
	out := p.cmd(b, "-i", "-s", "10", "-q")
	b.Logf("pgbench -i -s 10: %s", lastLine(out))
	return p
}

func (p *pgbench) cmd(b *testing.B, args ...string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	// Inherited PG* variables must not redirect pgbench to another server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, p.env...)
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "pgbench %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

var tpsRE = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// pgbenchSeconds is the length of one pgbench round.
const pgbenchSeconds = 2

// run runs one round of pgbench -N with clients clients.
func (p *pgbench) run(b *testing.B, clients int, cpu *serverCPU) pgbenchResult {
	b.Helper()
	wal0 := walBytes(context.Background(), p.st)
	cpu.start()
	out := p.cmd(b, "-N", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(pgbenchSeconds), "-n")
	used := cpu.stop()
	wal := walBytes(context.Background(), p.st) - wal0
	m := tpsRE.FindStringSubmatch(out)
	require.NotNil(b, m, "no tps in pgbench output:\n%s", out)
	tps, err := strconv.ParseFloat(m[1], 64)
	require.NoError(b, err)
	mt := txnsRE.FindStringSubmatch(out)
	require.NotNil(b, mt, "no transaction count in pgbench output:\n%s", out)
	txns, err := strconv.ParseInt(mt[1], 10, 64)
	require.NoError(b, err)
	b.Logf("pgbench -N -c %d -j 2 -T %d: tps = %.1f", clients, pgbenchSeconds, tps)
	// tps is over the time the clients ran, without connecting: elapsed
	// is what that time was, so that rounds add up.
	return pgbenchResult{txns: txns, elapsed: time.Duration(float64(txns) / tps * float64(time.Second)),
		serverCPU: used, wal: wal}
}

var txnsRE = regexp.MustCompile(`number of transactions actually processed: (\d+)`)

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
