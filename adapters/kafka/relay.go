package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/settlement"
)

// RelayConfig tunes a Relay; the zero value of each field means its default.
type RelayConfig struct {
	Topic string // TopicSettlements
	// Owner names this relay in the lease table: unique among the relays
	// running. Default: host-pid-random. A relay restarted under the same
	// name takes its partitions back at once instead of after LeaseTTL.
	Owner string
	// LeaseTTL is how long a lease lasts without renewal (15 s): how long
	// the partitions of a relay that died wait for another. Leases are
	// renewed every LeaseTTL/3, and a relay stops publishing a partition
	// LeaseTTL/2 after its last renewal began.
	LeaseTTL time.Duration
	Batch    int           // events read and produced per partition at a time (1000)
	Parallel int           // partitions published at once (4)
	Poll     time.Duration // wait when there is nothing to publish (200 ms)
	// Linger is the least time between the starts of two rounds (a read of
	// every partition held) unless a round found a full Batch waiting
	// (Poll when zero; negative: none). Under a steady trickle of events a
	// relay that went round again at once would read and mark each
	// partition for an event or two at a time, two database transactions
	// per partition per round; lingering lets the events of that time
	// gather into one batch per partition, at the cost of publishing them
	// up to Linger later (as an idle relay does already, by Poll).
	Linger time.Duration
	Log    *slog.Logger
}

func (c *RelayConfig) defaults() {
	orDefault(&c.Topic, TopicSettlements)
	if c.Owner == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	positiveOr(&c.LeaseTTL, 15*time.Second)
	positiveOr(&c.Batch, 1000)
	positiveOr(&c.Parallel, 4)
	positiveOr(&c.Poll, 200*time.Millisecond)
	c.Linger = lingerOr(c.Linger, c.Poll)
	orDefault(&c.Log, slog.Default())
}

// Relay publishes the outbox to Kafka: the partitions it leases, each
// person's events in the order they committed, marking them published once
// the broker acknowledged them. See the package documentation.
type Relay struct {
	cfg RelayConfig
	ob  settlement.Outbox
	cl  *kgo.Client

	produced, marked, batches, leaseLost, errs atomic.Int64
	held                                       atomic.Pointer[[]int]
}

// RelayStats are a relay's counters since it started.
type RelayStats struct {
	Produced  int64 // events acknowledged by the broker
	Marked    int64 // events marked published (less than Produced by what a lost lease or a failed mark left)
	Batches   int64
	LeaseLost int64 // marks refused because the lease had been lost
	Errors    int64 // failed reads, produces and marks (each retried)
	Parts     []int // the outbox partitions held now
}

// NewRelay makes a relay over ob with its own producer, from the client
// options opts (Config.Opts). It publishes nothing before Run.
func NewRelay(ob settlement.Outbox, opts []kgo.Opt, cfg RelayConfig) (*Relay, error) {
	cfg.defaults()
	if cfg.LeaseTTL < time.Second {
		return nil, errors.New("kafka: a lease TTL under a second leaves no time to publish")
	}
	// Produce requests end well before the lease could expire: a request
	// sent just before the relay's deadline (LeaseTTL/2 after the lease was
	// renewed) is answered or failed by LeaseTTL*7/10.
	popts := append(slices.Clip(opts),
		kgo.RequiredAcks(kgo.AllISRAcks()),                   // idempotent writes need acks=all; said explicitly
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2 of the key, as Java clients do
		kgo.ProduceRequestTimeout(cfg.LeaseTTL/5),
		kgo.RecordDeliveryTimeout(cfg.LeaseTTL/2),
		kgo.MaxBufferedRecords(max(10000, 2*cfg.Batch*cfg.Parallel)),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	cl, err := kgo.NewClient(popts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: relay client: %w", err)
	}
	r := &Relay{cfg: cfg, ob: ob, cl: cl}
	r.held.Store(&[]int{})
	return r, nil
}

// Owner is the relay's name in the lease table.
func (r *Relay) Owner() string { return r.cfg.Owner }

// Close closes the producer. Call it after Run returned.
func (r *Relay) Close() { r.cl.Close() }

// Stats returns the counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Produced: r.produced.Load(), Marked: r.marked.Load(), Batches: r.batches.Load(),
		LeaseLost: r.leaseLost.Load(), Errors: r.errs.Load(), Parts: slices.Clone(*r.held.Load())}
}

// Run publishes until ctx ends, then marks what the broker acknowledged,
// releases the leases and returns nil. Database and broker failures are
// logged and retried; Run returns an error only for a misconfiguration.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Log.With("relay", r.cfg.Owner)
	defer func() {
		r.held.Store(&[]int{})
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.ob.ReleaseOutbox(rctx, r.cfg.Owner); err != nil {
			log.Warn("releasing outbox leases", "err", err)
		}
	}()
	ttl := r.cfg.LeaseTTL
	var (
		held  []int
		until time.Time // stop publishing held by then: before the leases can expire
		renew time.Time // next lease renewal
	)
	for ctx.Err() == nil {
		if !time.Now().Before(renew) {
			began := time.Now() // before the database's now(): the lease ends later than began+ttl
			parts, err := r.ob.LeaseOutbox(ctx, r.cfg.Owner, ttl)
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				r.errs.Add(1)
				log.Warn("outbox lease", "err", err)
				renew = time.Now().Add(r.cfg.Poll)
			default:
				if !slices.Equal(parts, held) {
					log.Info("outbox partitions", "held", parts)
				}
				held, until, renew = parts, began.Add(ttl/2), began.Add(ttl/3)
			}
		}
		if !time.Now().Before(until) {
			held = nil // could not renew in time: the leases may be someone else's soon
		}
		snapshot := slices.Clone(held)
		r.held.Store(&snapshot)
		began := time.Now()
		n, full, lost := r.round(ctx, held, until, log)
		if len(lost) > 0 {
			held = slices.DeleteFunc(slices.Clone(held), func(p int) bool { return slices.Contains(lost, p) })
		}
		var wait time.Duration
		switch {
		case n == 0:
			wait = r.cfg.Poll
		case !full:
			wait = time.Until(began.Add(r.cfg.Linger)) // a backlog (a full batch) goes round again at once
		}
		if wait > 0 {
			wait = min(wait, max(time.Until(renew), time.Millisecond))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

// round publishes one batch of each partition in parts, Parallel at a time.
// It returns how many events it marked, whether a partition had a full
// batch waiting (so more may wait), and the partitions whose lease was lost.
func (r *Relay) round(ctx context.Context, parts []int, until time.Time, log *slog.Logger) (int, bool, []int) {
	if len(parts) == 0 {
		return 0, false, nil
	}
	bctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	var (
		mu    sync.Mutex
		total int
		full  bool
		lost  []int
		wg    sync.WaitGroup
		sem   = make(chan struct{}, r.cfg.Parallel)
	)
	for _, p := range parts {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-bctx.Done():
				return
			}
			defer func() { <-sem }()
			n, read, err := r.publish(bctx, p)
			mu.Lock()
			defer mu.Unlock()
			total += n
			full = full || read == r.cfg.Batch
			switch {
			case errors.Is(err, settlement.ErrLeaseLost):
				r.leaseLost.Add(1)
				lost = append(lost, p)
				log.Warn("outbox lease lost before marking", "part", p)
			case err != nil && ctx.Err() == nil:
				r.errs.Add(1)
				log.Warn("publishing outbox partition", "part", p, "err", err)
			}
		})
	}
	wg.Wait()
	return total, full, lost
}

// publish produces one batch of a partition and marks what the broker
// acknowledged; it returns how many it marked and how many it read. ctx
// bounds the reading and producing by the lease; the mark is not cut short
// by it (the transaction checks the lease), so that what was acknowledged is
// marked even when the relay is stopping.
func (r *Relay) publish(ctx context.Context, part int) (marked, read int, err error) {
	evs, err := r.ob.PendingOutbox(ctx, part, r.cfg.Batch)
	if err != nil || len(evs) == 0 {
		return 0, 0, err
	}
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		recs[i] = EventRecord(r.cfg.Topic, &evs[i])
	}
	res := r.cl.ProduceSync(ctx, recs...)
	r.batches.Add(1)
	failed := make(map[*kgo.Record]error, 1)
	for _, pr := range res {
		if pr.Err != nil {
			failed[pr.Record] = pr.Err
		}
	}
	// Mark the acknowledged events, each chain only up to its first
	// failure: a person's later event must not be marked while an earlier
	// one still waits (Kafka fails a partition's later records with an
	// earlier one, so this is belt and braces).
	refs := make([]settlement.OutboxRef, 0, len(evs))
	var stopped map[string]bool
	var firstErr error
	for i := range evs {
		if stopped[evs[i].Chain] {
			continue
		}
		if err := failed[recs[i]]; err != nil {
			if stopped == nil {
				stopped = map[string]bool{}
			}
			stopped[evs[i].Chain] = true
			firstErr = cmpErr(firstErr, err)
			continue
		}
		refs = append(refs, evs[i].Ref())
	}
	r.produced.Add(int64(len(refs)))
	if len(refs) > 0 {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		n, err := r.ob.MarkOutboxPublished(mctx, r.cfg.Owner, part, refs)
		r.marked.Add(int64(n))
		if err != nil {
			return n, len(evs), err
		}
	}
	if firstErr != nil {
		return len(refs), len(evs), fmt.Errorf("%d of %d events not acknowledged: %w", len(evs)-len(refs), len(evs), firstErr)
	}
	return len(refs), len(evs), nil
}

func cmpErr(have, err error) error {
	if have != nil {
		return have
	}
	return err
}

// EventRecord is the Kafka record of an outbox event: key psn_no, value the
// payload, headers event_id, event_type and version.
func EventRecord(topic string, e *settlement.OutboxEvent) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(e.Key),
		Value: e.Payload,
		Headers: []kgo.RecordHeader{
			{Key: HeaderEventID, Value: []byte(e.ID)},
			{Key: HeaderEventType, Value: []byte(e.Type)},
			{Key: HeaderVersion, Value: []byte(payloadVersion(e.Payload))},
		},
		// Timestamp: the time of producing (the settlement's own time is
		// in the payload), so that broker retention counts from publication.
	}
}

// payloadVersion is the payload's own version field.
func payloadVersion(b []byte) string {
	var v struct {
		Version *int `json:"version"`
	}
	if json.Unmarshal(b, &v) != nil || v.Version == nil {
		return strconv.Itoa(settlement.EventVersion)
	}
	return strconv.Itoa(*v.Version)
}

// Header returns the value of a record's header, "" when absent.
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
