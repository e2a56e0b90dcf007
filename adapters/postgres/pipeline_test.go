package postgres_test

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// The engine's transactions send BEGIN with their first statements and
// COMMIT with their last writes (Store.pipelined). Whatever fails, at any
// point, nothing is written and the connection serves the next transaction
// cleanly: the pool has one connection, so every case reuses it.
func TestPipelinedTransactionsWriteAllOrNothing(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.NewDB(t)+"&pool_max_conns=1", pgfixture.Quiet())
	require.NoError(t, err)
	t.Cleanup(st.Close)

	const psn = "15010019700101ZZ01"
	counters := func(acct rules.Money) settlement.YearCounters {
		return settlement.YearCounters{PsnNo: psn, Year: 2026, Counters: rules.Counters{AcctBalc: acct}}
	}
	stored := func() (settlement.YearCounters, bool) {
		var yc settlement.YearCounters
		var ok bool
		require.NoError(t, st.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
			// A year with no row opens at the registry's balance (0 for an unknown person).
			var err error
			yc, err = tx.Counters(ctx, psn, 2026)
			ok = yc.Counters.AcctBalc != 0
			return err
		}))
		return yc, ok
	}
	refused := errors.New("refused by the engine")

	cases := []struct {
		name string
		fn   func(ctx context.Context, tx settlement.Tx) error
		want string // in the error
	}{
		{"the engine refuses after queuing a write", func(ctx context.Context, tx settlement.Tx) error {
			require.NoError(t, tx.PutCounters(ctx, counters(100)))
			return refused
		}, "refused by the engine"},
		{"the engine refuses after a read sent the queued write", func(ctx context.Context, tx settlement.Tx) error {
			require.NoError(t, tx.PutCounters(ctx, counters(100)))
			if _, err := tx.Person(ctx, psn); err != nil {
				return err
			}
			return refused
		}, "refused by the engine"},
		{"the server refuses a write sent with COMMIT", func(ctx context.Context, tx settlement.Tx) error {
			require.NoError(t, tx.PutCounters(ctx, counters(100)))
			return tx.PutCounters(ctx, settlement.YearCounters{PsnNo: "other", Year: 2026, Counters: rules.Counters{AcctBalc: -1}})
		}, "acct_balc"},
		{"a write fails in the batch that carries reads ahead", func(ctx context.Context, tx settlement.Tx) error {
			require.NoError(t, tx.PutCounters(ctx, settlement.YearCounters{PsnNo: "other", Year: 2026, Counters: rules.Counters{AcctBalc: -1}}))
			tx.(settlement.Prefetcher).Prefetch(settlement.Prefetch{Visit: "M1", Person: psn, Year: 2026, Chain: "psn:" + psn})
			_, err := tx.Visit(ctx, "M1") // the write's error, not "current transaction is aborted"
			return err
		}, "acct_balc"},
		{"an update that must change one row changes none, in the COMMIT batch", func(ctx context.Context, tx settlement.Tx) error {
			require.NoError(t, tx.PutCounters(ctx, counters(100)))
			lt := &settlement.LedgerTxn{ID: settlement.NewID("T"), Chain: "psn:nobody", Kind: settlement.TxnSettle}
			lt.Seal(4, "") // the chain has no head at seq 4
			return tx.AppendLedger(ctx, lt, nil)
		}, "advancing chain psn:nobody past seq 4: no such row"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := st.Update(ctx, c.fn)
			require.ErrorContains(t, err, c.want)
			_, ok := stored()
			require.False(t, ok, "nothing of a failed transaction is written")
		})
	}

	// The same connection commits the next transaction, and COMMIT's success is real.
	require.NoError(t, st.Update(ctx, func(ctx context.Context, tx settlement.Tx) error {
		return tx.PutCounters(ctx, counters(100))
	}))
	yc, ok := stored()
	require.True(t, ok)
	require.Equal(t, rules.Money(100), yc.Counters.AcctBalc)

	// A transaction that sends nothing has nothing to commit.
	require.NoError(t, st.Update(ctx, func(context.Context, settlement.Tx) error { return nil }))

	checkGroupedUpdates(ctx, t, st, psn, stored)
}

// checkGroupedUpdates: one-row updates queued one after another travel as
// one statement (the counters found by this transaction, then a chain
// head): they are written together, or, when one of them finds no row,
// neither is.
func checkGroupedUpdates(ctx context.Context, t *testing.T, st *postgres.Store, psn string, stored func() (settlement.YearCounters, bool)) {
	appendTo := func(chain string, seq int64) func(ctx context.Context, tx settlement.Tx) error {
		return func(ctx context.Context, tx settlement.Tx) error {
			yc, err := tx.Counters(ctx, psn, 2026)
			if err != nil {
				return err
			}
			yc.Counters.AcctBalc += 100
			require.NoError(t, tx.PutCounters(ctx, yc))
			lt := &settlement.LedgerTxn{ID: settlement.NewID("T"), Chain: chain, Kind: settlement.TxnSettle}
			lt.Seal(seq-1, "")
			return tx.AppendLedger(ctx, lt, nil)
		}
	}
	require.NoError(t, st.Update(ctx, appendTo("psn:"+psn, 1))) // starts the chain: an insert, apart
	require.NoError(t, st.Update(ctx, appendTo("psn:"+psn, 2))) // both updates, together
	err := st.Update(ctx, appendTo("psn:nobody", 5))
	require.ErrorContains(t, err, "storing counters of "+psn+" for 2026; advancing chain psn:nobody past seq 4: one of them found no such row")
	yc, _ := stored()
	require.Equal(t, rules.Money(300), yc.Counters.AcctBalc, "the counters' update went with the failed chain's")
	require.NoError(t, st.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
		head, err := tx.ChainHead(ctx, "psn:"+psn)
		require.Equal(t, int64(2), head.Seq)
		return err
	}))
}

// A failed transaction leaves the connection's prepared statements alone:
// the retry that follows a serialization failure runs them as they are, not
// after deallocating and preparing them again (pgx drops the statements of
// a failed batch from its own cache; see prepared).
func TestFailedTransactionKeepsStatementsPrepared(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.NewDB(t)+"&pool_max_conns=1", pgfixture.Quiet())
	require.NoError(t, err)
	t.Cleanup(st.Close)

	put := func(psn string, acct rules.Money) error {
		return st.Update(ctx, func(ctx context.Context, tx settlement.Tx) error {
			return tx.PutCounters(ctx, settlement.YearCounters{PsnNo: psn, Year: 2026, Counters: rules.Counters{AcctBalc: acct}})
		})
	}
	// When the counters statement was prepared on the pool's one connection.
	preparedAt := func() []time.Time {
		conn, err := st.Pool().Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		rows, err := conn.Query(ctx, `SELECT prepare_time FROM pg_prepared_statements WHERE statement LIKE '%person_counters%'`)
		require.NoError(t, err)
		times, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		require.NoError(t, err)
		return times
	}

	require.NoError(t, put("15010019700101ZZ01", 100))
	before := preparedAt()
	require.NotEmpty(t, before)
	require.ErrorContains(t, put("15010019700101ZZ02", -1), "acct_balc") // the batch fails on the server
	require.NoError(t, put("15010019700101ZZ03", 100))
	require.Equal(t, before, preparedAt(), "the same statements, prepared once")
}

// A settlement updates three rows in place: its visit, the person's counters
// of the year and the person's chain head. Those updates must be HOT (no new
// index entries; migration 0008) even when the rows were inserted densely,
// as they are when visits are registered and persons first settle: an update
// that leaves its page adds an entry to every index of the table, and under
// SERIALIZABLE those entries collide with the index pages concurrent
// settlements have read. (Without 0008, 87-95% of them were HOT here, and
// 300 settlements took 301-313 updates of a table: retries.)
func TestSettlementUpdatesAreHOT(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	rs := storetest.Rules(t)
	persons := syntheticPersons(t, rs, 300)
	byRegion, all := hospitalsByRegion(rs)
	who := make([]*settlement.Person, len(persons))
	for i := range persons {
		who[i] = &persons[i]
	}
	ids := &msgids{}
	r := rand.New(rand.NewPCG(3, 4))

	// round settles one visit for each person with a store of its own, and
	// closes it: a backend reports its table statistics when it exits. It
	// settles one at a time: the room fillfactor leaves holds part of a
	// page's new versions, the rest fit once the old ones are pruned, and a
	// concurrent transaction's snapshot can delay that pruning (under load
	// a few of 300 updates then leave the page), which would make the
	// count depend on timing rather than on the pages.
	round := func(seed bool) {
		st, err := postgres.Open(ctx, dsn, pgfixture.Quiet())
		require.NoError(t, err)
		defer st.Close()
		if seed {
			require.NoError(t, st.SeedPersons(ctx, persons))
		}
		eng := &settlement.Engine{Rules: rs, Store: st, Now: newTickClock().Now}
		require.NoError(t, settleAll(eng, ids, prepareVisits(t, eng, ids, r, who, byRegion, all), 1))
	}
	type updates struct{ all, hot int64 }
	stats := func() map[string]updates {
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
			WHERE relname IN ('visits', 'person_counters', 'chain_heads')`)
		require.NoError(t, err)
		out := map[string]updates{}
		for rows.Next() {
			var name string
			var u updates
			require.NoError(t, rows.Scan(&name, &u.all, &u.hot))
			out[name] = u
		}
		require.NoError(t, rows.Err())
		return out
	}
	// settled waits until the exited backends' statistics show at least n
	// more visit updates than before and have stopped changing.
	settled := func(before map[string]updates, n int64) map[string]updates {
		var last map[string]updates
		require.Eventually(t, func() bool {
			now := stats()
			stable := maps.Equal(now, last)
			last = now
			return stable && now["visits"].all-before["visits"].all >= n
		}, 10*time.Second, 200*time.Millisecond)
		return last
	}

	round(true) // the counters and chain heads are inserted: the persons' first settlements
	before := settled(map[string]updates{}, int64(len(persons)))
	round(false) // every row updated again
	after := settled(before, int64(len(persons)))
	for _, table := range []string{"visits", "person_counters", "chain_heads"} {
		all, hot := after[table].all-before[table].all, after[table].hot-before[table].hot
		require.GreaterOrEqual(t, all, int64(len(persons)), table)
		require.GreaterOrEqual(t, float64(hot)/float64(all), 0.99, "%s: %d of %d updates HOT", table, hot, all)
	}
}

// What a transaction reads ahead (settlement.Prefetcher) is what the
// getters would have read, and a write of the transaction's own is never
// hidden by it: a getter after a write reads the write.
func TestPrefetchedReadsSeeTheTransactionsOwnWrites(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11", line("1", "001101000010000", "1", "30.00", "30.00"))
	reg, err := e.engine.RegisterVisit(ctx, pgfixture.Msg(hohhotHospital, "2201"), settlement.VisitInput{PsnNo: hohhotEmployee,
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
