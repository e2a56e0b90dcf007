package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The monitor's consumer against kfake (the Kafka protocol in process, with
// consumer groups), with an in-memory monitor.Store: the PostgreSQL store is
// tested in adapters/postgres, and the whole chain (engine, outbox, Kafka,
// PostgreSQL, bureau API) in adapters/httpapi.

// monitorMemStore is monitor.Store in memory, with the same guarantees.
type monitorMemStore struct {
	mu          sync.Mutex
	events      map[string][]settlement.SettlementEvent
	ids         map[string]bool
	alerts      []monitor.Alert
	published   map[string]bool
	failRecords int // the next Record calls fail, as a database outage would
	records     int // Record calls that stored an event
}

func newMonitorMemStore() *monitorMemStore {
	return &monitorMemStore{events: map[string][]settlement.SettlementEvent{}, ids: map[string]bool{}, published: map[string]bool{}}
}

func (s *monitorMemStore) History(_ context.Context, psnNo string, after int) ([]settlement.SettlementEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.events[psnNo]
	if after >= len(h) {
		return nil, nil
	}
	return slices.Clone(h[after:]), nil
}

func (s *monitorMemStore) Record(_ context.Context, seq int, ev settlement.SettlementEvent, alerts []monitor.Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRecords > 0 {
		s.failRecords--
		return errors.New("connection refused")
	}
	switch {
	case s.ids[ev.EventID]:
		return monitor.ErrObserved
	case len(s.events[ev.PsnNo]) != seq-1:
		return monitor.ErrStale
	}
	s.ids[ev.EventID] = true
	s.events[ev.PsnNo] = append(s.events[ev.PsnNo], ev)
	s.records++
	for _, a := range alerts {
		if !slices.ContainsFunc(s.alerts, func(b monitor.Alert) bool { return b.ID == a.ID }) {
			s.alerts = append(s.alerts, a)
		}
	}
	return nil
}

func (s *monitorMemStore) Unpublished(_ context.Context, limit int) ([]monitor.Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []monitor.Alert
	for _, a := range s.alerts {
		if !s.published[a.ID] && len(out) < limit {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *monitorMemStore) MarkPublished(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.published[id] = true
	}
	return nil
}

func (s *monitorMemStore) state() (records, alerts, published int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, len(s.alerts), len(s.published)
}

func monitorHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// monitorFastFetch: a fetch of partitions without records returns soon, so
// that records loaded just after it wait less (the default waits 5 s).
var monitorFastFetch = []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}

var monitorCST = rules.CST

// monitorEv is a settled event of psnNo at inst (region) at CST time when.
func monitorEv(id, psnNo, inst, region string, kind settlement.VisitKind, when string) settlement.SettlementEvent {
	t, err := time.ParseInLocation("2006-01-02 15:04", when, monitorCST)
	if err != nil {
		panic(err)
	}
	return settlement.SettlementEvent{EventID: "E" + id, Type: settlement.EventSettled, Version: 1, SetlID: "S" + id,
		MdtrtID: "M" + id, PsnNo: psnNo, Institution: inst, InsuredRegion: psnNo[:6], TreatRegion: region,
		MedType:  map[settlement.VisitKind]string{settlement.VisitInpatient: "21", settlement.VisitOutpatient: "11", settlement.VisitPharmacy: "41"}[kind],
		SetlTime: t.UTC(), Setlinfo: rules.Setlinfo{MedfeeSumamt: 10000}, VisitKind: kind}
}

func monitorStayEv(id, psnNo, inst, region, begin, end string) settlement.SettlementEvent {
	ev := monitorEv(id, psnNo, inst, region, settlement.VisitInpatient, end)
	b, err := time.ParseInLocation("2006-01-02 15:04", begin, monitorCST)
	if err != nil {
		panic(err)
	}
	b = b.UTC()
	e := ev.SetlTime
	ev.Begntime, ev.Endtime = &b, &e
	return ev
}

func monitorRecord(t *testing.T, ev settlement.SettlementEvent) *kgo.Record {
	t.Helper()
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return &kgo.Record{Topic: kafka.MonitorSettlementsTopic, Key: []byte(ev.PsnNo), Value: b}
}

// monitorBroker starts kfake with both topics.
func monitorBroker(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, kafka.MonitorSettlementsTopic, kafka.MonitorAlertsTopic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func monitorProduce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

// monitorAlertsOn reads the alerts topic from the start until it has n
// records, then waits a little more to be sure no other follows.
func monitorAlertsOn(t *testing.T, brokers []string, n int) []monitor.Alert {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafka.MonitorAlertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var out []monitor.Alert
	deadline := time.Now().Add(20 * time.Second)
	settle := time.Time{}
	for {
		wait := time.Until(deadline)
		if len(out) >= n {
			if settle.IsZero() {
				settle = time.Now().Add(500 * time.Millisecond)
			}
			wait = time.Until(settle)
		}
		if wait <= 0 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var a monitor.Alert
			require.NoError(t, json.Unmarshal(r.Value, &a))
			require.Equal(t, a.PsnNo, string(r.Key), "keyed by the person")
			require.Equal(t, a.ID, monitorHeader(r, "alert_id"))
			out = append(out, a)
		})
	}
	require.Len(t, out, n, "alerts on %s", kafka.MonitorAlertsTopic)
	return out
}

// runMonitor runs a consumer until the test ends (or stop is called).
func runMonitor(t *testing.T, c *kafka.MonitorConsumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "Run after cancel")
			case <-time.After(20 * time.Second):
				t.Error("the monitor consumer did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestMonitorConsumerRaisesStoresAndPublishesOnce(t *testing.T) {
	brokers := monitorBroker(t)
	const (
		a = "15010000000000000001"
		b = "15010000000000000004"
	)
	stayA := monitorStayEv("A1", a, "H15010000011", "150100", "2026-03-01 09:00", "2026-03-10 10:00")
	var recs []*kgo.Record
	recs = append(recs, monitorRecord(t, stayA),
		monitorRecord(t, monitorStayEv("A2", a, "H15020000012", "150200", "2026-03-05 09:00", "2026-03-12 10:00")))
	for i := 1; i <= 6; i++ {
		recs = append(recs, monitorRecord(t, monitorEv(fmt.Sprint("B", i), b, "P15010000201", "150100", settlement.VisitPharmacy,
			fmt.Sprintf("2026-03-15 %02d:00", 8+i))))
	}
	// Delivered twice (the relay published it again), and a record that is no event.
	recs = append(recs, monitorRecord(t, stayA), &kgo.Record{Topic: kafka.MonitorSettlementsTopic, Key: []byte("x"), Value: []byte("not json")})
	monitorProduce(t, brokers, recs...)

	store := newMonitorMemStore()
	store.failRecords = 2 // the database is down for a moment: retried, nothing lost
	c := &kafka.MonitorConsumer{Brokers: brokers, Store: store, Log: quietMonitorLog(), Opts: monitorFastFetch}
	stop := runMonitor(t, c)
	require.Eventually(t, func() bool {
		_, alerts, published := store.state()
		return c.Stats().Observed+c.Stats().Duplicates+c.Stats().Skipped == 10 && alerts == 2 && published == 2
	}, 20*time.Second, 20*time.Millisecond)
	stop()
	st := c.Stats()
	require.Equal(t, kafka.MonitorStats{Observed: 8, Duplicates: 1, Skipped: 1, Raised: 2, Published: 2}, st)

	got := monitorAlertsOn(t, brokers, 2)
	byRule := map[monitor.Rule]monitor.Alert{}
	for _, al := range got {
		byRule[al.Rule] = al
	}
	require.Equal(t, []string{"SA1", "SA2"}, byRule[monitor.RuleOverlappingStays].Evidence)
	require.Equal(t, []string{"150100", "150200"}, byRule[monitor.RuleOverlappingStays].Regions)
	require.Equal(t, []string{"SB1", "SB2", "SB3", "SB4", "SB5", "SB6"}, byRule[monitor.RuleSwipesPerDay].Evidence)
	require.Len(t, byRule[monitor.RuleSwipesPerDay].Settlements, 6)

	// A new member of the group (a restart, with no state in memory)
	// resumes after the committed offsets and rebuilds each person's state
	// from the store: a pharmacy sale during A's stay at Baotou raises an
	// alert, B's seventh swipe of the day none.
	monitorProduce(t, brokers,
		monitorRecord(t, monitorEv("A3", a, "P15010000201", "150100", settlement.VisitPharmacy, "2026-03-11 10:00")),
		monitorRecord(t, monitorEv("B7", b, "P15010000201", "150100", settlement.VisitPharmacy, "2026-03-15 20:00")))
	c2 := &kafka.MonitorConsumer{Brokers: brokers, Store: store, Log: quietMonitorLog(), Opts: monitorFastFetch}
	runMonitor(t, c2)
	require.Eventually(t, func() bool { return c2.Stats().Observed == 2 }, 20*time.Second, 20*time.Millisecond)
	all := monitorAlertsOn(t, brokers, 3)
	fresh := slices.DeleteFunc(all, func(a monitor.Alert) bool {
		return slices.ContainsFunc(got, func(b monitor.Alert) bool { return a.ID == b.ID })
	})
	require.Len(t, fresh, 1)
	require.Equal(t, monitor.RuleVisitDuringStay, fresh[0].Rule)
	require.Equal(t, []string{"SA3", "SA2"}, fresh[0].Evidence)
	require.Equal(t, kafka.MonitorStats{Observed: 2, Raised: 1, Published: 1}, c2.Stats(), "nothing delivered again")
	records, _, _ := store.state()
	require.Equal(t, 10, records)
}

// Alerts stored by a consumer that died before publishing them are
// published by the next one, at start.
func TestMonitorConsumerPublishesWhatACrashLeft(t *testing.T) {
	brokers := monitorBroker(t)
	store := newMonitorMemStore()
	m := monitor.New(monitor.Config{MaxSwipesPerDay: 1})
	const p = "42010000000000000051"
	for i, ev := range []settlement.SettlementEvent{
		monitorEv("W1", p, "H42010000001", "420100", settlement.VisitOutpatient, "2026-03-15 09:00"),
		monitorEv("W2", p, "H42010000230", "420100", settlement.VisitOutpatient, "2026-03-15 15:00"),
	} {
		require.NoError(t, store.Record(context.Background(), i+1, ev, m.Observe(ev)))
	}
	_, alerts, published := store.state()
	require.Equal(t, 1, alerts)
	require.Zero(t, published)
	c := &kafka.MonitorConsumer{Brokers: brokers, Store: store, Log: quietMonitorLog(), Opts: monitorFastFetch,
		Monitor: monitor.New(monitor.Config{MaxSwipesPerDay: 1})}
	runMonitor(t, c)
	got := monitorAlertsOn(t, brokers, 1)
	require.Equal(t, monitor.RuleSwipesPerDay, got[0].Rule)
	require.Equal(t, []string{"SW1", "SW2"}, got[0].Evidence)
}

func TestMonitorConsumerNeedsAStore(t *testing.T) {
	require.Error(t, (&kafka.MonitorConsumer{}).Run(context.Background()))
}
