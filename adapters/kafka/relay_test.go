package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/settlement"
)

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
