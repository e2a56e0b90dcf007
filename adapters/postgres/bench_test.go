package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/localpg"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
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
	// The engine's process collects garbage at GOGC=400, as medsettle serve
	// and dev run (cmd/medsettle lessGC), unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	be := newSettleBench(b)
	for _, conc := range []int{8, 32} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { be.run(b, conc) })
	}
}

// settleBench is BenchmarkSettle's platform, warmed up, with pgbench and
// the server's CPU meter beside it.
type settleBench struct {
	st       *postgres.Store
	cs       *countingStore
	eng      *settlement.Engine
	ids      *msgids
	persons  []settlement.Person
	byRegion map[string][]string
	all      []string
	pg       *pgbench
	cpu      *serverCPU
}

func newSettleBench(b *testing.B) *settleBench {
	ctx := context.Background()
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
	st, err := postgres.Open(ctx, dsn, pgfixture.Quiet())
	require.NoError(b, err)
	b.Cleanup(st.Close)
	rs := storetest.Rules(b)
	synthetic := syntheticPersons(b, rs, benchPersons)
	require.NoError(b, st.SeedPersons(ctx, synthetic))
	persons := append(storetest.Persons(b), synthetic...)
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
	return &settleBench{st: st, cs: cs, eng: eng, ids: ids, persons: persons, byRegion: byRegion, all: all, pg: pg, cpu: cpu}
}

// settleRounds are what the timed rounds of one concurrency measured.
type settleRounds struct {
	elapsed, clientUsed, serverUsed time.Duration
	wal                             int64
	pgb                             pgbenchResult
	retries, calls                  int64 // serialization failures retried, settlement.Tx calls
}

// run is one concurrency's sub-benchmark.
func (be *settleBench) run(b *testing.B, conc int) {
	ctx := context.Background()
	st, cs, cpu := be.st, be.cs, be.cpu
	r := rand.New(rand.NewPCG(uint64(conc), uint64(b.N)))
	who := make([]*settlement.Person, b.N)
	for i := range who {
		who[i] = &be.persons[r.IntN(len(be.persons))]
	}
	visits := prepareVisits(b, be.eng, be.ids, r, who, be.byRegion, be.all)
	settled(b, st)

	// Rounds of settling alternate with rounds of pgbench, so that
	// both see the same machine: on a shared one, a slow minute
	// slows both rather than one. (The b.N=1 pass that the testing
	// package runs first measures nothing against pgbench.)
	rounds := benchRounds
	if b.N < rounds {
		rounds = 1
	}
	var m settleRounds
	stats0, calls0 := st.Stats(), cs.calls.Load()
	b.ResetTimer()
	for round := range rounds {
		part := visits[round*len(visits)/rounds : (round+1)*len(visits)/rounds]
		wal0 := walBytes(ctx, st)
		cpu.start()
		client0 := clientCPU()
		b.StartTimer()
		began := time.Now()
		err := settleAll(be.eng, be.ids, part, conc)
		m.elapsed += time.Since(began)
		b.StopTimer()
		m.clientUsed += clientCPU() - client0
		m.serverUsed += cpu.stop()
		m.wal += walBytes(ctx, st) - wal0
		if err != nil {
			b.Fatalf("settle: %v", err)
		}
		if b.N > 1 {
			m.pgb.add(be.pg.run(b, conc, cpu))
		}
	}
	m.retries = st.Stats().Retries - stats0.Retries
	m.calls = cs.calls.Load() - calls0
	m.report(b)
}

// report reports the rounds' metrics.
func (m *settleRounds) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(n/m.elapsed.Seconds(), "settles/s")
	b.ReportMetric(float64(m.retries), "retries")
	b.ReportMetric(float64(m.calls)/n, "tx-calls/op")
	b.ReportMetric(float64(m.clientUsed.Microseconds())/n, "client-cpu-us/op")
	if m.serverUsed > 0 {
		b.ReportMetric(float64(m.serverUsed.Microseconds())/n, "server-cpu-us/op")
	}
	if m.wal > 0 {
		b.ReportMetric(float64(m.wal)/n, "wal-bytes/op")
	}
	pgb := m.pgb
	if pgb.txns == 0 {
		return
	}
	tps := float64(pgb.txns) / pgb.elapsed.Seconds()
	b.ReportMetric(tps, "pgbench-N-tps")
	b.ReportMetric(n/m.elapsed.Seconds()/tps, "ratio-vs-pgbench")
	if pgb.wal > 0 {
		b.ReportMetric(float64(pgb.wal)/float64(pgb.txns), "pgbench-wal-bytes/txn")
	}
	if pgb.serverCPU > 0 {
		b.ReportMetric(float64(pgb.serverCPU.Microseconds())/float64(pgb.txns), "pgbench-server-cpu-us/txn")
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
	return inParallel(len(visits), conc, func(i int) error {
		v := &visits[i]
		if _, err := eng.Settle(ctx, ids.msg(v.inst, "2207"), v.in); err != nil {
			return fmt.Errorf("settling %s: %w", v.in.MdtrtID, err)
		}
		return nil
	})
}

// inParallel calls do for 0..n-1 on conc goroutines, each taking the next
// index as it finishes one, and returns the first error; after one, no
// goroutine starts another call.
func inParallel(n, conc int, do func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for firstErr.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
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
	err := inParallel(len(who), 16, func(i int) error {
		j, p := jobs[i], who[i]
		v, err := eng.RegisterVisit(ctx, ids.msg(j.inst, "2201"), settlement.VisitInput{
			PsnNo: p.PsnNo, Kind: settlement.VisitOutpatient, MedType: "11"})
		if err != nil {
			return err
		}
		if _, err := eng.UploadLines(ctx, ids.msg(j.inst, "2204"), v.MdtrtID, p.PsnNo, j.lines); err != nil {
			return err
		}
		out[i] = benchVisit{inst: j.inst, in: settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, UseAccount: j.acct}}
		return nil
	})
	if err != nil {
		b.Fatalf("preparing visits: %v", err)
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
