package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// Every test database starts migrated (0002_outbox_leases included) and
// seeded with the 120 registry persons; the broker is kfake, in process,
// speaking the Kafka protocol on a loopback port.
func TestMain(m *testing.M) { pgfixture.Main(m) }

type env struct {
	store   *postgres.Store
	engine  *settlement.Engine
	rules   *rules.RuleSet
	persons []settlement.Person
	brokers []string
	// hospitals and pharmacies of each pooling region
	hospitals, pharmacies map[string][]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	fx := pgfixture.NewEnv(t, time.Time{})
	st, rs := fx.Store, fx.Rules
	persons := storetest.Persons(t)
	require.Len(t, persons, 120)
	addrs, stop, err := kafka.StartDevBroker(ctx, 0)
	require.NoError(t, err)
	t.Cleanup(stop)
	e := &env{store: st, engine: fx.Engine, rules: rs, persons: persons, brokers: addrs,
		hospitals: map[string][]string{}, pharmacies: map[string][]string{}}
	for code, in := range rs.Institutions {
		if in.Kind == rules.KindHospital {
			e.hospitals[in.Admdvs] = append(e.hospitals[in.Admdvs], code)
		} else {
			e.pharmacies[in.Admdvs] = append(e.pharmacies[in.Admdvs], code)
		}
	}
	for _, m := range []map[string][]string{e.hospitals, e.pharmacies} {
		for k := range m {
			slices.Sort(m[k])
		}
	}
	return e
}

func quietLog() *slog.Logger { return pgfixture.Quiet() }

// quietMonitorLog logs nothing: the monitor's tests provoke its errors.
func quietMonitorLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (e *env) opts() []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(e.brokers...)} }

// codes are services and drugs in all three provinces' catalogs, without a
// price cap, valid in March 2026.
var codes = []string{
	"001101000010000", "002302000010000", "002303000010000", "004000000010000", "001103000010000",
	"XA02BCA211A001010101234", "XC09AAF082A001010204567", "XJ01DDA062B002010100345",
	"XA10BAG046A001010100111", "XB01ACA056A001010100222",
}

var drugs = codes[5:]

func money2(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

func randomLines(r *rand.Rand, from []string) []settlement.LineInput {
	out := make([]settlement.LineInput, 1+r.IntN(3))
	for i := range out {
		cnt := int64(1 + r.IntN(3))
		pric := int64(100 + r.IntN(30000))
		out[i] = settlement.LineInput{SN: strconv.Itoa(i + 1), ChrgBchno: "B1", Code: from[r.IntN(len(from))],
			Cnt: strconv.FormatInt(cnt, 10), Pric: money2(pric), Amount: money2(cnt * pric)}
	}
	return out
}

// validClaim is a claim of p at a hospital (med_type 11) or pharmacy (41) of
// p's own region, on a day of March 2026.
func (e *env) validClaim(r *rand.Rand, id string, p *settlement.Person) settlement.ManualClaim {
	c := settlement.ManualClaim{ClaimID: id, PsnNo: p.PsnNo, UseAccount: r.IntN(2) == 0,
		ServiceDate: fmt.Sprintf("2026-03-%02d", 1+r.IntN(14))}
	if ph := e.pharmacies[p.InsuredRegion]; len(ph) > 0 && r.IntN(4) == 0 {
		c.Institution, c.MedType, c.Lines = ph[r.IntN(len(ph))], "41", randomLines(r, drugs)
	} else {
		hs := e.hospitals[p.InsuredRegion]
		c.Institution, c.MedType, c.Lines = hs[r.IntN(len(hs))], "11", randomLines(r, codes)
	}
	return c
}

// workload settles and cancels a mix for persons, workers at a time, each
// person's operations in order; it returns how many events it made.
func (e *env) workload(t testing.TB, ctx context.Context, seed uint64, persons []settlement.Person, perPerson, workers int) int {
	t.Helper()
	var mu sync.Mutex
	events := 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				p := &persons[i]
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				n := 0
				for k := range perPerson {
					c := e.validClaim(r, fmt.Sprintf("W%d-%d-%d", seed, i, k), p)
					a, err := e.engine.ManualSettle(ctx, c)
					if settlement.ErrorCode(err) == settlement.EINVALID {
						continue // a pricing refusal makes no event
					}
					if err != nil {
						errc <- err
						return
					}
					n++
					if r.IntN(3) == 0 {
						msg := settlement.Msg{ID: settlement.NewID("X"), Infno: "2208", Institution: c.Institution, Digest: "d"}
						if _, err := e.engine.Cancel(ctx, msg, settlement.CancelInput{SetlID: a.SetlID}); err != nil {
							errc <- err
							return
						}
						n++
					}
				}
				mu.Lock()
				events += n
				mu.Unlock()
			}
		})
	}
	for i := range persons {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(t, err)
	}
	return events
}

// outboxIDs is every event the engine wrote, by its ledger position (see
// eventPos): each ledger transaction of a person's chain wrote one (the
// relay deletes an event once published, the ledger keeps the transaction);
// and which of them are still in the outbox, unpublished.
func (e *env) outboxIDs(t testing.TB) (ids map[string]bool, unpublished map[string]bool) {
	t.Helper()
	ids, unpublished = map[string]bool{}, map[string]bool{}
	for sql, set := range map[string]map[string]bool{
		`SELECT chain, seq FROM ledger_txns WHERE chain LIKE 'psn:%'`: ids,
		`SELECT chain, seq FROM outbox_events`:                        unpublished,
	} {
		rows, err := e.store.Pool().Query(context.Background(), sql)
		require.NoError(t, err)
		for rows.Next() {
			var chain string
			var seq int64
			require.NoError(t, rows.Scan(&chain, &seq))
			set[eventPos(chain, seq)] = true
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	for id := range unpublished {
		require.True(t, ids[id], "outbox event %s has no ledger transaction", id)
	}
	return ids, unpublished
}

// eventPos names an event by the ledger transaction that wrote it.
func eventPos(chain string, seq int64) string { return chain + "/" + strconv.FormatInt(seq, 10) }

// waitBacklog waits until the outbox has nothing unpublished.
func (e *env) waitBacklog(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := e.store.OutboxBacklog(context.Background())
		require.NoError(t, err)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox backlog still %d after %v", n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consume reads topic from the start until it has at least min records and
// nothing more arrives for quiet, or fails after timeout.
func (e *env) consume(t testing.TB, topic string, least int, quiet, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if n := fs.NumRecords(); n > 0 {
			out = append(out, fs.Records()...)
			last = time.Now()
		}
		if len(out) >= least && time.Since(last) >= quiet {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d records after %v, want at least %d", topic, len(out), timeout, least)
		}
	}
}

// runRelay starts a relay; the returned stop cancels it and waits for Run.
func runRelay(t testing.TB, ob settlement.Outbox, opts []kgo.Opt, cfg kafka.RelayConfig) (*kafka.Relay, func()) {
	t.Helper()
	r, err := kafka.NewRelay(ob, opts, cfg)
	require.NoError(t, err)
	return r, runBackground(t, r.Run, r.Close)
}

// runBackground runs run until the returned stop (called at the latest when
// the test ends) cancels it; stop requires that run returned nil, then
// closes what run served.
func runBackground(t testing.TB, run func(context.Context) error, closeFn func()) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			closeFn()
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkEvents checks the settlement topic as a consumer using Dedup sees
// it: every outbox event exactly once, each person's events in seq order
// 1, 2, 3... on one Kafka partition, headers agreeing with the payload. It
// returns how many copies of each event (by eventPos) the topic holds.
func checkEvents(t *testing.T, recs []*kgo.Record, outbox map[string]bool) map[string]int {
	t.Helper()
	copies := map[string]int{}
	dedup := kafka.NewDedup(100_000)
	lastSeq := map[string]int64{}
	partOf := map[string]int32{}
	for _, r := range recs {
		var ev settlement.SettlementEvent
		require.NoError(t, json.Unmarshal(r.Value, &ev))
		require.Equal(t, ev.EventID, kafka.Header(r, kafka.HeaderEventID))
		require.Equal(t, ev.Type, kafka.Header(r, kafka.HeaderEventType))
		require.Equal(t, strconv.Itoa(ev.Version), kafka.Header(r, kafka.HeaderVersion))
		require.Equal(t, ev.PsnNo, string(r.Key))
		require.Equal(t, settlement.ChainOf(ev.PsnNo), ev.Chain)
		copies[eventPos(ev.Chain, ev.Seq)]++
		if p, ok := partOf[ev.PsnNo]; ok {
			require.Equal(t, p, r.Partition, "person %s on two Kafka partitions", ev.PsnNo)
		}
		partOf[ev.PsnNo] = r.Partition
		if !dedup.FirstRecord(r) {
			continue
		}
		require.Equal(t, lastSeq[ev.PsnNo]+1, ev.Seq, "person %s: event %s out of order", ev.PsnNo, ev.EventID)
		lastSeq[ev.PsnNo] = ev.Seq
	}
	require.Equal(t, len(outbox), dedup.Len())
	for id := range outbox {
		require.Contains(t, copies, id, "event %s never published", id)
	}
	require.Len(t, copies, len(outbox), "the topic has events that are not in the outbox")
	return copies
}

func TestRelayPublishesEveryEventOnceInOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The relay runs while 4 counters settle and cancel for 40 persons.
	relay, stop := runRelay(t, e.store, e.opts(), kafka.RelayConfig{Owner: "relay-1", LeaseTTL: 5 * time.Second,
		Batch: 25, Poll: 20 * time.Millisecond, Log: quietLog()})
	began := time.Now()
	made := e.workload(t, ctx, 1, e.persons[:40], 6, 4)
	e.waitBacklog(t, 30*time.Second)
	t.Logf("%d events settled and published in %v", made, time.Since(began))
	stop()

	ids, unpublished := e.outboxIDs(t)
	require.Len(t, ids, made)
	require.Empty(t, unpublished)
	recs := e.consume(t, kafka.TopicSettlements, made, 500*time.Millisecond, 30*time.Second)
	copies := checkEvents(t, recs, ids)
	for id, n := range copies {
		require.Equal(t, 1, n, "event %s published %d times without a crash", id, n)
	}
	st := relay.Stats()
	require.EqualValues(t, made, st.Marked)
	require.Greater(t, st.Batches, int64(1))
	leases, err := e.store.OutboxLeases(ctx)
	require.NoError(t, err)
	require.Empty(t, leases, "a relay that stops releases its leases")

	rep, err := e.store.Audit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
}

// crashingOutbox kills its relay after a number of marks: the next mark is
// not made, the relay's context is cancelled, and from then on nothing the
// dead relay does reaches the database (not even releasing its leases).
type crashingOutbox struct {
	settlement.Outbox
	marksLeft atomic.Int64
	dead      atomic.Bool
	kill      context.CancelFunc
}

var errKilled = errors.New("killed between publish and mark")

func (c *crashingOutbox) MarkOutboxPublished(ctx context.Context, owner string, part int, refs []settlement.OutboxRef) (int, error) {
	if c.dead.Load() || c.marksLeft.Add(-1) < 0 {
		c.dead.Store(true)
		c.kill()
		return 0, errKilled
	}
	return c.Outbox.MarkOutboxPublished(ctx, owner, part, refs)
}

func (c *crashingOutbox) PendingOutbox(ctx context.Context, part, limit int) ([]settlement.OutboxEvent, error) {
	if c.dead.Load() {
		return nil, errKilled
	}
	return c.Outbox.PendingOutbox(ctx, part, limit)
}

func (c *crashingOutbox) LeaseOutbox(ctx context.Context, owner string, ttl time.Duration) ([]int, error) {
	if c.dead.Load() {
		return nil, errKilled
	}
	return c.Outbox.LeaseOutbox(ctx, owner, ttl)
}

func (c *crashingOutbox) ReleaseOutbox(ctx context.Context, owner string) error {
	if c.dead.Load() {
		return errKilled
	}
	return c.Outbox.ReleaseOutbox(ctx, owner)
}

func TestRelayKilledBetweenPublishAndMarkRepublishesOnlyTheUnmarked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	made := e.workload(t, ctx, 2, e.persons[:60], 4, 4)

	// Relay A marks 5 batches, then dies after producing the next ones.
	ctxA, killA := context.WithCancel(ctx)
	crash := &crashingOutbox{Outbox: e.store, kill: killA}
	crash.marksLeft.Store(5)
	relayA, err := kafka.NewRelay(crash, e.opts(), kafka.RelayConfig{Owner: "relay-a", LeaseTTL: 2 * time.Second,
		Batch: 20, Parallel: 2, Log: quietLog()})
	require.NoError(t, err)
	require.NoError(t, relayA.Run(ctxA))
	relayA.Close()
	require.True(t, crash.dead.Load())
	statsA := relayA.Stats()

	ids, unmarked := e.outboxIDs(t)
	require.Len(t, ids, made)
	require.NotEmpty(t, unmarked)
	require.Less(t, len(unmarked), made, "A marked some batches before it died")
	require.Greater(t, statsA.Produced, statsA.Marked, "A produced batches it never marked")
	leases, err := e.store.OutboxLeases(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, leases, "a killed relay leaves its leases to expire")

	// Relay B takes over when A's leases expire and publishes the rest.
	_, stopB := runRelay(t, e.store, e.opts(), kafka.RelayConfig{Owner: "relay-b", LeaseTTL: 5 * time.Second,
		Batch: 20, Poll: 20 * time.Millisecond, Log: quietLog()})
	e.waitBacklog(t, 30*time.Second)
	stopB()

	recs := e.consume(t, kafka.TopicSettlements, made, 500*time.Millisecond, 30*time.Second)
	copies := checkEvents(t, recs, ids) // a Dedup consumer sees each event once, in order
	republished := 0
	for id, n := range copies {
		if !unmarked[id] {
			require.Equal(t, 1, n, "event %s was marked before the crash but published again", id)
			continue
		}
		require.LessOrEqual(t, n, 2, "event %s", id)
		if n == 2 {
			republished++
		}
	}
	require.EqualValues(t, statsA.Produced-statsA.Marked, republished,
		"exactly what A produced and did not mark is on the topic twice")
	t.Logf("%d events; A marked %d, produced %d unmarked; %d republished by B", made, statsA.Marked,
		statsA.Produced-statsA.Marked, republished)
}

// interval is a time a relay held a batch of a partition: from reading it
// to the end of marking it.
type interval struct {
	owner      string // who marked it ("" if never marked)
	reader     string // who read it
	part       int
	start, end time.Time
}

// recordingOutbox records when each relay publishes which partition.
type recordingOutbox struct {
	settlement.Outbox
	name string // the relay's owner name
	mu   sync.Mutex
	open map[int]*interval
	all  *[]*interval
	amu  *sync.Mutex
}

func (r *recordingOutbox) PendingOutbox(ctx context.Context, part, limit int) ([]settlement.OutboxEvent, error) {
	start := time.Now()
	evs, err := r.Outbox.PendingOutbox(ctx, part, limit)
	if len(evs) > 0 {
		iv := &interval{reader: r.name, part: part, start: start}
		r.amu.Lock()
		*r.all = append(*r.all, iv)
		r.amu.Unlock()
		r.mu.Lock()
		r.open[part] = iv
		r.mu.Unlock()
	}
	return evs, err
}

func (r *recordingOutbox) MarkOutboxPublished(ctx context.Context, owner string, part int, refs []settlement.OutboxRef) (int, error) {
	n, err := r.Outbox.MarkOutboxPublished(ctx, owner, part, refs)
	end := time.Now()
	r.mu.Lock()
	if iv := r.open[part]; iv != nil {
		iv.owner, iv.end = owner, end
		delete(r.open, part)
	}
	r.mu.Unlock()
	return n, err
}

func TestTwoRelaysNeverPublishAPartitionAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var all []*interval
	var amu sync.Mutex
	rec := func(name string) *recordingOutbox {
		return &recordingOutbox{Outbox: e.store, name: name, open: map[int]*interval{}, all: &all, amu: &amu}
	}
	recA, recB := rec("relay-a"), rec("relay-b")
	cfg := func(owner string) kafka.RelayConfig {
		return kafka.RelayConfig{Owner: owner, LeaseTTL: 3 * time.Second, Batch: 10, Parallel: 4,
			Poll: 10 * time.Millisecond, Log: quietLog()}
	}
	relayA, stopA := runRelay(t, recA, e.opts(), cfg("relay-a"))
	relayB, stopB := runRelay(t, recB, e.opts(), cfg("relay-b"))

	// The two share the partitions evenly within a few lease renewals.
	held := func() (int, int) { return len(relayA.Stats().Parts), len(relayB.Stats().Parts) }
	deadline := time.Now().Add(15 * time.Second)
	for a, b := held(); a != 8 || b != 8; a, b = held() {
		require.True(t, time.Now().Before(deadline), "not balanced: A holds %d partitions, B %d", a, b)
		time.Sleep(20 * time.Millisecond)
	}
	// Live traffic while they share; then A stops and B takes A's
	// partitions over.
	made := e.workload(t, ctx, 3, e.persons[:60], 4, 4)
	a, b := held()
	require.Equal(t, 16, a+b, "every partition held: A %d, B %d", a, b)
	stopA()
	made += e.workload(t, ctx, 4, e.persons[60:90], 3, 4)
	e.waitBacklog(t, 30*time.Second)
	require.Len(t, relayB.Stats().Parts, 16, "B took over A's partitions")
	stopB()

	ids, _ := e.outboxIDs(t)
	require.Len(t, ids, made)
	recs := e.consume(t, kafka.TopicSettlements, made, 500*time.Millisecond, 30*time.Second)
	copies := checkEvents(t, recs, ids)
	for id, n := range copies {
		require.Equal(t, 1, n, "event %s published %d times", id, n)
	}
	sa, sb := relayA.Stats(), relayB.Stats()
	require.Positive(t, sa.Marked)
	require.Positive(t, sb.Marked)
	require.EqualValues(t, made, sa.Marked+sb.Marked)

	// No partition was ever being published by both relays at once.
	byPart := map[int][]*interval{}
	unmarked := 0
	for _, iv := range all {
		if iv.owner == "" {
			// A batch in flight when its relay was stopped: its produce
			// was cut short with the relay's context (every event is on
			// the topic once, above), so it published nothing. Only A,
			// stopped under traffic, may leave one per parallel slot.
			require.Equal(t, "relay-a", iv.reader, "a batch of partition %d read but never marked", iv.part)
			unmarked++
			continue
		}
		byPart[iv.part] = append(byPart[iv.part], iv)
	}
	require.LessOrEqual(t, unmarked, cfg("relay-a").Parallel)
	owners := map[int]map[string]bool{}
	for p, ivs := range byPart {
		for i, x := range ivs {
			for _, y := range ivs[i+1:] {
				if x.owner != y.owner {
					require.True(t, !x.start.Before(y.end) || !y.start.Before(x.end),
						"partition %d: %s published it from %v to %v, %s from %v to %v",
						p, x.owner, x.start, x.end, y.owner, y.start, y.end)
				}
			}
		}
		owners[p] = map[string]bool{}
		for _, iv := range ivs {
			owners[p][iv.owner] = true
		}
	}
	handedOver := 0
	for _, o := range owners {
		if len(o) == 2 {
			handedOver++
		}
	}
	t.Logf("%d events, %d batches; A marked %d, B %d; %d partitions published by both in turn",
		made, len(all), sa.Marked, sb.Marked, handedOver)
	require.Positive(t, handedOver, "A's partitions went to B")
}

// flakyStore fails the first Updates as a database that is down would.
type flakyStore struct {
	settlement.Store
	failures atomic.Int64
}

func (f *flakyStore) Update(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return f.Store.Update(ctx, fn)
}
