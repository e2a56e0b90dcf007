package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/settlement"
)

// Each tampering with committed ledger rows, done with plain SQL as an
// insider with database access would, is caught by the audit, which names
// the row.
func TestAuditCatchesTampering(t *testing.T) {
	cases := []struct {
		name  string
		sql   []string
		names string // a fragment every report must contain
	}{
		{"amount changed", []string{
			`UPDATE ledger_entries SET amount = amount + 1 WHERE txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 2) AND ordinal = 0`,
		}, "seq 2"},
		{"entry deleted", []string{
			`DELETE FROM ledger_entries WHERE txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 1) AND ordinal = 1`,
		}, "seq 1"},
		{"two transactions swapped", []string{
			`UPDATE ledger_txns SET seq = 100 WHERE chain = $1 AND seq = 1`,
			`UPDATE ledger_txns SET seq = 1 WHERE chain = $1 AND seq = 2`,
			`UPDATE ledger_txns SET seq = 2 WHERE chain = $1 AND seq = 100`,
		}, "seq 1"},
		{"two entries swapped between transactions", []string{
			`UPDATE ledger_entries SET txn_id = 'x' WHERE txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 1) AND ordinal = 0`,
			`UPDATE ledger_entries SET txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 1) WHERE txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 2) AND ordinal = 0`,
			`UPDATE ledger_entries SET txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 2) WHERE txn_id = 'x'`,
		}, "seq"},
		{"last transaction deleted with its entries", []string{
			`DELETE FROM ledger_entries WHERE txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 3)`,
			`DELETE FROM ledger_txns WHERE chain = $1 AND seq = 3`,
		}, "head says seq 3"},
		{"settlement amount changed", []string{
			`UPDATE settlements SET hifp_pay = hifp_pay + 1, fund_pay_sumamt = fund_pay_sumamt + 1, psn_cash_pay = psn_cash_pay - 1
			 WHERE ledger_txn_id = (SELECT txn_id FROM ledger_txns WHERE chain = $1 AND seq = 1)`,
		}, "differ from its amounts"},
		{"counters changed", []string{
			`UPDATE person_counters SET fund_paid_outpatient = fund_paid_outpatient - 10 WHERE psn_no = '` + hohhotEmployee + `'`,
		}, "counters of " + hohhotEmployee},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11",
					line("1", "002302000010000", "2", "350.00", "700.00"), line("2", "001103000010000", "1", "80", "80.00"))
				_, err := e.engine.Settle(ctx, pgfixture.Msg(hohhotHospital, "2207"), settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee, UseAccount: true})
				require.NoError(t, err)
			}
			require.True(t, e.audit(t).OK())
			for _, q := range c.sql {
				args := []any{}
				if strings.Contains(q, "$1") {
					args = append(args, settlement.ChainOf(hohhotEmployee))
				}
				tag, err := e.store.Pool().Exec(ctx, q, args...)
				require.NoError(t, err, q)
				require.NotZero(t, tag.RowsAffected(), q)
			}
			rep := e.audit(t)
			require.False(t, rep.OK(), "tampering went unnoticed")
			require.Contains(t, strings.Join(rep.Problems, "\n"), c.names)
			t.Logf("%s: %s", c.name, rep.Problems[0])
		})
	}
}
