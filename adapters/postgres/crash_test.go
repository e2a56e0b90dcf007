package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// The crash test re-executes this test binary as a load generator (the
// "child") and SIGKILLs it mid-load. The child tells the parent, on stdout,
// what it is about to do and what was acknowledged:
//
//	TRY  <msgid> <inst> <digest> <mdtrt_id> <psn_no> <use_account 0|1>   before Settle
//	ACK  <setl_id> <msgid>                                               after Settle returned nil
//	CTRY <msgid> <inst> <digest> <setl_id> <mdtrt_id> <psn_no>           before Cancel
//	CACK <reversal setl_id> <msgid> <cancelled setl_id>                  after Cancel returned nil
//	FAIL <what> <error>                                                  an unexpected error
//
// Each line is written with a single write(2) on the unbuffered os.Stdout
// under a mutex, so that it reaches the pipe whole before the next request.
const (
	crashChildEnv = "MEDSETTLE_CRASH_CHILD" // "1": TestCrashSafetyChild runs instead of skipping
	crashDSNEnv   = "MEDSETTLE_CRASH_DSN"
	crashSeedEnv  = "MEDSETTLE_CRASH_SEED"

	crashWorkers   = 8
	crashAcks      = 200 // settlements acknowledged before the kill
	crashAppName   = "medsettle-crash-child"
	crashChildLife = 3 * time.Minute // the child stops by itself after this, whatever happens
)

// crashCodes are services and drugs in all three provinces' catalogs, with
// no price cap, valid on 2026-03-15: 甲类, 乙类 and 丙类 lines.
var crashCodes = []string{
	"001101000010000", "002302000010000", "002303000010000", "004000000010000", "001103000010000",
	"XA02BCA211A001010101234", "XC09AAF082A001010204567", "XJ01DDA062B002010100345",
	"XA10BAG046A001010100111", "XB01ACA056A001010100222",
}

// tickClock starts at a fixed instant and advances a millisecond per reading,
// so settlement times are distinct and stay on one day with a policy in force.
type tickClock struct {
	base time.Time
	n    atomic.Int64
}

func newTickClock() *tickClock {
	return &tickClock{base: time.Date(2026, 3, 15, 10, 0, 0, 0, rules.CST)}
}

func (c *tickClock) Now() time.Time { return c.base.Add(time.Duration(c.n.Add(1)) * time.Millisecond) }

// uniqueMsg is a message identity that no other process can produce, unlike
// newMsg (whose ids repeat across processes within one second).
func uniqueMsg(inst, infno, digest string) settlement.Msg {
	return settlement.Msg{ID: settlement.NewID(inst + "-"), Infno: infno, Institution: inst, Digest: digest}
}

// money2 formats cents as a two-decimal amount.
func money2(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

// randomLines returns 1-3 valid lines: amount = cnt * pric exactly.
func randomLines(r *rand.Rand) []settlement.LineInput {
	n := 1 + r.IntN(3)
	out := make([]settlement.LineInput, n)
	for i := range out {
		cnt := int64(1 + r.IntN(3))
		pric := int64(100 + r.IntN(60000))
		out[i] = line(strconv.Itoa(i+1), crashCodes[r.IntN(len(crashCodes))], strconv.FormatInt(cnt, 10),
			money2(pric), money2(cnt*pric))
	}
	return out
}

// hospitalsByRegion lists the designated hospitals of each pooling region, and all of them.
func hospitalsByRegion(rs *rules.RuleSet) (map[string][]string, []string) {
	by := map[string][]string{}
	var all []string
	for code, in := range rs.Institutions {
		if in.Kind == rules.KindHospital {
			by[in.Admdvs] = append(by[in.Admdvs], code)
			all = append(all, code)
		}
	}
	// Map order is random; sort so that a seed reproduces a run.
	for k := range by {
		slices.Sort(by[k])
	}
	slices.Sort(all)
	return by, all
}

// pickHospital is a hospital of the person's region most of the time, any hospital otherwise.
func pickHospital(r *rand.Rand, p *settlement.Person, by map[string][]string, all []string) string {
	if hs := by[p.InsuredRegion]; len(hs) > 0 && r.IntN(4) != 0 {
		return hs[r.IntN(len(hs))]
	}
	return all[r.IntN(len(all))]
}

// withParam adds a connection parameter to a URL or keyword/value DSN.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + key + "=" + value
	}
	return dsn + " " + key + "=" + value
}

// TestCrashSafetyChild is the load generator of TestCrashSafety. It runs only
// when re-executed by it; it never returns normally before being killed.
func TestCrashSafetyChild(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		t.Skip("runs only as the child process of TestCrashSafety")
	}
	dsn := os.Getenv(crashDSNEnv)
	require.NotEmpty(t, dsn)
	seed, err := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), crashChildLife)
	defer cancel()
	// A parent that dies closes our stdin: stop rather than load a server nobody watches.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	st, err := postgres.Open(ctx, dsn, pgfixture.Quiet())
	require.NoError(t, err)
	defer st.Close()
	rs := storetest.Rules(t)
	eng := &settlement.Engine{Rules: rs, Store: st, Now: newTickClock().Now}
	persons := storetest.Persons(t)
	byRegion, all := hospitalsByRegion(rs)

	var outMu sync.Mutex
	emit := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...) + "\n"
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = os.Stdout.WriteString(line) // os.Stdout is unbuffered: one write(2)
	}
	fail := func(what string, err error) {
		if ctx.Err() == nil {
			emit("FAIL %s %s", what, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}

	settle := func(inst string, v settlement.VisitAnswer, useAcct bool) (string, bool) {
		digest := "settle-" + v.MdtrtID
		msg := uniqueMsg(inst, "2207", digest)
		emit("TRY %s %s %s %s %s %d", msg.ID, inst, digest, v.MdtrtID, v.PsnNo, b2i(useAcct))
		ans, err := eng.Settle(ctx, msg, settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: v.PsnNo, UseAccount: useAcct})
		if err != nil {
			fail("settle", err)
			return "", false
		}
		emit("ACK %s %s", ans.SetlID, msg.ID)
		return ans.SetlID, true
	}

	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				p := &persons[r.IntN(len(persons))]
				inst := pickHospital(r, p, byRegion, all)
				v, err := eng.RegisterVisit(ctx, uniqueMsg(inst, "2201", "reg"), settlement.VisitInput{
					PsnNo: p.PsnNo, Kind: settlement.VisitOutpatient, MedType: "11"})
				if err != nil {
					fail("register", err)
					continue
				}
				if _, err := eng.UploadLines(ctx, uniqueMsg(inst, "2204", "up"), v.MdtrtID, p.PsnNo, randomLines(r)); err != nil {
					fail("upload", err)
					continue
				}
				useAcct := r.IntN(2) == 0
				setlID, ok := settle(inst, v, useAcct)
				if !ok || r.IntN(5) != 0 {
					continue
				}
				// Sometimes the counter cancels (2208), and sometimes settles the reopened visit again.
				digest := "cancel-" + setlID
				msg := uniqueMsg(inst, "2208", digest)
				emit("CTRY %s %s %s %s %s %s", msg.ID, inst, digest, setlID, v.MdtrtID, p.PsnNo)
				rev, err := eng.Cancel(ctx, msg, settlement.CancelInput{SetlID: setlID, MdtrtID: v.MdtrtID, PsnNo: p.PsnNo})
				if err != nil {
					fail("cancel", err)
					continue
				}
				emit("CACK %s %s %s", rev.SetlID, msg.ID, setlID)
				if r.IntN(2) == 0 {
					settle(inst, v, !useAcct)
				}
			}
		}()
	}
	wg.Wait()
	t.Errorf("the child was not killed within %s", crashChildLife)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type settleTry struct {
	msg     settlement.Msg
	in      settlement.SettleInput
	setlID  string // set by its ACK
	acked   bool
	cancels string // for a cancel: the setl_id it cancels
}

// childLog is what the parent learnt from the child's stdout.
type childLog struct {
	mu       sync.Mutex
	settles  map[string]*settleTry // by msgid
	cancels  map[string]*settleTry // by msgid
	acks     int
	cacks    int
	fails    []string
	other    []string
	enough   chan struct{} // closed at crashAcks ACKs
	enoughed bool
}

func (l *childLog) add(t *testing.T, line string) {
	f := strings.Fields(line)
	l.mu.Lock()
	defer l.mu.Unlock()
	bad := func() { t.Errorf("child said something malformed: %q", line) }
	switch {
	case len(f) == 7 && f[0] == "TRY":
		l.settles[f[1]] = &settleTry{msg: settlement.Msg{ID: f[1], Infno: "2207", Institution: f[2], Digest: f[3]},
			in: settlement.SettleInput{MdtrtID: f[4], PsnNo: f[5], UseAccount: f[6] == "1"}}
	case len(f) == 3 && f[0] == "ACK":
		s := l.settles[f[2]]
		if s == nil {
			bad()
			return
		}
		s.setlID, s.acked = f[1], true
		l.acks++
		if l.acks >= crashAcks && !l.enoughed {
			l.enoughed = true
			close(l.enough)
		}
	case len(f) == 7 && f[0] == "CTRY":
		l.cancels[f[1]] = &settleTry{msg: settlement.Msg{ID: f[1], Infno: "2208", Institution: f[2], Digest: f[3]},
			in: settlement.SettleInput{MdtrtID: f[5], PsnNo: f[6]}, cancels: f[4]}
	case len(f) == 4 && f[0] == "CACK":
		c := l.cancels[f[2]]
		if c == nil || c.cancels != f[3] {
			bad()
			return
		}
		c.setlID, c.acked = f[1], true
		l.cacks++
	case len(f) >= 1 && f[0] == "FAIL":
		l.fails = append(l.fails, line)
	default:
		l.other = append(l.other, line)
	}
}

// TestCrashSafety kills a process mid-load with SIGKILL and checks, on the
// real database, that nothing acknowledged is lost and nothing is half
// written; then a restarted engine carries on, redelivered messages have
// exactly one effect, and the audit still balances.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("this is the child process")
	}
	began := time.Now()
	dsn := pgtest.NewDB(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" { // to replay a failed run's load
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("load seed %d (set %s to replay it)", seed, crashSeedEnv)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	log := crashLoad(ctx, t, dsn, seed)

	// The restart: a fresh store and engine on the same database.
	st, err := postgres.Open(ctx, dsn, pgfixture.Quiet())
	require.NoError(t, err)
	t.Cleanup(st.Close)
	rs := storetest.Rules(t)
	e := &env{engine: &settlement.Engine{Rules: rs, Store: st, Now: newTickClock().Now}, store: st, rules: rs, dsn: dsn}

	// The killed process's connections go away, and with them its open transactions.
	require.Eventually(t, func() bool {
		var n int
		err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, crashAppName).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 20*time.Millisecond, "the killed child's backends are still there")

	// Nothing acknowledged is lost.
	checkAcknowledged(t, e, log)
	rep := e.audit(t)
	require.True(t, rep.OK(), "audit after the crash: %v", rep.Problems)
	t.Logf("after the crash: %s", rep)
	checkConsistent(t, e)
	crashRows := e.rowCounts(t)
	t.Logf("rows after the crash: %v", crashRows)

	replayAcknowledged(ctx, t, e, log, crashRows)
	redeliverInFlight(ctx, t, e, log)
	settleAfterRestart(ctx, t, e, log, seed)

	rep = e.audit(t)
	require.True(t, rep.OK(), "audit after the restart: %v", rep.Problems)
	checkConsistent(t, e)
	t.Logf("after the restart: %s (retries %d); whole test %s", rep, st.Stats().Retries, time.Since(began).Round(time.Millisecond))
}

// crashLoad starts the child on dsn under the load of seed, kills it with
// SIGKILL once it has acknowledged crashAcks settlements, and returns what
// it reported.
func crashLoad(ctx context.Context, t *testing.T, dsn string, seed uint64) *childLog {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashSafetyChild$", "-test.count=1",
		"-test.timeout="+(crashChildLife+time.Minute).String())
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashSeedEnv+"="+strconv.FormatUint(seed, 10),
		crashDSNEnv+"="+withParam(dsn, "application_name", crashAppName))
	cmd.WaitDelay = 10 * time.Second
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe() // closed when we die: the child then stops
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})

	log := &childLog{settles: map[string]*settleTry{}, cancels: map[string]*settleTry{}, enough: make(chan struct{})}
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			log.add(t, sc.Text())
		}
	}()

	loadStart := time.Now()
	select {
	case <-log.enough:
	case <-eof:
		t.Fatalf("the child exited before %d acknowledgements (other output: %q)", crashAcks, log.other)
	case <-time.After(2 * time.Minute):
		log.mu.Lock()
		acks := log.acks
		log.mu.Unlock()
		t.Fatalf("no %d acknowledgements after 2 minutes (%d so far)", crashAcks, acks)
	}
	// Land the kill at a random point of whatever the workers are doing.
	time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
	require.NoError(t, cmd.Process.Kill())
	killed = true
	loadTime := time.Since(loadStart)
	select {
	case <-eof:
	case <-time.After(30 * time.Second):
		t.Fatal("the child's stdout stayed open 30s after SIGKILL")
	}
	werr := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, werr, &ee, "the child should have died of SIGKILL")
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child ended with %v", werr)

	log.mu.Lock()
	require.Empty(t, log.fails, "the child hit errors under load")
	var inflight, inflightCancels int
	for _, s := range log.settles {
		if !s.acked {
			inflight++
		}
	}
	for _, c := range log.cancels {
		if !c.acked {
			inflightCancels++
		}
	}
	t.Logf("killed after %s: %d settlements and %d cancels acknowledged (%.0f settles/s), %d settles and %d cancels in flight",
		loadTime.Round(time.Millisecond), log.acks, log.cacks, float64(log.acks)/loadTime.Seconds(), inflight, inflightCancels)
	log.mu.Unlock()
	return log
}

// replayAcknowledged: every acknowledged message sent again replays its
// answer and writes nothing.
func replayAcknowledged(ctx context.Context, t *testing.T, e *env, log *childLog, crashRows map[string]int) {
	for _, s := range log.settles {
		if !s.acked {
			continue
		}
		a, err := e.engine.Settle(ctx, s.msg, s.in)
		require.NoError(t, err, "replaying acknowledged %s", s.msg.ID)
		require.Equal(t, s.setlID, a.SetlID, "replay of %s", s.msg.ID)
	}
	for _, c := range log.cancels {
		if !c.acked {
			continue
		}
		a, err := e.engine.Cancel(ctx, c.msg, settlement.CancelInput{SetlID: c.cancels, MdtrtID: c.in.MdtrtID, PsnNo: c.in.PsnNo})
		require.NoError(t, err, "replaying acknowledged cancel %s", c.msg.ID)
		require.Equal(t, c.setlID, a.SetlID)
	}
	require.Equal(t, crashRows, e.rowCounts(t), "replays wrote nothing")
}

// redeliverInFlight: the counter never got an answer for the messages in
// flight and sends them again: each has exactly one effect, whether or not
// it had committed.
func redeliverInFlight(ctx context.Context, t *testing.T, e *env, log *childLog) {
	st := e.store
	redelivered, hadCommitted := 0, 0
	for _, s := range log.settles {
		if s.acked {
			continue
		}
		var before int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE msgid = $1`, s.msg.ID).Scan(&before))
		a, err := e.engine.Settle(ctx, s.msg, s.in)
		require.NoError(t, err, "redelivering in-flight settle %s", s.msg.ID)
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE msgid = $1 AND setl_id = $2`, s.msg.ID, a.SetlID).Scan(&n))
		require.Equal(t, 1, n, "in-flight settle %s", s.msg.ID)
		redelivered++
		hadCommitted += before
	}
	for _, c := range log.cancels {
		if c.acked {
			continue
		}
		var before int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE msgid = $1`, c.msg.ID).Scan(&before))
		redelivered++
		hadCommitted += before
		_, err := e.engine.Cancel(ctx, c.msg, settlement.CancelInput{SetlID: c.cancels, MdtrtID: c.in.MdtrtID, PsnNo: c.in.PsnNo})
		require.NoError(t, err, "redelivering in-flight cancel %s", c.msg.ID)
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE reverses = $1`, c.cancels).Scan(&n))
		require.Equal(t, 1, n, "reversals of %s", c.cancels)
	}

	t.Logf("redelivered %d in-flight messages: %d had committed before the kill, unacknowledged", redelivered, hadCommitted)
}

// settleAfterRestart: the restarted engine settles more claims: visits the
// crash left open, new visits, and cancels of settlements made before the
// crash.
func settleAfterRestart(ctx context.Context, t *testing.T, e *env, log *childLog, seed uint64) {
	st, rs := e.store, e.rules
	rows, err := st.Pool().Query(ctx, `SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code FROM visits v
		WHERE v.status = 'open' AND EXISTS (SELECT 1 FROM fee_lines l WHERE l.mdtrt_id = v.mdtrt_id)
		ORDER BY v.mdtrt_id LIMIT 5`)
	require.NoError(t, err)
	type open struct{ mdtrt, psn, inst string }
	var opens []open
	for rows.Next() {
		var o open
		require.NoError(t, rows.Scan(&o.mdtrt, &o.psn, &o.inst))
		opens = append(opens, o)
	}
	require.NoError(t, rows.Err())
	for _, o := range opens {
		_, err := e.engine.Settle(ctx, uniqueMsg(o.inst, "2207", "after"), settlement.SettleInput{MdtrtID: o.mdtrt, PsnNo: o.psn, UseAccount: true})
		require.NoError(t, err, "settling visit %s left open by the crash", o.mdtrt)
	}
	r := rand.New(rand.NewPCG(seed, 1000))
	persons := storetest.Persons(t)
	byRegion, all := hospitalsByRegion(rs)
	for range 10 {
		p := &persons[r.IntN(len(persons))]
		inst := pickHospital(r, p, byRegion, all)
		v, err := e.engine.RegisterVisit(ctx, uniqueMsg(inst, "2201", "reg"), settlement.VisitInput{PsnNo: p.PsnNo, Kind: settlement.VisitOutpatient, MedType: "11"})
		require.NoError(t, err)
		_, err = e.engine.UploadLines(ctx, uniqueMsg(inst, "2204", "up"), v.MdtrtID, p.PsnNo, randomLines(r))
		require.NoError(t, err)
		_, err = e.engine.Settle(ctx, uniqueMsg(inst, "2207", "s"), settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, UseAccount: r.IntN(2) == 0})
		require.NoError(t, err)
	}
	cancelled := 0
	for _, s := range log.settles {
		if !s.acked || cancelled == 3 {
			continue
		}
		var status string
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT status FROM settlements WHERE setl_id = $1`, s.setlID).Scan(&status))
		if status != string(settlement.Settled) {
			continue
		}
		_, err := e.engine.Cancel(ctx, uniqueMsg(s.msg.Institution, "2208", "c"), settlement.CancelInput{SetlID: s.setlID})
		require.NoError(t, err, "cancelling pre-crash settlement %s", s.setlID)
		cancelled++
	}
	require.Equal(t, 3, cancelled)
}

// checkAcknowledged: every acknowledged settlement and cancel is in the
// database with its ledger transaction, entries and idempotency record.
func checkAcknowledged(t *testing.T, e *env, log *childLog) {
	t.Helper()
	ctx := context.Background()
	log.mu.Lock()
	defer log.mu.Unlock()
	check := func(setlID, msgid, what string) {
		var txnSetl, msgRef, status string
		var entries int
		err := e.store.Pool().QueryRow(ctx, `SELECT COALESCE(t.setl_id, ''), COALESCE(m.ref, ''), COALESCE(m.status, ''),
			(SELECT count(*) FROM ledger_entries le WHERE le.txn_id = s.ledger_txn_id)
			FROM settlements s
			LEFT JOIN ledger_txns t ON t.txn_id = s.ledger_txn_id
			LEFT JOIN messages m ON m.msgid = s.msgid
			WHERE s.setl_id = $1 AND s.msgid = $2`, setlID, msgid).Scan(&txnSetl, &msgRef, &status, &entries)
		require.NoError(t, err, "acknowledged %s %s (msgid %s) is not in settlements", what, setlID, msgid)
		require.Equal(t, setlID, txnSetl, "%s %s: its ledger transaction", what, setlID)
		require.GreaterOrEqual(t, entries, 2, "%s %s: its ledger entries", what, setlID)
		require.Equal(t, setlID, msgRef, "%s %s: its message record", what, setlID)
		require.Equal(t, string(settlement.MessageDone), status)
	}
	for _, s := range log.settles {
		if s.acked {
			check(s.setlID, s.msg.ID, "settlement")
		}
	}
	for _, c := range log.cancels {
		if !c.acked {
			continue
		}
		check(c.setlID, c.msg.ID, "reversal")
		var status, reverses string
		require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT o.status, r.reverses FROM settlements o, settlements r
			WHERE o.setl_id = $1 AND r.setl_id = $2`, c.cancels, c.setlID).Scan(&status, &reverses))
		require.Equal(t, string(settlement.Cancelled), status, "settlement %s was cancelled", c.cancels)
		require.Equal(t, c.cancels, reverses)
	}
}

// checkConsistent runs cross-table invariants that the audit does not cover.
// Each query counts violations.
func checkConsistent(t *testing.T, e *env) {
	t.Helper()
	invariants := []struct{ name, sql string }{
		{"visit settled without a standing settlement", `SELECT count(*) FROM visits v WHERE v.status = 'settled'
			AND NOT EXISTS (SELECT 1 FROM settlements s WHERE s.mdtrt_id = v.mdtrt_id AND s.status = 'settled' AND s.reverses = '')`},
		{"standing settlement of a visit not settled", `SELECT count(*) FROM settlements s JOIN visits v ON v.mdtrt_id = s.mdtrt_id
			WHERE s.status = 'settled' AND s.reverses = '' AND v.status <> 'settled'`},
		{"visit with two standing settlements", `SELECT count(*) FROM (SELECT mdtrt_id FROM settlements
			WHERE status = 'settled' AND reverses = '' GROUP BY mdtrt_id HAVING count(*) > 1) x`},
		{"settlement without its message record", `SELECT count(*) FROM settlements s WHERE NOT EXISTS
			(SELECT 1 FROM messages m WHERE m.msgid = s.msgid AND m.ref = s.setl_id AND m.status = 'done')`},
		{"ledger transaction without its outbox event", `SELECT count(*) FROM ledger_txns t WHERE NOT EXISTS
			(SELECT 1 FROM outbox_events o WHERE o.chain = t.chain AND o.seq = t.seq)`},
		{"outbox event without its ledger transaction", `SELECT count(*) FROM outbox_events o WHERE NOT EXISTS
			(SELECT 1 FROM ledger_txns t WHERE t.chain = o.chain AND t.seq = o.seq)`},
		{"settlement whose medfee_sumamt is not its visit's lines", `SELECT count(*) FROM settlements s WHERE s.reverses = ''
			AND s.medfee_sumamt <> (SELECT COALESCE(sum(l.det_item_fee_sumamt), 0) FROM fee_lines l WHERE l.mdtrt_id = s.mdtrt_id AND NOT l.withdrawn)`},
		{"cancelled settlement without exactly one reversal", `SELECT count(*) FROM settlements s WHERE s.status = 'cancelled'
			AND (SELECT count(*) FROM settlements r WHERE r.reverses = s.setl_id) <> 1`},
		{"reversal of a settlement that is not cancelled", `SELECT count(*) FROM settlements r WHERE r.reverses <> ''
			AND NOT EXISTS (SELECT 1 FROM settlements s WHERE s.setl_id = r.reverses AND s.status = 'cancelled')`},
		{"settlement of a visit that does not exist", `SELECT count(*) FROM settlements s WHERE NOT EXISTS
			(SELECT 1 FROM visits v WHERE v.mdtrt_id = s.mdtrt_id)`},
		{"fee lines of a visit that does not exist", `SELECT count(*) FROM fee_lines l WHERE NOT EXISTS
			(SELECT 1 FROM visits v WHERE v.mdtrt_id = l.mdtrt_id)`},
		// Every visit here was made by RegisterVisit and every line by UploadLines.
		{"visit without its registration message", `SELECT count(*) FROM visits v WHERE NOT EXISTS
			(SELECT 1 FROM messages m WHERE m.infno = '2201' AND m.ref = v.mdtrt_id)`},
		{"fee lines without their upload message", `SELECT count(DISTINCT l.mdtrt_id) FROM fee_lines l WHERE NOT EXISTS
			(SELECT 1 FROM messages m WHERE m.infno = '2204' AND split_part(m.ref, '/', 1) = l.mdtrt_id)`},
		{"upload whose lines are not all stored", `SELECT count(*) FROM messages m WHERE m.infno = '2204'
			AND COALESCE(json_array_length((m.answer::json)->'result'), -1) <>
			(SELECT count(*) FROM fee_lines l WHERE l.mdtrt_id = split_part(m.ref, '/', 1))`},
	}
	for _, inv := range invariants {
		var n int
		require.NoError(t, e.store.Pool().QueryRow(context.Background(), inv.sql).Scan(&n), inv.name)
		require.Zero(t, n, inv.name)
	}
}
