package postgres

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
)

// The partial indexes of migration 0007 serve only queries that state their
// predicates: each query here must be able to use its index (sequential
// scans are switched off, so a plan without the index means the planner
// could not prove the index applies).
func TestPartialIndexesServeTheirQueries(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, pgtest.NewDB(t), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	conn, err := st.Pool().Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET enable_seqscan = off`)
	require.NoError(t, err)

	for _, c := range []struct {
		name, sql, index string
		args             []any
	}{
		{"balance of an advance account", balanceSQL("advance:420000"), "ledger_entries_interprovince", []any{"advance:420000"}},
		{"balance of a clearing account", balanceSQL("clearing:150000"), "ledger_entries_interprovince", []any{"clearing:150000"}},
		{"uncleared settlements of a role", `SELECT setl_id FROM settlements ` + unclearedWhere,
			"settlements_uncleared_remote", []any{"treatment", time.Now()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := conn.Query(ctx, `EXPLAIN `+c.sql, c.args...)
			require.NoError(t, err)
			var plan []string
			for rows.Next() {
				var line string
				require.NoError(t, rows.Scan(&line))
				plan = append(plan, line)
			}
			require.NoError(t, rows.Err())
			require.Contains(t, strings.Join(plan, "\n"), c.index)
		})
	}
}
