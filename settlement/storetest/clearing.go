package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

func clearingCases() []testCase {
	return []testCase{
		{"Uncleared selects a role's open items before a time", uncleared},
		{"MarkCleared marks open items only", markCleared},
		{"a clearing posting is made once per period, counterparty and kind", clearingRecords},
	}
}

// crossSettlements stores settlements of both cross-province roles and a
// local one, in March and April.
func crossSettlements(t *testing.T, e *env) {
	p := e.persons[0]
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		for _, c := range []struct {
			id   string
			role settlement.Role
			at   string
		}{
			{"Tb", settlement.RoleTreatment, "2026-03-20 10:00:00"},
			{"Ta", settlement.RoleTreatment, "2026-03-05 10:00:00"},
			{"Tc", settlement.RoleTreatment, "2026-04-01 00:00:00"}, // the first instant after March
			{"Ia", settlement.RoleInsured, "2026-03-06 10:00:00"},
			{"La", settlement.RoleLocal, "2026-03-07 10:00:00"},
			{"Lb", "", "2026-03-08 10:00:00"},
		} {
			s := newSettlement(c.id, p, "H1", at(t, c.at))
			s.Role = c.role
			require.NoError(t, tx.PutSettlement(ctx, &s))
		}
	})
}

func ids(ss []settlement.Settlement) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.SetlID)
	}
	return out
}

func uncleared(t *testing.T, e *env) {
	crossSettlements(t, e)
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, cst)
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		c := clearing(t, tx)
		ss, err := c.Uncleared(ctx, settlement.RoleTreatment, april)
		require.NoError(t, err)
		require.Equal(t, []string{"Ta", "Tb"}, ids(ss), "settled before the bound, by time")
		ss, err = c.Uncleared(ctx, settlement.RoleTreatment, april.Add(time.Microsecond))
		require.NoError(t, err)
		require.Equal(t, []string{"Ta", "Tb", "Tc"}, ids(ss))
		ss, err = c.Uncleared(ctx, settlement.RoleInsured, april)
		require.NoError(t, err)
		require.Equal(t, []string{"Ia"}, ids(ss))
		ss, err = c.Uncleared(ctx, settlement.RoleLocal, april)
		require.NoError(t, err)
		require.Empty(t, ss, "local settlements are never cleared")
	})
}

func markCleared(t *testing.T, e *env) {
	crossSettlements(t, e)
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, cst)
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		c := clearing(t, tx)
		require.NoError(t, c.MarkCleared(ctx, nil, "2026-03"), "nothing to mark")
		require.NoError(t, c.MarkCleared(ctx, []string{"Ta", "Ia"}, "2026-03"))
		ss, err := c.Uncleared(ctx, settlement.RoleTreatment, april)
		require.NoError(t, err)
		require.Equal(t, []string{"Tb"}, ids(ss), "a transaction reads its own marks")
	})
	for _, again := range [][]string{{"Ta"}, {"Tb", "Ta"}, {"Tb", "nosuch"}, {"Tb", "Tb"}} {
		err := e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
			c := clearing(t, tx)
			if err := c.MarkCleared(ctx, again, "2026-04"); err != nil {
				return err
			}
			_, err := c.Uncleared(ctx, settlement.RoleTreatment, april)
			return err
		})
		require.Error(t, err, "marking %v: every one must be open", again)
	}
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		ss, err := clearing(t, tx).Uncleared(ctx, settlement.RoleTreatment, april)
		require.NoError(t, err)
		require.Equal(t, []string{"Tb"}, ids(ss), "a refused mark marks none")
		ss, err = clearing(t, tx).Uncleared(ctx, settlement.RoleInsured, april)
		require.NoError(t, err)
		require.Empty(t, ss)
	})
}

func clearingRecords(t *testing.T, e *env) {
	created := at(t, "2026-04-01 02:00:00.0000009")
	recs := []settlement.ClearingRecord{
		{Period: "2026-04", Counterparty: "420000", Kind: settlement.TxnClearPay, Total: 2000, Items: []byte(`[{"x":2}]`), LedgerTxnID: "T2", Created: created},
		{Period: "2026-03", Counterparty: "420000", Kind: settlement.TxnClearPay, Total: 1000, Items: []byte(`[{"x":1}]`), LedgerTxnID: "T1", Created: created},
		{Period: "2026-03", Counterparty: "420000", Kind: settlement.TxnTopUp, Total: 0, Items: []byte("[]"), Created: created},
		{Period: "2026-03", Counterparty: "430000", Kind: settlement.TxnClearPay, Total: 5, Items: []byte("[]"), Created: created},
	}
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		for i := range recs {
			require.NoError(t, clearing(t, tx).PutClearingRecord(ctx, &recs[i]))
		}
	})
	err := e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		c := clearing(t, tx)
		if err := c.PutClearingRecord(ctx, &settlement.ClearingRecord{Period: "2026-03", Counterparty: "420000",
			Kind: settlement.TxnClearPay, Items: []byte("[]"), Created: created}); err != nil {
			return err
		}
		_, err := c.ClearingRecord(ctx, "2026-03", "420000", settlement.TxnClearPay)
		return err
	})
	require.Error(t, err, "a posting is made once")
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		c := clearing(t, tx)
		r, err := c.ClearingRecord(ctx, "2026-03", "420000", settlement.TxnClearPay)
		require.NoError(t, err)
		require.True(t, r.Created.Equal(created.Truncate(time.Microsecond)))
		r.Created = created
		require.Equal(t, recs[1], *r)
		none, err := c.ClearingRecord(ctx, "2026-05", "420000", settlement.TxnClearPay)
		require.NoError(t, err)
		require.Nil(t, none)
		all, err := c.ClearingRecords(ctx, "420000", settlement.TxnClearPay)
		require.NoError(t, err)
		require.Len(t, all, 2)
		var periods []settlement.Period
		var totals []rules.Money
		for _, r := range all {
			periods, totals = append(periods, r.Period), append(totals, r.Total)
			require.Empty(t, r.Items, "the list carries no items")
			require.Equal(t, "420000", r.Counterparty)
			require.Equal(t, settlement.TxnClearPay, r.Kind)
		}
		require.Equal(t, []settlement.Period{"2026-03", "2026-04"}, periods, "oldest first")
		require.Equal(t, []rules.Money{1000, 2000}, totals)
		require.Equal(t, []string{"T1", "T2"}, []string{all[0].LedgerTxnID, all[1].LedgerTxnID})
	})
}
