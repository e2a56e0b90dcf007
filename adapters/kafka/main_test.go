package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			r.Close()
		})
	}
	t.Cleanup(stop)
	return r, stop
}
