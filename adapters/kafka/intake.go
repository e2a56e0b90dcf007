package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/settlement"
)

// ClaimResult is the value of a record on medsettle.claims.results: the
// settlement of a claim, or why it was refused.
type ClaimResult struct {
	ClaimID string `json:"claim_id"`
	Status  string `json:"status"` // StatusSettled or StatusRefused
	// The settlement, when settled: its fields sit beside claim_id.
	*settlement.SettleAnswer
	Refusal *Refusal `json:"refusal,omitempty"`
}

// Claim outcomes.
const (
	StatusSettled = "settled"
	StatusRefused = "refused"
)

// Refusal is a business refusal: Code is settlement's error code (invalid,
// not_found, conflict, forbidden), Rule the pricing rule when pricing
// refused, Message what to tell the claimant.
type Refusal struct {
	Code    string `json:"code"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message"`
}

// DeadLetter is the value of a record on medsettle.claims.dlq.
type DeadLetter struct {
	Reason    string `json:"reason"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     []byte `json:"value"`          // the original value, as received (base64 in JSON)
	Text      string `json:"text,omitempty"` // the same when it is valid UTF-8, for reading
}

// IntakeConfig tunes an Intake; the zero value of each field means its default.
type IntakeConfig struct {
	Group        string // IntakeGroup
	Topic        string // TopicClaims
	ResultsTopic string // TopicClaimResults
	DLQTopic     string // TopicClaimsDLQ
	// Workers is how many claims are settled at once (8). Claims with the
	// same key (claim_id) are settled one after the other, in offset order.
	Workers int
	MaxPoll int // records per poll, settled and committed together (500)
	Log     *slog.Logger
}

func (c *IntakeConfig) defaults() {
	orDefault(&c.Group, IntakeGroup)
	orDefault(&c.Topic, TopicClaims)
	orDefault(&c.ResultsTopic, TopicClaimResults)
	orDefault(&c.DLQTopic, TopicClaimsDLQ)
	positiveOr(&c.Workers, 8)
	positiveOr(&c.MaxPoll, 500)
	orDefault(&c.Log, slog.Default())
}

// Intake settles the manual claims of medsettle.claims and answers on
// medsettle.claims.results or medsettle.claims.dlq. See the package documentation.
type Intake struct {
	cfg IntakeConfig
	e   *settlement.Engine
	cl  *kgo.Client

	settled, refused, dead, retries, commits, committed atomic.Int64
}

// IntakeStats are an intake's counters since it started.
type IntakeStats struct {
	Settled      int64 // results "settled" (a repeated claim counts again)
	Refused      int64 // results "refused"
	DeadLettered int64
	Retries      int64 // internal errors retried
	Commits      int64 // offset commits
	Committed    int64 // records whose offsets were committed
}

// NewIntake makes an intake settling through e, with one client (consumer
// in the group and producer of the answers) from the options opts
// (Config.Opts). It reads nothing before Run.
func NewIntake(e *settlement.Engine, opts []kgo.Opt, cfg IntakeConfig) (*Intake, error) {
	cfg.defaults()
	copts := append(slices.Clip(opts),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // no partition moves between settling a batch and committing it
		kgo.RequireStableFetchOffsets(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	cl, err := kgo.NewClient(copts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: intake client: %w", err)
	}
	return &Intake{cfg: cfg, e: e, cl: cl}, nil
}

// Close leaves the group and closes the client. Call it after Run returned.
func (in *Intake) Close() { in.cl.Close() }

// Stats returns the counters.
func (in *Intake) Stats() IntakeStats {
	return IntakeStats{Settled: in.settled.Load(), Refused: in.refused.Load(), DeadLettered: in.dead.Load(),
		Retries: in.retries.Load(), Commits: in.commits.Load(), Committed: in.committed.Load()}
}

// Run consumes until ctx ends and returns nil. Each poll's claims are
// settled, their answers produced and acknowledged, and only then their
// offsets committed: a claim interrupted anywhere before is read again,
// and settled again idempotently.
func (in *Intake) Run(ctx context.Context) error {
	log := in.cfg.Log.With("intake", in.cfg.Group)
	for {
		fetches := in.cl.PollRecords(ctx, in.cfg.MaxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			in.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, part int32, err error) {
			log.Warn("fetch", "topic", topic, "partition", part, "err", err)
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			in.cl.AllowRebalance()
			continue
		}
		answers, err := in.settleAll(ctx, recs)
		if err == nil {
			err = in.produce(ctx, answers)
		}
		if err != nil { // only ctx ending: nothing of this batch is committed
			in.cl.AllowRebalance()
			return nil
		}
		if err := in.cl.CommitRecords(ctx, recs...); err != nil {
			// The answers stand; the claims will be read again and answered again, identically.
			log.Warn("committing offsets", "err", err)
		} else {
			in.commits.Add(1)
			in.committed.Add(int64(len(recs)))
		}
		in.cl.AllowRebalance()
	}
}

// settleAll answers a poll's records: records of one key in order, keys
// Workers at a time. It fails only when ctx ends.
func (in *Intake) settleAll(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	answers := make([]*kgo.Record, len(recs))
	var keys []string
	byKey := map[string][]int{}
	for i, r := range recs {
		k := string(r.Key)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	work := make(chan []int)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range min(in.cfg.Workers, len(keys)) {
		wg.Go(func() {
			for idx := range work {
				for _, i := range idx {
					a, err := in.answer(ctx, recs[i])
					if err != nil {
						failed.Store(true)
						break
					}
					answers[i] = a
				}
			}
		})
	}
	for _, k := range keys {
		work <- byKey[k]
	}
	close(work)
	wg.Wait()
	if failed.Load() {
		return nil, ctx.Err()
	}
	return answers, nil
}

// answer settles one record and returns its answer record. Internal errors
// are retried until ctx ends, the only error it returns.
func (in *Intake) answer(ctx context.Context, r *kgo.Record) (*kgo.Record, error) {
	var c settlement.ManualClaim
	if err := json.Unmarshal(r.Value, &c); err != nil {
		return in.deadLetter(r, "", "not a manual claim: "+err.Error()), nil
	}
	if len(r.Key) > 0 && string(r.Key) != c.ClaimID {
		return in.deadLetter(r, c.ClaimID, fmt.Sprintf("record key %q is not the claim_id %q", r.Key, c.ClaimID)), nil
	}
	if _, err := c.Validate(); err != nil {
		return in.deadLetter(r, c.ClaimID, settlement.ErrorMessage(err)), nil
	}
	if in.e.Rules.Institutions[c.Institution] == nil {
		return in.deadLetter(r, c.ClaimID, fmt.Sprintf("fixmedins_code %q is not a designated institution", c.Institution)), nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ans, err := in.e.ManualSettle(ctx, c)
		if err == nil {
			in.settled.Add(1)
			return in.result(c.ClaimID, ClaimResult{ClaimID: c.ClaimID, Status: StatusSettled, SettleAnswer: &ans}), nil
		}
		if code := settlement.ErrorCode(err); code != settlement.EINTERNAL {
			var se *settlement.Error
			errors.As(err, &se)
			in.refused.Add(1)
			return in.result(c.ClaimID, ClaimResult{ClaimID: c.ClaimID, Status: StatusRefused,
				Refusal: &Refusal{Code: code, Rule: se.Rule, Message: se.Message}}), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A claim whose data the database itself refuses (an amount out of
		// range, a constraint) will never settle: retrying it would stop
		// the partition for good. Anything else (the database down, a
		// timeout) is passing and retried.
		if refusedByDatabase(err) && attempt >= 3 {
			return in.deadLetter(r, c.ClaimID, "the database refused the claim: "+err.Error()), nil
		}
		in.retries.Add(1)
		in.cfg.Log.Warn("manual claim: internal error, retrying", "claim_id", c.ClaimID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// refusedByDatabase reports a data exception (SQLSTATE class 22) or an
// integrity constraint violation (class 23).
func refusedByDatabase(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && len(pe.Code) == 5 && (pe.Code[:2] == "22" || pe.Code[:2] == "23")
}

func (in *Intake) result(claimID string, res ClaimResult) *kgo.Record {
	b, err := json.Marshal(res)
	if err != nil { // a SettleAnswer always marshals; keep the record well-formed regardless
		b = []byte(`{"claim_id":` + strconv.Quote(claimID) + `,"status":"` + res.Status + `"}`)
	}
	rec := &kgo.Record{Topic: in.cfg.ResultsTopic, Key: []byte(claimID), Value: b,
		Headers: []kgo.RecordHeader{{Key: HeaderClaimID, Value: []byte(claimID)}, {Key: HeaderStatus, Value: []byte(res.Status)}}}
	if res.Refusal != nil {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderCode, Value: []byte(res.Refusal.Code)})
	}
	return rec
}

func (in *Intake) deadLetter(r *kgo.Record, claimID, reason string) *kgo.Record {
	in.dead.Add(1)
	dl := DeadLetter{Reason: reason, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: r.Value}
	if utf8.Valid(r.Value) {
		dl.Text = string(r.Value)
	}
	b, _ := json.Marshal(dl) // strings and bytes only: cannot fail
	rec := &kgo.Record{Topic: in.cfg.DLQTopic, Key: r.Key, Value: b,
		Headers: []kgo.RecordHeader{{Key: HeaderDLQReason, Value: []byte(reason)}}}
	if claimID != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderClaimID, Value: []byte(claimID)})
	}
	return rec
}

// produce sends the answers and waits for the broker to acknowledge them
// all, producing the failed ones again until then. It fails only when ctx ends.
func (in *Intake) produce(ctx context.Context, recs []*kgo.Record) error {
	backoff := 100 * time.Millisecond
	for len(recs) > 0 {
		var again []*kgo.Record
		for _, pr := range in.cl.ProduceSync(ctx, recs...) {
			if pr.Err != nil {
				again = append(again, pr.Record)
			}
		}
		if len(again) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.cfg.Log.Warn("producing claim answers, retrying", "failed", len(again))
		// Keep the offset order of the retried records (promises come back per partition).
		order := make(map[*kgo.Record]int, len(recs))
		for i, r := range recs {
			order[r] = i
		}
		slices.SortFunc(again, func(a, b *kgo.Record) int { return order[a] - order[b] })
		recs = again
		for _, r := range recs { // a record is produced anew
			r.Partition, r.Offset, r.Context = 0, 0, nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}
