package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/localpg"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// benchPersons synthetic persons are added to the 120 seeded ones, so that
// concurrent settlements rarely meet on one person's counters.
const benchPersons = 2000

// BenchmarkSettle measures durable settlements per second: each iteration is
// one Settle (one SERIALIZABLE transaction: counters, settlement, ledger
// transaction, chain head, outbox, visit and message), with the visit and its
// lines prepared beforehand, off the clock. pgbench -N runs against the same
// cluster with the same number of clients as a yardstick for the hardware,
// in rounds that alternate with the settling rounds (benchRounds). Before
// the clock starts, the settle database is vacuumed as pgbench -i leaves
// its own (settled).
//
// Metrics: settles/s; retries (serialization failures retried during the
// timed part); tx-calls/op (settlement.Tx calls per settle, retried attempts
// included; the statements read ahead and the writes travel in two pipelined
// round trips, BEGIN and COMMIT among them); client-cpu-us/op (this process,
// user+system) and server-cpu-us/op (the cluster's processes, when the
// server is local); wal-bytes/op; pgbench-N-tps, pgbench-server-cpu-us/txn,
// pgbench-wal-bytes/txn and ratio-vs-pgbench (settles/s over pgbench -N tps).
//
// BENCH_POOL sets the pool's size; BENCH_SQL is run on the settle database
// after migration and before anything else, to measure a schema experiment.
//
// Durable: both run on a private cluster of the benchmark's own with fsync
// and synchronous_commit on (the tests' shared cluster has them off), so a
// settle counts only once its COMMIT is flushed to disk, as pgbench's
// transactions do. With DATABASE_URL set both run on that server instead,
// durable or not as it is configured.
// Messages carry national-shape msgids (see msgids), so that their locality
// in the messages primary key is the production one.
func BenchmarkSettle(b *testing.B) {
	ctx := context.Background()
	// The engine's process collects garbage at GOGC=400, as medsettle serve
	// and dev run (cmd/medsettle lessGC), unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	dsn, pgbenchDSN := benchDatabases(b)
	if q := os.Getenv("BENCH_SQL"); q != "" {
		// An experiment on the schema (an index dropped, a storage
		// parameter changed) measured without a migration of its own.
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(b, err)
		_, err = c.Exec(ctx, q)
		require.NoError(b, err)
		c.Close(ctx)
	}
	if n := os.Getenv("BENCH_POOL"); n != "" {
		dsn += "&pool_max_conns=" + n
	}
	st, err := postgres.Open(ctx, dsn, quietLog())
	require.NoError(b, err)
	b.Cleanup(st.Close)
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(b, err)
	synthetic := syntheticPersons(b, rs, benchPersons)
	require.NoError(b, st.SeedPersons(ctx, synthetic))
	persons := append(seededPersons(b, rs), synthetic...)
	byRegion, all := hospitalsByRegion(rs)
	cs := &countingStore{Store: st}
	eng := &settlement.Engine{Rules: rs, Store: cs, Now: newTickClock().Now}
	ids := &msgids{}

	// Mid-year steady state: every person has this year's counters row and
	// a ledger chain before the clock starts. (A person's first settlement
	// of a year also reads the previous year and inserts both rows.)
	warm := time.Now()
	wr := rand.New(rand.NewPCG(1, 2))
	everyone := make([]*settlement.Person, len(persons))
	for i := range persons {
		everyone[i] = &persons[i]
	}
	if err := settleAll(eng, ids, prepareVisits(b, eng, ids, wr, everyone, byRegion, all), 16); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.Logf("warm-up: one settlement for each of %d persons in %s", len(persons), time.Since(warm).Round(time.Millisecond))

	pg := newPgbench(b, pgbenchDSN, st)
	cpu := newServerCPU(ctx, st)

	for _, conc := range []int{8, 32} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(conc), uint64(b.N)))
			who := make([]*settlement.Person, b.N)
			for i := range who {
				who[i] = &persons[r.IntN(len(persons))]
			}
			visits := prepareVisits(b, eng, ids, r, who, byRegion, all)
			settled(b, st)

			// Rounds of settling alternate with rounds of pgbench, so that
			// both see the same machine: on a shared one, a slow minute
			// slows both rather than one. (The b.N=1 pass that the testing
			// package runs first measures nothing against pgbench.)
			rounds := benchRounds
			if b.N < rounds {
				rounds = 1
			}
			var elapsed, clientUsed, serverUsed time.Duration
			var wal int64
			var pgb pgbenchResult
			stats0, calls0 := st.Stats(), cs.calls.Load()
			b.ResetTimer()
			for round := range rounds {
				part := visits[round*len(visits)/rounds : (round+1)*len(visits)/rounds]
				wal0 := walBytes(ctx, st)
				cpu.start()
				client0 := clientCPU()
				b.StartTimer()
				began := time.Now()
				err := settleAll(eng, ids, part, conc)
				elapsed += time.Since(began)
				b.StopTimer()
				clientUsed += clientCPU() - client0
				serverUsed += cpu.stop()
				wal += walBytes(ctx, st) - wal0
				if err != nil {
					b.Fatalf("settle: %v", err)
				}
				if b.N > 1 {
					pgb.add(pg.run(b, conc, cpu))
				}
			}
			stats := st.Stats()
			n := float64(b.N)
			b.ReportMetric(n/elapsed.Seconds(), "settles/s")
			b.ReportMetric(float64(stats.Retries-stats0.Retries), "retries")
			b.ReportMetric(float64(cs.calls.Load()-calls0)/n, "tx-calls/op")
			b.ReportMetric(float64(clientUsed.Microseconds())/n, "client-cpu-us/op")
			if serverUsed > 0 {
				b.ReportMetric(float64(serverUsed.Microseconds())/n, "server-cpu-us/op")
			}
			if wal > 0 {
				b.ReportMetric(float64(wal)/n, "wal-bytes/op")
			}
			if pgb.txns == 0 {
				return
			}
			tps := float64(pgb.txns) / pgb.elapsed.Seconds()
			b.ReportMetric(tps, "pgbench-N-tps")
			b.ReportMetric(n/elapsed.Seconds()/tps, "ratio-vs-pgbench")
			if pgb.wal > 0 {
				b.ReportMetric(float64(pgb.wal)/float64(pgb.txns), "pgbench-wal-bytes/txn")
			}
			if pgb.serverCPU > 0 {
				b.ReportMetric(float64(pgb.serverCPU.Microseconds())/float64(pgb.txns), "pgbench-server-cpu-us/txn")
			}
		})
	}
}

// benchRounds is how many rounds of settling and of pgbench alternate:
// many short ones, so that both sample the same moments of a shared machine
// (with 3 rounds, runs of one commit moved the ratio by ±0.04).
const benchRounds = 6

// settled leaves the settle database as pgbench -i leaves its own before
// the clock starts: vacuumed and analyzed after the bulk of inserts that
// prepared it, so that autovacuum's catching up does not land in the timed
// rounds. (Not checkpointed: the writes after a checkpoint pay full-page
// images, and pgbench's, updating rows all over its tables, pay them far
// more: its WAL per transaction went from ~330 bytes to ~2,800.)
func settled(b *testing.B, st *postgres.Store) {
	b.Helper()
	_, err := st.Pool().Exec(context.Background(), "VACUUM ANALYZE")
	require.NoError(b, err)
}

// benchDatabases returns the settle database (migrated and seeded) and an
// empty one for pgbench, on one durable cluster started for the benchmark,
// or on DATABASE_URL's server when that is set.
func benchDatabases(b *testing.B) (settleDSN, pgbenchDSN string) {
	b.Helper()
	if os.Getenv("DATABASE_URL") != "" {
		return pgtest.NewDB(b), pgtest.NewDB(b)
	}
	ctx := context.Background()
	// On disk: localpg's default place is /dev/shm, where fsync costs nothing.
	// /var/tmp is disk-backed by convention and reachable by the postgres user.
	dir, err := os.MkdirTemp("/var/tmp", "medsettle-bench-")
	require.NoError(b, err)
	require.NoError(b, os.Chmod(dir, 0o755))
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := localpg.StartWith(ctx, localpg.Options{Durable: true, Dir: filepath.Join(dir, "pg")})
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Stop() })
	admin, err := pgx.Connect(ctx, c.DSN("postgres"))
	require.NoError(b, err)
	defer admin.Close(ctx)
	for _, db := range []string{"settle", "pgbench"} {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+db)
		require.NoError(b, err)
	}
	settleDSN = c.DSN("settle")
	require.NoError(b, pgfixture.Prepare(ctx, settleDSN))
	return settleDSN, c.DSN("pgbench")
}

// msgids makes msgids in the national shape: fixmedins_code, the time to the
// second and a 4-digit sequence number of the institution. Consecutive
// messages of an institution are neighbours in the messages primary key, as
// they are in production.
type msgids struct {
	mu  sync.Mutex
	seq map[string]int
}

func (m *msgids) msg(inst, infno string) settlement.Msg {
	m.mu.Lock()
	if m.seq == nil {
		m.seq = map[string]int{}
	}
	m.seq[inst]++
	n := m.seq[inst]
	m.mu.Unlock()
	// Unique as long as an institution sends fewer than 10,000 messages a second.
	id := fmt.Sprintf("%s%s%04d", inst, time.Now().Format("20060102150405"), n%10000)
	return settlement.Msg{ID: id, Infno: infno, Institution: inst, Digest: infno + id}
}

type benchVisit struct {
	inst string
	in   settlement.SettleInput
}

// settleAll settles the visits with conc goroutines and returns the first error.
func settleAll(eng *settlement.Engine, ids *msgids, visits []benchVisit, conc int) error {
	ctx := context.Background()
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for firstErr.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(visits) {
					return
				}
				v := &visits[i]
				if _, err := eng.Settle(ctx, ids.msg(v.inst, "2207"), v.in); err != nil {
					err = fmt.Errorf("settling %s: %w", v.in.MdtrtID, err)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// prepareVisits registers an outpatient visit with 1-3 lines for each
// person of who (16 at a time), at a hospital of their region mostly.
func prepareVisits(b testing.TB, eng *settlement.Engine, ids *msgids, r *rand.Rand, who []*settlement.Person,
	byRegion map[string][]string, all []string) []benchVisit {
	b.Helper()
	ctx := context.Background()
	type job struct {
		inst  string
		lines []settlement.LineInput
		acct  bool
	}
	jobs := make([]job, len(who))
	for i, p := range who {
		jobs[i] = job{inst: pickHospital(r, p, byRegion, all), lines: randomLines(r), acct: r.IntN(2) == 0}
	}
	out := make([]benchVisit, len(who))
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for firstErr.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(who) {
					return
				}
				j, p := jobs[i], who[i]
				v, err := eng.RegisterVisit(ctx, ids.msg(j.inst, "2201"), settlement.VisitInput{
					PsnNo: p.PsnNo, Kind: settlement.VisitOutpatient, MedType: "11"})
				if err == nil {
					_, err = eng.UploadLines(ctx, ids.msg(j.inst, "2204"), v.MdtrtID, p.PsnNo, j.lines)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				out[i] = benchVisit{inst: j.inst, in: settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, UseAccount: j.acct}}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		b.Fatalf("preparing visits: %v", *p)
	}
	return out
}

// syntheticPersons builds n registry rows with valid GB 11643 ID numbers,
// spread over the pooling regions, and validates them as the seed would.
func syntheticPersons(b testing.TB, rs *rules.RuleSet, n int) []settlement.Person {
	b.Helper()
	var regions []string
	for code := range rs.Regions {
		regions = append(regions, code)
	}
	slices.Sort(regions)
	var csv bytes.Buffer
	csv.WriteString("psn_no,psn_name,gend,certno,card_no,insuplc_admdvs,insutype,retired,assistance,acct_balc,registered_admdvs,reg_begn,reg_endn\n")
	birth0 := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		region := regions[i%len(regions)]
		birth := birth0.AddDate(0, 0, 7*i).Format("20060102")
		cert := certnoWithCheck(region + birth + fmt.Sprintf("%03d", i%1000))
		insutype, balc := "310", money2(int64(100000+(i*7919)%500000))
		if i%4 == 3 {
			insutype, balc = "390", "0.00"
		}
		retired := "0"
		if i%5 == 0 {
			retired = "1"
		}
		fmt.Fprintf(&csv, "B%s%013d,基准%d,%d,%s,B%011d,%s,%s,%s,,%s,,,\n",
			region, i, i, 1+i%2, cert, i, region, insutype, retired, balc)
	}
	persons, err := settlement.ParsePersons(&csv, rs)
	require.NoError(b, err)
	require.Len(b, persons, n)
	return persons
}

// certnoWithCheck appends the GB 11643 check digit to 17 digits.
func certnoWithCheck(s17 string) string {
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		sum += int(s17[i]-'0') * weights[i]
	}
	return s17 + string("10X98765432"[sum%11])
}

// countingStore counts the settlement.Tx calls the engine makes (every
// attempt's, retries included): each is one query or one pipelined batch.
type countingStore struct {
	*postgres.Store
	calls atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	return c.Store.Update(ctx, func(ctx context.Context, tx settlement.Tx) error {
		return fn(ctx, &countingTx{Tx: tx, n: &c.calls})
	})
}

func (c *countingStore) View(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	return c.Store.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
		return fn(ctx, &countingTx{Tx: tx, n: &c.calls})
	})
}

type countingTx struct {
	settlement.Tx
	n *atomic.Int64
}

func (c *countingTx) Prefetch(k settlement.Prefetch) {
	if p, ok := c.Tx.(settlement.Prefetcher); ok {
		p.Prefetch(k)
	}
}
func (c *countingTx) Message(ctx context.Context, id string) (*settlement.Message, error) {
	c.n.Add(1)
	return c.Tx.Message(ctx, id)
}
func (c *countingTx) PutMessage(ctx context.Context, m *settlement.Message) error {
	c.n.Add(1)
	return c.Tx.PutMessage(ctx, m)
}
func (c *countingTx) Person(ctx context.Context, id string) (*settlement.Person, error) {
	c.n.Add(1)
	return c.Tx.Person(ctx, id)
}
func (c *countingTx) PersonByCert(ctx context.Context, t, no string) (*settlement.Person, error) {
	c.n.Add(1)
	return c.Tx.PersonByCert(ctx, t, no)
}
func (c *countingTx) Counters(ctx context.Context, psn string, year int) (settlement.YearCounters, error) {
	c.n.Add(1)
	return c.Tx.Counters(ctx, psn, year)
}
func (c *countingTx) PutCounters(ctx context.Context, yc settlement.YearCounters) error {
	c.n.Add(1)
	return c.Tx.PutCounters(ctx, yc)
}
func (c *countingTx) Visit(ctx context.Context, id string) (*settlement.Visit, error) {
	c.n.Add(1)
	return c.Tx.Visit(ctx, id)
}
func (c *countingTx) PutVisit(ctx context.Context, v *settlement.Visit) error {
	c.n.Add(1)
	return c.Tx.PutVisit(ctx, v)
}
func (c *countingTx) Lines(ctx context.Context, id string) ([]settlement.FeeLine, error) {
	c.n.Add(1)
	return c.Tx.Lines(ctx, id)
}
func (c *countingTx) PutLines(ctx context.Context, l []settlement.FeeLine) error {
	c.n.Add(1)
	return c.Tx.PutLines(ctx, l)
}
func (c *countingTx) WithdrawBatch(ctx context.Context, id, bch string) (int, error) {
	c.n.Add(1)
	return c.Tx.WithdrawBatch(ctx, id, bch)
}
func (c *countingTx) Settlement(ctx context.Context, id string) (*settlement.Settlement, error) {
	c.n.Add(1)
	return c.Tx.Settlement(ctx, id)
}
func (c *countingTx) PutSettlement(ctx context.Context, s *settlement.Settlement) error {
	c.n.Add(1)
	return c.Tx.PutSettlement(ctx, s)
}
func (c *countingTx) SetSettlementStatus(ctx context.Context, id string, s settlement.SettlementStatus) error {
	c.n.Add(1)
	return c.Tx.SetSettlementStatus(ctx, id, s)
}
func (c *countingTx) SettlementsOf(ctx context.Context, q settlement.PeriodQuery) ([]settlement.Settlement, error) {
	c.n.Add(1)
	return c.Tx.SettlementsOf(ctx, q)
}
func (c *countingTx) ChainHead(ctx context.Context, chain string) (settlement.ChainHead, error) {
	c.n.Add(1)
	return c.Tx.ChainHead(ctx, chain)
}
func (c *countingTx) AppendLedger(ctx context.Context, t *settlement.LedgerTxn, ev *settlement.Event) error {
	c.n.Add(1)
	return c.Tx.AppendLedger(ctx, t, ev)
}

// walBytes is the cluster's WAL written so far (pg_stat_wal, PostgreSQL 14
// and later; 0 where there is none, as on CockroachDB). The WAL a settlement
// writes is a cost it carries wherever the database runs, and one that
// timing noise does not blur.
func walBytes(ctx context.Context, st *postgres.Store) int64 {
	var n int64
	if st.Pool().QueryRow(ctx, `SELECT wal_bytes::INT8 FROM pg_stat_wal`).Scan(&n) != nil {
		return 0
	}
	return n
}

// clientCPU is the CPU time this process has used.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU samples the CPU time of the cluster's processes (children of the
// postmaster, read from /proc) while a measurement runs. Sampling every
// 100ms keeps the time of backends that exit before the end (pgbench's),
// minus their last interval. It measures nothing when the server is not a
// local process (DATABASE_URL elsewhere).
type serverCPU struct {
	postmaster int
	mu         sync.Mutex
	base, last map[int]int64 // ticks by pid
	stopc      chan struct{}
	done       chan struct{}
}

func newServerCPU(ctx context.Context, st *postgres.Store) *serverCPU {
	s := &serverCPU{}
	var pid int
	if st.Pool().QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid) != nil {
		return s
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return s
	}
	if ppid, _, ok := procStat(pid); ok {
		s.postmaster = ppid
	}
	return s
}

// procStat returns a process's parent and its user+system CPU ticks.
func procStat(pid int) (ppid int, ticks int64, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command may contain spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, ut + stt, true
}

func (s *serverCPU) sample() map[int]int64 {
	out := map[int]int64{}
	if s.postmaster == 0 {
		return out
	}
	if _, t, ok := procStat(s.postmaster); ok {
		out[s.postmaster] = t
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, t, ok := procStat(pid); ok && ppid == s.postmaster {
			out[pid] = t
		}
	}
	return out
}

func (s *serverCPU) start() {
	if s.postmaster == 0 {
		return
	}
	s.base = s.sample()
	s.last = map[int]int64{}
	s.stopc, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			m := s.sample()
			s.mu.Lock()
			for pid, t := range m {
				s.last[pid] = t
			}
			s.mu.Unlock()
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
}

// stop returns the CPU time the server used since start (0 when unknown).
func (s *serverCPU) stop() time.Duration {
	if s.postmaster == 0 {
		return 0
	}
	close(s.stopc)
	<-s.done
	for pid, t := range s.sample() {
		s.last[pid] = t
	}
	var ticks int64
	for pid, t := range s.last {
		ticks += t - s.base[pid] // a pid new since start has base 0
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}

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
	dir, err := pgtest.BinDir()
	require.NoError(b, err)
	bin := filepath.Join(dir, "pgbench")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("pgbench"); err != nil {
			b.Fatalf("pgbench not found in %s nor on PATH", dir)
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
