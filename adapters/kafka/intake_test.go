package kafka_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/settlement"
)

// What a test claim is meant to be, and so how it must be answered.
type claimKind int

const (
	kValid       claimKind = iota // settles (or a pricing refusal)
	kDuplicate                    // an earlier valid claim again: its first answer
	kConflict                     // an earlier valid claim's id with other content: refused as a conflict
	kMedMismatch                  // med_type that does not fit the institution: refused
	kUnknownPsn                   // no such person: refused
	kPoisonFirst                  // this and the kinds after it go to the dead-letter topic
	kNotJSON
	kMissingField
	kUnknownInst
	kBadDate
	kNoLines
	kKeyMismatch
)

type testClaim struct {
	kind    claimKind
	claimID string // "" when not decodable
	key     string
	value   []byte
	rec     *kgo.Record // as produced: partition and offset
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// makeClaims builds n claim records over the 120 persons: mostly valid, with
// repeats, conflicting repeats, business refusals and poison mixed in.
func (e *env) makeClaims(seed uint64, n int) []*testClaim {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []*testClaim
	var valid []*testClaim
	var validClaims []settlement.ManualClaim
	add := func(kind claimKind, c settlement.ManualClaim) {
		tc := &testClaim{kind: kind, claimID: c.ClaimID, key: c.ClaimID, value: mustJSON(c)}
		out = append(out, tc)
		if kind == kValid {
			valid = append(valid, tc)
			validClaims = append(validClaims, c)
		}
	}
	for i := 0; len(out) < n; i++ {
		p := &e.persons[r.IntN(len(e.persons))]
		id := fmt.Sprintf("C%d-%06d", seed, i)
		c := e.validClaim(r, id, p)
		switch roll := r.IntN(100); {
		case roll < 70 || len(valid) == 0:
			add(kValid, c)
		case roll < 78:
			j := r.IntN(len(valid))
			out = append(out, &testClaim{kind: kDuplicate, claimID: valid[j].claimID, key: valid[j].key, value: valid[j].value})
		case roll < 82:
			c := validClaims[r.IntN(len(validClaims))]
			c.Lines = append([]settlement.LineInput{}, c.Lines...)
			c.Lines[0].Cnt, c.Lines[0].Pric, c.Lines[0].Amount = "1", "1.23", "1.23"
			add(kConflict, c)
		case roll < 87:
			if c.MedType == "41" {
				c.MedType = "11" // at a pharmacy
			} else {
				c.MedType = "41" // at a hospital
			}
			add(kMedMismatch, c)
		case roll < 89:
			c.PsnNo = "99999999999999999999"
			add(kUnknownPsn, c)
		case roll < 91:
			bad := [][]byte{[]byte(`{"claim_id": "` + id + `", "psn_no": `), []byte("\xff\xfe binary"), []byte(`[1,2,3]`),
				[]byte(`{"claim_id": 42}`), []byte(``), []byte(`{"claim_id":"` + id + `"} trailing`)}
			out = append(out, &testClaim{kind: kNotJSON, key: id, value: bad[r.IntN(len(bad))]})
		case roll < 93:
			c.PsnNo = ""
			add(kMissingField, c)
		case roll < 95:
			c.Institution = "H99999999999"
			add(kUnknownInst, c)
		case roll < 97:
			c.ServiceDate = "2026-02-30"
			add(kBadDate, c)
		case roll < 98:
			c.Lines = nil
			add(kNoLines, c)
		default:
			tc := &testClaim{kind: kKeyMismatch, claimID: id, key: "other-" + id, value: mustJSON(c)}
			out = append(out, tc)
		}
	}
	return out
}

// produceClaims writes the claims to medsettle.claims, in order.
func (e *env) produceClaims(t testing.TB, claims []*testClaim) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	require.NoError(t, err)
	defer cl.Close()
	recs := make([]*kgo.Record, len(claims))
	for i, c := range claims {
		recs[i] = &kgo.Record{Topic: kafka.TopicClaims, Key: []byte(c.key), Value: c.value}
		c.rec = recs[i]
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

func runIntake(t testing.TB, eng *settlement.Engine, opts []kgo.Opt) (*kafka.Intake, func()) {
	t.Helper()
	in, err := kafka.NewIntake(eng, opts, kafka.IntakeConfig{Log: quietLog()})
	require.NoError(t, err)
	return in, runBackground(t, in.Run, in.Close)
}

func waitAnswered(t testing.TB, in *kafka.Intake, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := in.Stats()
		if s.Committed >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d claims answered and committed after %v: %+v", s.Committed, n, timeout, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIntakeSettlesEachClaimOnce(t *testing.T) {
	// 10,000 claims take about 11 s here (2 cores, with PostgreSQL and
	// the broker on the same machine); -short runs 2,000.
	n := 10000
	if testing.Short() && os.Getenv("MEDSETTLE_LONG") != "1" {
		n = 2000
	}
	e := newEnv(t)
	ctx := context.Background()
	claims := e.makeClaims(1, n)
	e.produceClaims(t, claims)

	began := time.Now()
	in, stop := runIntake(t, e.engine, e.opts())
	waitAnswered(t, in, int64(n), 10*time.Minute)
	took := time.Since(began)
	stats := in.Stats()
	stop()
	t.Logf("%d claims answered in %v (%.0f claims/s): %+v", n, took, float64(n)/took.Seconds(), stats)

	results := e.consume(t, kafka.TopicClaimResults, int(stats.Settled+stats.Refused), 300*time.Millisecond, time.Minute)
	dlq := e.consume(t, kafka.TopicClaimsDLQ, int(stats.DeadLettered), 300*time.Millisecond, time.Minute)
	require.Equal(t, n, len(results)+len(dlq), "one answer per claim record")

	dead := deadLetters(t, dlq)
	answers := claimAnswers(t, results)
	setl, counts, validSettled := checkAnswers(t, claims, dead, answers)
	require.Greater(t, validSettled, counts[kValid]*9/10, "most valid claims settle")
	require.Len(t, dead, int(stats.DeadLettered))

	checkOneSettlementEach(ctx, t, e, setl)
	rep, err := e.store.Audit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	t.Logf("kinds %v; %d settlements, %d dead letters, %d refusals", counts, len(setl), len(dlq), stats.Refused)
}

// recordAt is a claim record's place: partition and offset.
type recordAt struct {
	part int32
	off  int64
}

// deadLetters are the dead letters, by the record they came from.
func deadLetters(t *testing.T, dlq []*kgo.Record) map[recordAt]kafka.DeadLetter {
	dead := map[recordAt]kafka.DeadLetter{}
	for _, r := range dlq {
		var dl kafka.DeadLetter
		require.NoError(t, json.Unmarshal(r.Value, &dl))
		require.NotEmpty(t, dl.Reason)
		require.Equal(t, dl.Reason, kafka.Header(r, kafka.HeaderDLQReason), "the reason in the header and the value")
		require.Equal(t, kafka.TopicClaims, dl.Topic)
		dead[recordAt{dl.Partition, dl.Offset}] = dl
	}
	return dead
}

// claimAnswers are the results, per claim id in the order answered.
func claimAnswers(t *testing.T, results []*kgo.Record) map[string][]kafka.ClaimResult {
	answers := map[string][]kafka.ClaimResult{}
	for _, r := range results {
		var res kafka.ClaimResult
		require.NoError(t, json.Unmarshal(r.Value, &res))
		require.Equal(t, string(r.Key), res.ClaimID)
		require.Equal(t, res.Status, kafka.Header(r, kafka.HeaderStatus))
		switch res.Status {
		case kafka.StatusSettled:
			require.NotNil(t, res.SettleAnswer)
			require.NotEmpty(t, res.SetlID)
			require.Nil(t, res.Refusal)
		case kafka.StatusRefused:
			require.NotNil(t, res.Refusal)
			require.NotEqual(t, settlement.EINTERNAL, res.Refusal.Code)
			require.NotEmpty(t, res.Refusal.Message)
			require.Equal(t, res.Refusal.Code, kafka.Header(r, kafka.HeaderCode))
		default:
			t.Fatalf("claim %s: status %q", res.ClaimID, res.Status)
		}
		answers[res.ClaimID] = append(answers[res.ClaimID], res)
	}

	return answers
}

// checkAnswers matches every claim sent with its answer (or its dead
// letter), consuming answers; it returns each settled claim's settlement,
// the claims sent by kind, and how many valid ones settled.
func checkAnswers(t *testing.T, claims []*testClaim, dead map[recordAt]kafka.DeadLetter, answers map[string][]kafka.ClaimResult) (
	setl map[string]string, counts map[claimKind]int, validSettled int) {
	first := map[string]kafka.ClaimResult{} // the first answer of each claim id
	setl = map[string]string{}              // claim id -> its one settlement
	counts = map[claimKind]int{}
	for _, c := range claims {
		counts[c.kind]++
		if c.kind >= kPoisonFirst {
			dl, ok := dead[recordAt{c.rec.Partition, c.rec.Offset}]
			require.True(t, ok, "poison record %d/%d (kind %d) not dead-lettered", c.rec.Partition, c.rec.Offset, c.kind)
			require.True(t, bytes.Equal(c.value, dl.Value), "the original record in the dead letter")
			continue
		}
		require.NotEmpty(t, answers[c.claimID], "claim %s (kind %d) unanswered", c.claimID, c.kind)
		res := answers[c.claimID][0]
		answers[c.claimID] = answers[c.claimID][1:]
		f, seen := first[c.claimID]
		switch c.kind {
		case kValid:
			require.False(t, seen)
			if res.Status == kafka.StatusSettled {
				validSettled++
			}
		case kDuplicate:
			require.True(t, seen)
			require.Equal(t, f.Status, res.Status, "claim %s again", c.claimID)
			if f.Status == kafka.StatusSettled {
				require.Equal(t, f.SetlID, res.SetlID, "claim %s again: the first settlement", c.claimID)
			}
		case kConflict:
			require.True(t, seen)
			if f.Status == kafka.StatusSettled {
				require.Equal(t, kafka.StatusRefused, res.Status)
				require.Equal(t, settlement.ECONFLICT, res.Refusal.Code, "claim %s with other content", c.claimID)
			}
		case kMedMismatch:
			require.Equal(t, kafka.StatusRefused, res.Status, "claim %s", c.claimID)
			require.Equal(t, settlement.EINVALID, res.Refusal.Code)
			require.Contains(t, res.Refusal.Message, "med_type")
		case kUnknownPsn:
			require.Equal(t, kafka.StatusRefused, res.Status)
			require.Equal(t, settlement.ENOTFOUND, res.Refusal.Code)
		}
		if !seen {
			first[c.claimID] = res
		}
		if res.Status == kafka.StatusSettled {
			if s, ok := setl[c.claimID]; ok {
				require.Equal(t, s, res.SetlID, "claim %s settled twice", c.claimID)
			}
			setl[c.claimID] = res.SetlID
		}
	}
	for id, rest := range answers {
		require.Empty(t, rest, "claim %s answered more often than sent", id)
	}
	return setl, counts, validSettled
}

// checkOneSettlementEach: exactly one settlement per settled claim in the
// database, the one answered (setl), and no other.
func checkOneSettlementEach(ctx context.Context, t *testing.T, e *env, setl map[string]string) {
	rows, err := e.store.Pool().Query(ctx, `SELECT msgid, setl_id FROM settlements WHERE msgid LIKE 'claim:%' AND reverses = ''`)
	require.NoError(t, err)
	inDB := map[string]string{}
	for rows.Next() {
		var msgid, id string
		require.NoError(t, rows.Scan(&msgid, &id))
		_, dup := inDB[msgid]
		require.False(t, dup, "%s settled twice", msgid)
		inDB[strings.TrimPrefix(msgid, "claim:")] = id
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, setl, inDB)
	var total int
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements`).Scan(&total))
	require.Equal(t, len(setl), total)
}

func TestIntakeRetriesInternalErrorsAndCommitsAfterAnswering(t *testing.T) {
	e := newEnv(t)
	claims := e.makeClaims(2, 40)
	e.produceClaims(t, claims)
	flaky := &flakyStore{Store: e.store}
	flaky.failures.Store(5)
	in, stop := runIntake(t, &settlement.Engine{Rules: e.rules, Store: flaky}, e.opts())
	waitAnswered(t, in, int64(len(claims)), time.Minute)
	s1 := in.Stats()
	stop()
	require.GreaterOrEqual(t, s1.Retries, int64(5), "internal errors are retried")
	poison := 0
	for _, c := range claims {
		if c.kind >= kPoisonFirst {
			poison++
		}
	}
	require.EqualValues(t, poison, s1.DeadLettered, "internal errors are not dead-lettered")

	// A new intake in the group reads only what was not committed.
	more := e.makeClaims(3, 15)
	e.produceClaims(t, more)
	in2, stop2 := runIntake(t, e.engine, e.opts())
	waitAnswered(t, in2, int64(len(more)), time.Minute)
	time.Sleep(300 * time.Millisecond) // time to read anything else
	s2 := in2.Stats()
	stop2()
	require.EqualValues(t, len(more), s2.Settled+s2.Refused+s2.DeadLettered, "committed claims are not read again")
	results := e.consume(t, kafka.TopicClaimResults, 0, 300*time.Millisecond, time.Minute)
	dlq := e.consume(t, kafka.TopicClaimsDLQ, 0, 300*time.Millisecond, time.Minute)
	require.Equal(t, len(claims)+len(more), len(results)+len(dlq))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
