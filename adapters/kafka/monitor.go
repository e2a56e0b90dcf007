package kafka

// The fund-supervision monitor's consumer: settlement events from the
// settlements topic into monitor.Monitor, alerts stored and then published
// to the alerts topic, offsets committed last.
//
// Delivery is at least once at every step, and every step is idempotent:
//
//   - an event is recorded once per event id (monitor.Store.Record in one
//     transaction with the alerts it raised), so a record delivered again,
//     after a crash or a rebalance, changes nothing;
//   - alert ids are deterministic, so an alert raised again is the same row;
//   - the alerts table is the alerts topic's outbox: stored alerts not yet
//     published are published (key psn_no, value the alert's JSON) before
//     the offsets of the records that raised them are committed, and again
//     on start after a crash. Consumers of the alerts topic dedupe by
//     alert_id (also in the record's alert_id header).
//
// The Monitor is a cache of the persisted per-person history: before each
// event the person's state is brought up to date with the events stored
// since (by this or another member of the group), so partitions can move
// between members freely.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/settlement"
)

// Defaults of MonitorConsumer.
const (
	MonitorSettlementsTopic = "medsettle.settlements"
	MonitorAlertsTopic      = "medsettle.alerts"
	MonitorGroup            = "medsettle-monitor"
)

// MonitorConsumer runs the fund-supervision monitor as a member of a
// consumer group. Set the fields, then call Run.
type MonitorConsumer struct {
	// Brokers are the seed brokers; or give kgo.SeedBrokers in Opts (as
	// Config.Opts does).
	Brokers     []string
	Group       string // MonitorGroup when empty
	Topic       string // MonitorSettlementsTopic when empty
	AlertsTopic string // MonitorAlertsTopic when empty
	Store       monitor.Store
	// Monitor holds the rules' thresholds and the cached state (a new one
	// with the default thresholds when nil).
	Monitor *monitor.Monitor
	Log     *slog.Logger
	// MaxPersons bounds the cache: past it the state is dropped, to be
	// rebuilt from the Store person by person (100 000 when zero).
	MaxPersons int
	// BatchSize is the most records handled between two commits (500 when zero).
	BatchSize int
	// Linger is the least time between two polls after a poll that
	// returned fewer than BatchSize records (100 ms when zero; negative:
	// none): under a trickle of events the records of that time are then
	// handled together, with one publishing of alerts and one commit,
	// instead of a batch of one or two records each. Alerts are raised up
	// to Linger later.
	Linger time.Duration
	// RetryFor is how long a failing step (the Store, producing) is retried
	// before Run gives up and returns its error (30 s when zero). The
	// records not committed are delivered again to whoever runs next.
	RetryFor time.Duration
	// Opts are more client options (Config.Opts: brokers, TLS, SASL).
	Opts []kgo.Opt

	observed, duplicates, skipped, raised, published atomic.Int64
}

// MonitorStats counts what a MonitorConsumer did since it was created.
type MonitorStats struct {
	Observed   int64 // events recorded
	Duplicates int64 // events already recorded (delivered again)
	Skipped    int64 // records that are not settlement events
	Raised     int64 // alerts raised
	Published  int64 // alerts published (again after a crash included)
}

// Stats returns the counters.
func (c *MonitorConsumer) Stats() MonitorStats {
	return MonitorStats{Observed: c.observed.Load(), Duplicates: c.duplicates.Load(), Skipped: c.skipped.Load(),
		Raised: c.raised.Load(), Published: c.published.Load()}
}

func (c *MonitorConsumer) defaults() {
	orDefault(&c.Group, MonitorGroup)
	orDefault(&c.Topic, MonitorSettlementsTopic)
	orDefault(&c.AlertsTopic, MonitorAlertsTopic)
	if c.Monitor == nil {
		c.Monitor = monitor.New(monitor.Config{})
	}
	orDefault(&c.Log, slog.Default())
	positiveOr(&c.MaxPersons, 100_000)
	positiveOr(&c.BatchSize, 500)
	c.Linger = lingerOr(c.Linger, 100*time.Millisecond)
	positiveOr(&c.RetryFor, 30*time.Second)
}

// Run consumes until ctx is cancelled (then it returns nil) or a step keeps
// failing for RetryFor (then it returns that error).
func (c *MonitorConsumer) Run(ctx context.Context) error {
	if c.Store == nil {
		return errors.New("kafka: MonitorConsumer needs a Store")
	}
	c.defaults()
	var opts []kgo.Opt
	if len(c.Brokers) > 0 {
		opts = append(opts, kgo.SeedBrokers(c.Brokers...))
	}
	opts = append(append(opts,
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// No rebalance between a poll and the commit of what it returned.
		kgo.BlockRebalanceOnPoll(),
	), c.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: monitor client: %w", err)
	}
	defer cl.Close()
	// Alerts a previous run stored but did not get to publish.
	if err := c.retry(ctx, "publishing alerts", func() error { return c.publish(ctx, cl) }); err != nil {
		return c.exit(ctx, err)
	}
	for {
		began := time.Now()
		fetches := cl.PollRecords(ctx, c.BatchSize)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return c.exit(ctx, nil)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			c.Log.Warn("monitor: fetch error", "topic", topic, "partition", partition, "err", err)
		})
		recs := fetches.Records()
		err := c.handle(ctx, cl, recs)
		cl.AllowRebalance()
		if err != nil {
			return c.exit(ctx, err)
		}
		if n := len(recs); n > 0 && n < c.BatchSize {
			if wait := time.Until(began.Add(c.Linger)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
		}
	}
}

// exit is nil when ctx was cancelled: stopping is not a failure.
func (c *MonitorConsumer) exit(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// handle observes a batch, publishes its alerts and commits its offsets.
func (c *MonitorConsumer) handle(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	raised, dups := c.raised.Load(), c.duplicates.Load()
	for _, r := range recs {
		if err := c.retry(ctx, "observing an event", func() error { return c.observe(ctx, r) }); err != nil {
			return err
		}
	}
	// An alert is published before the offset of the record that raised it
	// is committed, so only a batch that raised one, or that holds records
	// delivered again (their consumer may have died between storing and
	// publishing), can have any to publish; the others skip the query.
	if c.raised.Load() != raised || c.duplicates.Load() != dups {
		if err := c.retry(ctx, "publishing alerts", func() error { return c.publish(ctx, cl) }); err != nil {
			return err
		}
	}
	if err := cl.CommitRecords(ctx, recs...); err != nil {
		// Harmless: the records are delivered again and found recorded.
		c.Log.Warn("monitor: committing offsets failed", "err", err)
	}
	return nil
}

// observe feeds one record to the monitor and records it with its alerts.
func (c *MonitorConsumer) observe(ctx context.Context, r *kgo.Record) error {
	var ev settlement.SettlementEvent
	if err := json.Unmarshal(r.Value, &ev); err != nil || ev.PsnNo == "" || ev.EventID == "" {
		c.skipped.Add(1)
		c.Log.Error("monitor: skipping a record that is not a settlement event", "topic", r.Topic,
			"partition", r.Partition, "offset", r.Offset, "err", err)
		return nil
	}
	if c.Monitor.Observed(ev.PsnNo) == 0 && c.Monitor.Persons() >= c.MaxPersons {
		c.Monitor.Reset()
	}
	for range 10 {
		if err := c.observeOnce(ctx, ev); !errors.Is(err, monitor.ErrStale) {
			return err
		}
	}
	return fmt.Errorf("kafka: the monitor history of %s keeps moving", ev.PsnNo)
}

func (c *MonitorConsumer) observeOnce(ctx context.Context, ev settlement.SettlementEvent) error {
	m, psn := c.Monitor, ev.PsnNo
	// A person the cache knows is taken to be up to date without reading
	// the store: Record stores the event only as the person's next one
	// (seq = observed + 1) and answers ErrStale when another member stored
	// events meanwhile; the state is then dropped and rebuilt from History
	// (below, on the next try), before anything is stored. A person the
	// cache does not know (first sight, a restart, a partition moved here,
	// a state dropped) is read from the store first.
	if m.Observed(psn) == 0 {
		history, err := c.Store.History(ctx, psn, 0)
		if err != nil {
			m.Forget(psn)
			return err
		}
		for _, h := range history {
			m.Observe(h) // raised before, and stored then
		}
	}
	if m.Has(ev) {
		c.duplicates.Add(1)
		return nil
	}
	alerts := m.Observe(ev)
	switch err := c.Store.Record(ctx, m.Observed(psn), ev, alerts); {
	case err == nil:
		c.observed.Add(1)
		c.raised.Add(int64(len(alerts)))
		for _, a := range alerts {
			c.Log.LogAttrs(ctx, slog.LevelInfo, "monitor: alert", slog.String("alert_id", a.ID), slog.String("rule", string(a.Rule)),
				slog.String("psn_no", a.PsnNo), slog.Any("evidence", a.Evidence))
		}
		return nil
	case errors.Is(err, monitor.ErrObserved):
		m.Forget(psn)
		c.duplicates.Add(1)
		return nil
	default:
		m.Forget(psn) // the state is ahead of the store: rebuild it
		return err
	}
}

// publishBatch is how many stored alerts are published at a time.
const publishBatch = 500

// publish produces the stored alerts not yet published, then marks them.
func (c *MonitorConsumer) publish(ctx context.Context, cl *kgo.Client) error {
	for {
		pending, err := c.Store.Unpublished(ctx, publishBatch)
		if err != nil || len(pending) == 0 {
			return err
		}
		recs := make([]*kgo.Record, len(pending))
		ids := make([]string, len(pending))
		for i := range pending {
			a := &pending[i]
			b, err := json.Marshal(a)
			if err != nil {
				return err
			}
			ids[i] = a.ID
			recs[i] = &kgo.Record{Topic: c.AlertsTopic, Key: []byte(a.PsnNo), Value: b, Headers: []kgo.RecordHeader{
				{Key: "alert_id", Value: []byte(a.ID)}, {Key: "rule", Value: []byte(a.Rule)}}}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("producing alerts: %w", err)
		}
		if err := c.Store.MarkPublished(ctx, ids); err != nil {
			return err
		}
		c.published.Add(int64(len(pending)))
		if len(pending) < publishBatch {
			return nil
		}
	}
}

// retry runs fn until it succeeds, ctx ends or RetryFor has passed.
func (c *MonitorConsumer) retry(ctx context.Context, what string, fn func() error) error {
	deadline := time.Now().Add(c.RetryFor)
	backoff := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka: monitor %s: %w", what, err)
		}
		c.Log.Warn("monitor: retrying", "step", what, "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
