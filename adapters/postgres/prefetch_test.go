package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// What a transaction reads ahead (settlement.Prefetcher) is what the
// getters would have read, and a write of the transaction's own is never
// hidden by it: a getter after a write reads the write.
func TestPrefetchedReadsSeeTheTransactionsOwnWrites(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11", line("1", "001101000010000", "1", "30.00", "30.00"))
	reg, err := e.engine.RegisterVisit(ctx, newMsg(hohhotHospital, "2201"), settlement.VisitInput{PsnNo: hohhotEmployee,
		Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	fresh := reg.MdtrtID // no lines yet
	year := settlement.DateOf(e.clock.Now()).Year()
	chain := settlement.ChainOf(hohhotEmployee)

	// What the getters return without reading ahead.
	var want struct {
		visit, freshVisit *settlement.Visit
		lines, freshLines []settlement.FeeLine
		person            *settlement.Person
		counters          settlement.YearCounters
		head              settlement.ChainHead
	}
	require.NoError(t, e.store.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
		var err error
		want.visit, _ = tx.Visit(ctx, mdtrt)
		want.freshVisit, _ = tx.Visit(ctx, fresh)
		want.lines, _ = tx.Lines(ctx, mdtrt)
		want.freshLines, _ = tx.Lines(ctx, fresh)
		want.person, _ = tx.Person(ctx, hohhotEmployee)
		want.counters, _ = tx.Counters(ctx, hohhotEmployee, year)
		want.head, err = tx.ChainHead(ctx, chain)
		return err
	}))
	require.NotNil(t, want.visit)
	require.Len(t, want.lines, 1)
	require.Empty(t, want.freshLines)

	require.NoError(t, e.store.Update(ctx, func(ctx context.Context, tx settlement.Tx) error {
		p, ok := tx.(settlement.Prefetcher)
		require.True(t, ok, "the store reads ahead")
		p.Prefetch(settlement.Prefetch{Visit: mdtrt, Person: hohhotEmployee, Year: year, Chain: chain})
		p.Prefetch(settlement.Prefetch{Visit: fresh})
		p.Prefetch(settlement.Prefetch{Visit: "no-such-visit", Person: "no-such-person", Year: year, Chain: "psn:no-such-person"})

		// Read ahead: the same as read directly.
		v, err := tx.Visit(ctx, mdtrt)
		require.NoError(t, err)
		require.Equal(t, want.visit, v)
		lines, err := tx.Lines(ctx, mdtrt)
		require.NoError(t, err)
		require.Equal(t, want.lines, lines)
		fv, err := tx.Visit(ctx, fresh)
		require.NoError(t, err)
		require.Equal(t, want.freshVisit, fv)
		fl, err := tx.Lines(ctx, fresh)
		require.NoError(t, err)
		require.Empty(t, fl)
		person, err := tx.Person(ctx, hohhotEmployee)
		require.NoError(t, err)
		require.Equal(t, want.person, person)
		yc, err := tx.Counters(ctx, hohhotEmployee, year)
		require.NoError(t, err)
		require.Equal(t, want.counters, yc)
		head, err := tx.ChainHead(ctx, chain)
		require.NoError(t, err)
		require.Equal(t, want.head, head)
		nv, err := tx.Visit(ctx, "no-such-visit")
		require.NoError(t, err)
		require.Nil(t, nv)
		np, err := tx.Person(ctx, "no-such-person")
		require.NoError(t, err)
		require.Nil(t, np)

		// The person of a certificate, with the year's counters.
		p.Prefetch(settlement.Prefetch{CertType: "02", CertNo: want.person.Certno, Year: year})
		byCert, err := tx.PersonByCert(ctx, "02", want.person.Certno)
		require.NoError(t, err)
		require.Equal(t, want.person, byCert)
		yc2, err := tx.Counters(ctx, hohhotEmployee, year)
		require.NoError(t, err)
		require.Equal(t, want.counters, yc2)

		writesAfterReadAhead(ctx, t, e, tx, fresh, fv, yc, year, chain)
		return nil
	}))
}

// writesAfterReadAhead: read ahead again, then written, the getters of tx
// see the writes to the visit fresh (fv), its lines and the counters yc.
func writesAfterReadAhead(ctx context.Context, t *testing.T, e *env, tx settlement.Tx, fresh string, fv *settlement.Visit,
	yc settlement.YearCounters, year int, chain string) {
	p := tx.(settlement.Prefetcher)
	p.Prefetch(settlement.Prefetch{Visit: fresh, Person: hohhotEmployee, Year: year, Chain: chain})
	fv.MedType = "14"
	require.NoError(t, tx.PutVisit(ctx, fv))
	for range 2 { // the read ahead, sent after the write was queued, ran before it
		got, err := tx.Visit(ctx, fresh)
		require.NoError(t, err)
		require.Equal(t, "14", got.MedType)
	}
	require.NoError(t, tx.PutLines(ctx, []settlement.FeeLine{{MdtrtID: fresh, SN: "9", ChrgBchno: "B9",
		Code: "001101000010000", HospCode: "H", Cnt: "1", Pric: "5", Amount: 500, FeeTime: e.clock.Now(),
		Priced: rules.LineResult{SN: "9", Amount: 500, Level: "A", ListType: "201", Inscp: 500}}}))
	gotLines, err := tx.Lines(ctx, fresh)
	require.NoError(t, err)
	require.Len(t, gotLines, 1)
	yc.Counters.BurdenYTD += 100
	require.NoError(t, tx.PutCounters(ctx, yc))
	gotCounters, err := tx.Counters(ctx, hohhotEmployee, year)
	require.NoError(t, err)
	require.Equal(t, yc.Counters, gotCounters.Counters)
}

// A visit's lines come in the order they were charged, then by feedetl_sn,
// read ahead or not (the store sorts them, not the database).
func TestLinesComeInChargeOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	at := func(sn, hhmm string) settlement.LineInput {
		l := line(sn, "001101000010000", "1", "30.00", "30.00")
		l.FeeTime = day(t, "2026-03-15").Add(mustDuration(t, hhmm))
		return l
	}
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11",
		at("3", "10h00m"), at("10", "11h00m"), at("2", "10h00m"), at("1", "10h30m"))
	want := []string{"2", "3", "1", "10"}
	sns := func(lines []settlement.FeeLine) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = l.SN
		}
		return out
	}
	require.NoError(t, e.store.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
		lines, err := tx.Lines(ctx, mdtrt)
		require.Equal(t, want, sns(lines), "read directly")
		return err
	}))
	require.NoError(t, e.store.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
		tx.(settlement.Prefetcher).Prefetch(settlement.Prefetch{Visit: mdtrt})
		lines, err := tx.Lines(ctx, mdtrt)
		require.Equal(t, want, sns(lines), "read ahead")
		return err
	}))
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	require.NoError(t, err)
	return d
}
