package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The engine's transactions send BEGIN with their first statements and
// COMMIT with their last writes (Store.pipelined). Whatever fails, at any
// point, nothing is written and the connection serves the next transaction
// cleanly: the pool has one connection, so every case reuses it.
func TestPipelinedTransactionsWriteAllOrNothing(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.NewDB(t)+"&pool_max_conns=1", quietLog())
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
	st, err := postgres.Open(ctx, pgtest.NewDB(t)+"&pool_max_conns=1", quietLog())
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
