// Package storetest is the contract of the engine's store ports
// (settlement.Store, settlement.Tx, settlement.ClearingStore): one suite
// that every implementation passes, run against the in-memory store
// (adapters/memory) and the PostgreSQL store (adapters/postgres). Where the
// two once disagreed, PostgreSQL's behaviour is the contract.
//
// Each case opens a fresh store seeded with the registry persons of
// testdata (medsettle.Persons) and asserts what the engine relies on: a
// msgid claimed once, an error undoing the whole transaction, the chain
// head advanced only from where it stands, a new year opening with the
// account's balance, lines in the order they were charged, and so on.
package storetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Opener gives a test a fresh store, seeded with the registry persons of
// testdata and nothing else, whose transactions also implement
// settlement.ClearingStore.
type Opener func(t *testing.T) settlement.Store

// Run runs the contract suite against the stores open makes.
func Run(t *testing.T, open Opener) {
	persons := Persons(t)
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &env{st: open(t), persons: persons})
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

func cases() []testCase {
	return []testCase{
		{"a msgid is claimed once", claimOnce},
		{"PutMessage updates only status, ref and answer", putMessage},
		{"an error rolls back every write, the claim included", rollback},
		{"a refused write rolls back the transaction", refusedWrite},
		{"a view refuses writes", viewRefusesWrites},
		{"persons by number, ID and card", persons},
		{"counters of a new year open with the balance", countersOpen},
		{"counters keep their opening and refuse a negative balance", countersPut},
		{"a visit's identity stays as first written", visits},
		{"lines in charge order, withdrawn by batch", lines},
		{"concurrent transactions are serializable", concurrent},
		{"a settlement reads back as written", settlementRoundTrip},
		{"settlement status changes", settlementStatus},
		{"SettlementsOf selects an institution's period", settlementsOf},
		{"the chain head advances one seq at a time", chainHead},
		{"a ledger entry is never zero", zeroEntry},
		{"the audit of consistent writes is clean", auditClean},
		{"Uncleared selects a role's open items before a time", uncleared},
		{"MarkCleared marks open items only", markCleared},
		{"a clearing posting is made once per period, counterparty and kind", clearingRecords},
	}
}

// Rules is the rule set of testdata, as the platform loads it.
func Rules(t testing.TB) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	return rs
}

// Persons are the registry persons of testdata, as a store is seeded with them.
func Persons(t testing.TB) []settlement.Person {
	t.Helper()
	persons, err := Registry(Rules(t))
	require.NoError(t, err)
	require.NotEmpty(t, persons)
	return persons
}

// Registry reads the registry persons of testdata under rs; for callers
// that are not tests (a template database's seed).
func Registry(rs *rules.RuleSet) ([]settlement.Person, error) {
	raw, err := medsettle.Persons()
	if err != nil {
		return nil, fmt.Errorf("the registry of testdata: %w", err)
	}
	return settlement.ParsePersons(bytes.NewReader(raw), rs)
}

// DevKeys is the dev keys file of testdata: raw (as a server or a load
// generator reads it), loaded (as the server authenticates with it), and
// each principal's key (fixmedins_code or bureau:admdvs), as a client
// would be given it.
func DevKeys(t testing.TB) ([]byte, *settlement.Keys, map[string]string) {
	t.Helper()
	raw, err := medsettle.DevKeys()
	require.NoError(t, err)
	keys, err := settlement.LoadKeys(bytes.NewReader(raw))
	require.NoError(t, err)
	of := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || strings.HasPrefix(line, "principal,") {
			continue
		}
		who, key, ok := strings.Cut(line, ",")
		require.True(t, ok, line)
		of[who] = key
	}
	require.NoError(t, sc.Err())
	return raw, keys, of
}

// env is one case's store and the persons it was seeded with.
type env struct {
	st      settlement.Store
	persons []settlement.Person
}

// update runs fn in a transaction that must commit.
func (e *env) update(t *testing.T, fn func(ctx context.Context, tx settlement.Tx)) {
	t.Helper()
	require.NoError(t, e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		fn(ctx, tx)
		return nil
	}))
}

// view runs fn in a read-only transaction that must succeed.
func (e *env) view(t *testing.T, fn func(ctx context.Context, tx settlement.Tx)) {
	t.Helper()
	require.NoError(t, e.st.View(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		fn(ctx, tx)
		return nil
	}))
}

// clearing is tx's clearing part.
func clearing(t *testing.T, tx settlement.Tx) settlement.ClearingStore {
	t.Helper()
	c, ok := tx.(settlement.ClearingStore)
	require.True(t, ok, "the store's transactions implement settlement.ClearingStore")
	return c
}

// at is a time at the counter: "2026-03-15 10:00:00".
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, rules.CST)
	require.NoError(t, err)
	return v
}

// errBoom is what a transaction's fn fails with to roll it back.
var errBoom = errors.New("boom")

func claimOnce(t *testing.T, e *env) {
	created := at(t, "2026-03-15 10:00:00.123456789")
	m := &settlement.Message{Msgid: "M1", Infno: "2207", Institution: "H1", Digest: "d1", Created: created}
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		prev, err := tx.ClaimMessage(ctx, m)
		require.NoError(t, err)
		require.Nil(t, prev, "the first claim takes the msgid")
		again, err := tx.ClaimMessage(ctx, &settlement.Message{Msgid: "M1", Infno: "2201", Institution: "H2"})
		require.NoError(t, err)
		require.NotNil(t, again, "a second claim in the same transaction finds the first")
		require.Equal(t, "H1", again.Institution)
	})
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		prev, err := tx.ClaimMessage(ctx, &settlement.Message{Msgid: "M1", Infno: "2201", Institution: "H2", Status: settlement.MessageDone})
		require.NoError(t, err)
		require.NotNil(t, prev)
		require.Equal(t, "2207", prev.Infno)
		require.Equal(t, "H1", prev.Institution)
		require.Equal(t, "d1", prev.Digest)
		require.Equal(t, settlement.MessageStatus("pending"), prev.Status, "a claim without status is in flight")
		require.Empty(t, prev.Answer)
		require.True(t, prev.Created.Equal(created.Truncate(time.Microsecond)), "created %v", prev.Created)
		got, err := tx.Message(ctx, "M1")
		require.NoError(t, err)
		require.Equal(t, prev.Msgid, got.Msgid)
		none, err := tx.Message(ctx, "M2")
		require.NoError(t, err)
		require.Nil(t, none)
	})
	// A claim in its final form (settleOnce) is stored as given.
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		prev, err := tx.ClaimMessage(ctx, &settlement.Message{Msgid: "M3", Infno: "2207", Institution: "H1",
			Status: settlement.MessageDone, Ref: "S1", Created: created})
		require.NoError(t, err)
		require.Nil(t, prev)
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		m, err := tx.Message(ctx, "M3")
		require.NoError(t, err)
		require.Equal(t, settlement.MessageDone, m.Status)
		require.Equal(t, "S1", m.Ref)
	})
}

func putMessage(t *testing.T, e *env) {
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		_, err := tx.ClaimMessage(ctx, &settlement.Message{Msgid: "M1", Infno: "2201", Institution: "H1", Digest: "d1"})
		require.NoError(t, err)
		require.NoError(t, tx.PutMessage(ctx, &settlement.Message{Msgid: "M1", Infno: "9999", Institution: "H9", Digest: "d9",
			Status: settlement.MessageDone, Ref: "V1", Answer: []byte(`{"a":1}`)}))
		require.NoError(t, tx.PutMessage(ctx, &settlement.Message{Msgid: "M2", Infno: "2601", Institution: "H1",
			Status: settlement.MessageReversed, Answer: []byte("null")}))
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		m, err := tx.Message(ctx, "M1")
		require.NoError(t, err)
		require.Equal(t, settlement.Message{Msgid: "M1", Infno: "2201", Institution: "H1", Digest: "d1",
			Status: settlement.MessageDone, Ref: "V1", Answer: []byte(`{"a":1}`), Created: m.Created}, *m)
		m, err = tx.Message(ctx, "M2")
		require.NoError(t, err)
		require.Equal(t, settlement.MessageReversed, m.Status)
		require.Equal(t, "null", string(m.Answer))
	})
}

// writeAll writes one of everything in tx, the way a settlement does.
func writeAll(t *testing.T, ctx context.Context, tx settlement.Tx, p settlement.Person) {
	t.Helper()
	_, err := tx.ClaimMessage(ctx, &settlement.Message{Msgid: "M1", Infno: "2207", Institution: "H1", Digest: "d"})
	require.NoError(t, err)
	require.NoError(t, tx.PutVisit(ctx, &settlement.Visit{MdtrtID: "V1", PsnNo: p.PsnNo, Institution: "H1",
		Kind: settlement.VisitOutpatient, Status: settlement.VisitOpen, Begin: at(t, "2026-03-15 09:00:00")}))
	require.NoError(t, tx.PutLines(ctx, []settlement.FeeLine{feeLine("V1", "1", "B1", at(t, "2026-03-15 09:10:00"))}))
	require.NoError(t, tx.PutCounters(ctx, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2026,
		Counters: rules.Counters{AcctBalc: p.OpeningBalc - 100, Admissions: 1}, OpeningBalc: p.OpeningBalc}))
	s := newSettlement("S1", p, "H1", at(t, "2026-03-15 10:00:00"))
	lt := sealed(t, ctx, tx, settlement.ChainOf(p.PsnNo), &s)
	require.NoError(t, tx.AppendLedger(ctx, lt, &settlement.Event{ID: "E1", Type: "settled", Key: p.PsnNo, Payload: []byte("{}")}))
	require.NoError(t, tx.PutSettlement(ctx, &s))
	require.NoError(t, clearing(t, tx).PutClearingRecord(ctx, &settlement.ClearingRecord{Period: "2026-03",
		Counterparty: "420000", Kind: settlement.TxnTopUp, Items: []byte("[]"), Created: at(t, "2026-04-01 00:00:00")}))
}

// requireNothing checks that nothing writeAll writes is in the store.
func requireNothing(t *testing.T, e *env, p settlement.Person) {
	t.Helper()
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		m, err := tx.Message(ctx, "M1")
		require.NoError(t, err)
		require.Nil(t, m, "the msgid claim is rolled back too: the same msgid may be tried again")
		v, err := tx.Visit(ctx, "V1")
		require.NoError(t, err)
		require.Nil(t, v)
		ls, err := tx.Lines(ctx, "V1")
		require.NoError(t, err)
		require.Empty(t, ls)
		yc, err := tx.Counters(ctx, p.PsnNo, 2026)
		require.NoError(t, err)
		require.Equal(t, rules.Counters{AcctBalc: p.OpeningBalc}, yc.Counters)
		s, err := tx.Settlement(ctx, "S1")
		require.NoError(t, err)
		require.Nil(t, s)
		h, err := tx.ChainHead(ctx, settlement.ChainOf(p.PsnNo))
		require.NoError(t, err)
		require.Zero(t, h)
		c := clearing(t, tx)
		r, err := c.ClearingRecord(ctx, "2026-03", "420000", settlement.TxnTopUp)
		require.NoError(t, err)
		require.Nil(t, r)
		bal, err := c.Balance(ctx, settlement.MedinsAccount("H1"))
		require.NoError(t, err)
		require.Zero(t, bal)
	})
}

func rollback(t *testing.T, e *env) {
	p := e.persons[0]
	err := e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		writeAll(t, ctx, tx, p)
		return fmt.Errorf("settling: %w", errBoom)
	})
	require.ErrorIs(t, err, errBoom, "Update returns fn's error")
	requireNothing(t, e, p)
	// The same writes then commit: nothing of the first attempt is in the way.
	e.update(t, func(ctx context.Context, tx settlement.Tx) { writeAll(t, ctx, tx, p) })
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		m, err := tx.Message(ctx, "M1")
		require.NoError(t, err)
		require.NotNil(t, m)
		bal, err := clearing(t, tx).Balance(ctx, settlement.MedinsAccount("H1"))
		require.NoError(t, err)
		require.Equal(t, rules.Money(-10000), bal)
	})
}

func refusedWrite(t *testing.T, e *env) {
	p := e.persons[0]
	err := e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		writeAll(t, ctx, tx, p)
		// A second settlement under the same setl_id is refused.
		s := newSettlement("S1", p, "H1", at(t, "2026-03-15 11:00:00"))
		if err := tx.PutSettlement(ctx, &s); err != nil {
			return err
		}
		// The refusal may surface only at the next statement or at commit.
		_, err := tx.Settlement(ctx, "S1")
		return err
	})
	require.Error(t, err)
	requireNothing(t, e, p)
}

func viewRefusesWrites(t *testing.T, e *env) {
	err := e.st.View(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		return tx.PutVisit(ctx, &settlement.Visit{MdtrtID: "V1", PsnNo: e.persons[0].PsnNo, Institution: "H1",
			Kind: settlement.VisitOutpatient, Status: settlement.VisitOpen, Begin: at(t, "2026-03-15 09:00:00")})
	})
	require.Error(t, err)
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		v, err := tx.Visit(ctx, "V1")
		require.NoError(t, err)
		require.Nil(t, v)
	})
}

func persons(t *testing.T, e *env) {
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		for _, want := range []settlement.Person{e.persons[0], e.persons[len(e.persons)-1]} {
			p, err := tx.Person(ctx, want.PsnNo)
			require.NoError(t, err)
			require.Equal(t, want, *p)
			byID, err := tx.PersonByCert(ctx, "02", want.Certno)
			require.NoError(t, err)
			require.Equal(t, want, *byID)
			byCard, err := tx.PersonByCert(ctx, "03", want.CardNo)
			require.NoError(t, err)
			require.Equal(t, want, *byCard)
		}
		for _, miss := range []func() (*settlement.Person, error){
			func() (*settlement.Person, error) { return tx.Person(ctx, "nobody") },
			func() (*settlement.Person, error) { return tx.PersonByCert(ctx, "02", "nobody") },
			func() (*settlement.Person, error) { return tx.PersonByCert(ctx, "03", e.persons[0].Certno) },
		} {
			p, err := miss()
			require.NoError(t, err)
			require.Nil(t, p)
		}
	})
}

func countersOpen(t *testing.T, e *env) {
	p := e.persons[0]
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		yc, err := tx.Counters(ctx, p.PsnNo, 2026)
		require.NoError(t, err)
		require.Equal(t, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2026, OpeningBalc: p.OpeningBalc,
			Counters: rules.Counters{AcctBalc: p.OpeningBalc}}, yc, "a year not on record opens with the registry's balance")
		yc, err = tx.Counters(ctx, "nobody", 2026)
		require.NoError(t, err)
		require.Equal(t, settlement.YearCounters{PsnNo: "nobody", Year: 2026}, yc)
	})
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		for _, yc := range []settlement.YearCounters{
			{PsnNo: p.PsnNo, Year: 2024, OpeningBalc: p.OpeningBalc, Counters: rules.Counters{AcctBalc: 500, BurdenYTD: 7}},
			{PsnNo: p.PsnNo, Year: 2025, OpeningBalc: 500, Counters: rules.Counters{AcctBalc: 300, FundPaidInpatient: 9, Admissions: 2}},
		} {
			require.NoError(t, tx.PutCounters(ctx, yc))
		}
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		yc, err := tx.Counters(ctx, p.PsnNo, 2027)
		require.NoError(t, err)
		require.Equal(t, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2027, OpeningBalc: 300,
			Counters: rules.Counters{AcctBalc: 300}}, yc, "a new year opens with the balance the last year on record closed with")
		yc, err = tx.Counters(ctx, p.PsnNo, 2023)
		require.NoError(t, err)
		require.Equal(t, rules.Counters{AcctBalc: p.OpeningBalc}, yc.Counters, "no earlier year: the registry's balance")
		yc, err = tx.Counters(ctx, p.PsnNo, 2025)
		require.NoError(t, err)
		require.Equal(t, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2025, OpeningBalc: 500,
			Counters: rules.Counters{AcctBalc: 300, FundPaidInpatient: 9, Admissions: 2}}, yc)
	})
}

func countersPut(t *testing.T, e *env) {
	p := e.persons[0]
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		require.NoError(t, tx.PutCounters(ctx, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2026, OpeningBalc: p.OpeningBalc,
			Counters: rules.Counters{AcctBalc: 100}}))
	})
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		require.NoError(t, tx.PutCounters(ctx, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2026, OpeningBalc: 1,
			Counters: rules.Counters{AcctBalc: 0, DedcUsedOutpatient: 12, DedcUsedChronic: 3, FundPaidOutpatient: 4,
				SuppPaidYTD: 5, MafPaidYTD: 6}}))
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		yc, err := tx.Counters(ctx, p.PsnNo, 2026)
		require.NoError(t, err)
		require.Equal(t, p.OpeningBalc, yc.OpeningBalc, "a year on record keeps the balance it opened with")
		require.Equal(t, rules.Counters{DedcUsedOutpatient: 12, DedcUsedChronic: 3, FundPaidOutpatient: 4,
			SuppPaidYTD: 5, MafPaidYTD: 6}, yc.Counters)
	})
	err := e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		if err := tx.PutCounters(ctx, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2026, Counters: rules.Counters{AcctBalc: -1}}); err != nil {
			return err
		}
		_, err := tx.Counters(ctx, p.PsnNo, 2026)
		return err
	})
	require.Error(t, err, "an account never goes below zero")
}

func visits(t *testing.T, e *env) {
	p := e.persons[0]
	begin := at(t, "2026-03-15 09:00:00.000001999")
	v := settlement.Visit{MdtrtID: "V1", PsnNo: p.PsnNo, Institution: "H1", Kind: settlement.VisitInpatient, MedType: "21",
		Insutype: "310", Begin: begin, IptOtpNo: "IP1", Status: settlement.VisitOpen, DiseCodg: "A01", DiseName: "a"}
	e.update(t, func(ctx context.Context, tx settlement.Tx) { require.NoError(t, tx.PutVisit(ctx, &v)) })
	end := at(t, "2026-03-20 12:00:00")
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		changed := settlement.Visit{MdtrtID: "V1", PsnNo: "other", Institution: "H2", Kind: settlement.VisitOutpatient, MedType: "22",
			Insutype: "390", Begin: end, End: end, IptOtpNo: "IP2", Status: settlement.VisitSettled, DiseCodg: "B02", DiseName: "b"}
		require.NoError(t, tx.PutVisit(ctx, &changed))
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		got, err := tx.Visit(ctx, "V1")
		require.NoError(t, err)
		require.True(t, got.Begin.Equal(begin.Truncate(time.Microsecond)), "times are kept to the microsecond: %v", got.Begin)
		require.True(t, got.End.Equal(end))
		got.Begin, got.End = time.Time{}, time.Time{}
		require.Equal(t, settlement.Visit{MdtrtID: "V1", PsnNo: p.PsnNo, Institution: "H1", Kind: settlement.VisitInpatient,
			MedType: "22", Insutype: "310", IptOtpNo: "IP1", Status: settlement.VisitSettled, DiseCodg: "B02", DiseName: "b"}, *got,
			"an update changes med_type, end, status and diagnosis only")
		none, err := tx.Visit(ctx, "V2")
		require.NoError(t, err)
		require.Nil(t, none)
	})
}

func feeLine(mdtrtID, sn, batch string, at time.Time) settlement.FeeLine {
	return settlement.FeeLine{MdtrtID: mdtrtID, SN: sn, ChrgBchno: batch, Code: "001101000010000", HospCode: "h" + sn,
		Cnt: "2", Pric: "50.5", Amount: 10100, FeeTime: at,
		Priced: rules.LineResult{SN: sn, Amount: 10100, Fulamt: 100, Over: 200, Pre: 300, Inscp: 9500, Level: "02",
			ListType: "service", HasCap: true, PriceCap: 6000, SelfpayProp: 1000}}
}

func lines(t *testing.T, e *env) {
	nine, ten := at(t, "2026-03-15 09:00:00"), at(t, "2026-03-15 10:00:00")
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		uncapped := feeLine("V1", "3", "B2", ten)
		uncapped.Priced.HasCap, uncapped.Priced.PriceCap = false, 0
		require.NoError(t, tx.PutLines(ctx, []settlement.FeeLine{feeLine("V1", "9", "B1", ten), feeLine("V1", "10", "B1", ten),
			feeLine("V1", "2", "B2", nine), uncapped, feeLine("V2", "1", "B1", nine)}))
	})
	sns := func(ls []settlement.FeeLine) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.SN)
		}
		return out
	}
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		ls, err := tx.Lines(ctx, "V1")
		require.NoError(t, err)
		require.Equal(t, []string{"2", "10", "3", "9"}, sns(ls), "by charge time, then feedetl_sn byte by byte")
		want := feeLine("V1", "2", "B2", nine)
		want.Cnt, want.Pric = "2.0000", "50.5000" // DECIMAL(18,4)
		require.True(t, ls[0].FeeTime.Equal(nine))
		ls[0].FeeTime = want.FeeTime
		require.Equal(t, want, ls[0])
		require.False(t, ls[2].Priced.HasCap)
	})
	dup := func(sn string) error {
		return e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
			if err := tx.PutLines(ctx, []settlement.FeeLine{feeLine("V1", sn, "B3", nine)}); err != nil {
				return err
			}
			_, err := tx.Lines(ctx, "V1")
			return err
		})
	}
	require.Error(t, dup("9"), "a feedetl_sn is unique within its visit")
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		n, err := tx.WithdrawBatch(ctx, "V1", "B1")
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = tx.WithdrawBatch(ctx, "V1", "B1")
		require.NoError(t, err)
		require.Zero(t, n, "withdrawn lines are withdrawn once")
		ls, err := tx.Lines(ctx, "V1")
		require.NoError(t, err)
		require.Equal(t, []string{"2", "3"}, sns(ls))
	})
	require.Error(t, dup("10"), "a withdrawn line keeps its feedetl_sn")
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		n, err := tx.WithdrawBatch(ctx, "V1", "")
		require.NoError(t, err)
		require.Equal(t, 2, n, "an empty batch withdraws every line left")
		ls, err := tx.Lines(ctx, "V1")
		require.NoError(t, err)
		require.Empty(t, ls)
		ls, err = tx.Lines(ctx, "V2")
		require.NoError(t, err)
		require.Equal(t, []string{"1"}, sns(ls), "another visit's lines stay")
	})
}

// concurrent has transactions read and write one counters row at once:
// serializable, none of their increments is lost.
func concurrent(t *testing.T, e *env) {
	p := e.persons[0]
	const workers, rounds = 6, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				errs <- e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
					if _, err := tx.ClaimMessage(ctx, &settlement.Message{Msgid: fmt.Sprintf("M%d-%d", w, r), Infno: "2207", Institution: "H1"}); err != nil {
						return err
					}
					yc, err := tx.Counters(ctx, p.PsnNo, 2026)
					if err != nil {
						return err
					}
					yc.Counters.Admissions++
					return tx.PutCounters(ctx, yc)
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		yc, err := tx.Counters(ctx, p.PsnNo, 2026)
		require.NoError(t, err)
		require.Equal(t, workers*rounds, yc.Counters.Admissions)
	})
}
