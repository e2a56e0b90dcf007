package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// newSettlement is a local settlement of 100.00 at inst: 60.00 from the
// basic fund, 25.00 from the account, 15.00 in cash.
func newSettlement(id string, p settlement.Person, inst string, at time.Time) settlement.Settlement {
	return settlement.Settlement{SetlID: id, MdtrtID: "V-" + id, PsnNo: p.PsnNo, Institution: inst,
		InsuredRegion: p.InsuredRegion, TreatmentRegion: p.InsuredRegion, MedType: "11", Insutype: p.Insutype,
		SetlTime: at, Year: at.In(rules.CST).Year(), Status: settlement.Settled, Msgid: "M-" + id,
		Info: rules.Setlinfo{MedfeeSumamt: 10000, InscpScpAmt: 10000, HifpPay: 6000, PoolPropSelfpay: 2000,
			FundPaySumamt: 6000, PsnPartAmt: 4000, AcctPay: 2500, PsnCashPay: 1500, Balc: p.OpeningBalc - 2500},
		Detail: []rules.FundPayment{{FundPayType: "310100", FundPayamt: 6000, CrtPaybLmt: 6000}},
		Delta:  settlement.Delta{FundOutpatient: 6000, Acct: -2500}}
}

// sealed is s's ledger transaction as the next link of chain, with s
// pointing at it.
func sealed(t *testing.T, ctx context.Context, tx settlement.Tx, chain string, s *settlement.Settlement) *settlement.LedgerTxn {
	t.Helper()
	head, err := tx.ChainHead(ctx, chain)
	require.NoError(t, err)
	lt := &settlement.LedgerTxn{ID: "T-" + s.SetlID, Chain: chain, Kind: settlement.TxnSettle, SetlID: s.SetlID,
		Time: s.SetlTime, Entries: settlement.SettlementEntries(s)}
	lt.Seal(head.Seq, head.Hash)
	s.LedgerTxnID = lt.ID
	return lt
}

func settlementRoundTrip(t *testing.T, e *env) {
	p := e.persons[0]
	setlTime := at(t, "2026-03-15 10:00:00.0000015")
	s := newSettlement("S1", p, "H1", setlTime)
	s.Delta = settlement.Delta{DedcOutpatient: 1, DedcChronic: 2, FundOutpatient: 3, FundInpatient: 4, Burden: 5,
		Supp: 6, Maf: 7, Acct: -8, Admissions: 1}
	s.Info.OverlmtSelfpay, s.Info.PreselfpayAmt, s.Info.FulamtOwnpayAmt, s.Info.ActPayDedc = 1, 2, 3, 4
	s.Info.HifmiPay, s.Info.HifobPay, s.Info.MafPay = 5, 6, 7
	rev := newSettlement("S2", p, "H1", setlTime)
	rev.Reverses, rev.Role, rev.Detail = "S1", settlement.RoleInsured, []rules.FundPayment{}
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		require.NoError(t, tx.PutSettlement(ctx, &s))
		require.NoError(t, tx.PutSettlement(ctx, &rev))
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		got, err := tx.Settlement(ctx, "S1")
		require.NoError(t, err)
		require.True(t, got.SetlTime.Equal(setlTime.Truncate(time.Microsecond)), "setl_time %v", got.SetlTime)
		want := s
		want.SetlTime, got.SetlTime = time.Time{}, time.Time{}
		want.Role = settlement.RoleLocal // "" is stored as local
		require.Equal(t, want, *got)
		got, err = tx.Settlement(ctx, "S2")
		require.NoError(t, err)
		require.Equal(t, "S1", got.Reverses)
		require.Equal(t, settlement.RoleInsured, got.Role)
		require.Empty(t, got.Detail)
		none, err := tx.Settlement(ctx, "S3")
		require.NoError(t, err)
		require.Nil(t, none)
	})
}

func settlementStatus(t *testing.T, e *env) {
	s := newSettlement("S1", e.persons[0], "H1", at(t, "2026-03-15 10:00:00"))
	e.update(t, func(ctx context.Context, tx settlement.Tx) { require.NoError(t, tx.PutSettlement(ctx, &s)) })
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		require.NoError(t, tx.SetSettlementStatus(ctx, "S1", settlement.Cancelled))
		got, err := tx.Settlement(ctx, "S1")
		require.NoError(t, err)
		require.Equal(t, settlement.Cancelled, got.Status, "a transaction reads its own change")
		require.NoError(t, tx.SetSettlementStatus(ctx, "S9", settlement.Cancelled), "no such settlement: nothing to change")
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		got, err := tx.Settlement(ctx, "S1")
		require.NoError(t, err)
		require.Equal(t, settlement.Cancelled, got.Status)
		none, err := tx.Settlement(ctx, "S9")
		require.NoError(t, err)
		require.Nil(t, none, "the status change creates no settlement")
	})
}

func settlementsOf(t *testing.T, e *env) {
	p := e.persons[0]
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		for _, s := range []settlement.Settlement{
			newSettlement("S0", p, "H1", at(t, "2026-03-09 23:59:59.999999")), // the day before the period
			newSettlement("Sb", p, "H1", at(t, "2026-03-10 00:00:00")),        // its first instant
			newSettlement("Sa", p, "H1", at(t, "2026-03-10 00:00:00")),        // the same instant: by setl_id
			newSettlement("Sc", p, "H1", at(t, "2026-03-12 23:59:59.999999")), // its last instant
			newSettlement("Sd", p, "H1", at(t, "2026-03-13 00:00:00")),        // the day after
			newSettlement("Se", p, "H2", at(t, "2026-03-11 10:00:00")),        // another institution
		} {
			require.NoError(t, tx.PutSettlement(ctx, &s))
		}
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		ss, err := tx.SettlementsOf(ctx, settlement.PeriodQuery{Institution: "H1", From: 20260310, To: 20260312})
		require.NoError(t, err)
		var ids []string
		for _, s := range ss {
			ids = append(ids, s.SetlID)
		}
		require.Equal(t, []string{"Sa", "Sb", "Sc"}, ids, "the period's days at the counter, by time then setl_id")
		ss, err = tx.SettlementsOf(ctx, settlement.PeriodQuery{Institution: "H3", From: 20260101, To: 20261231})
		require.NoError(t, err)
		require.Empty(t, ss)
	})
}

func chainHead(t *testing.T, e *env) {
	p := e.persons[0]
	chain := settlement.ChainOf(p.PsnNo)
	var first, second *settlement.LedgerTxn
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		h, err := tx.ChainHead(ctx, chain)
		require.NoError(t, err)
		require.Zero(t, h, "a chain without transactions has the zero head")
		s := newSettlement("S1", p, "H1", at(t, "2026-03-15 10:00:00"))
		first = sealed(t, ctx, tx, chain, &s)
		require.Equal(t, int64(1), first.Seq)
		require.NoError(t, tx.AppendLedger(ctx, first, nil))
		h, err = tx.ChainHead(ctx, chain)
		require.NoError(t, err)
		require.Equal(t, settlement.ChainHead{Seq: 1, Hash: first.Hash}, h)
		s2 := newSettlement("S2", p, "H1", at(t, "2026-03-15 11:00:00"))
		second = sealed(t, ctx, tx, chain, &s2)
		require.NoError(t, tx.AppendLedger(ctx, second, &settlement.Event{ID: "E2", Type: "settled", Key: p.PsnNo, Payload: []byte("{}")}))
	})
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		h, err := tx.ChainHead(ctx, chain)
		require.NoError(t, err)
		require.Equal(t, settlement.ChainHead{Seq: 2, Hash: second.Hash}, h)
		bal, err := clearing(t, tx).Balance(ctx, settlement.MedinsAccount("H1"))
		require.NoError(t, err)
		require.Equal(t, rules.Money(-20000), bal)
		bal, err = clearing(t, tx).Balance(ctx, settlement.PersonAccount(p.PsnNo))
		require.NoError(t, err)
		require.Equal(t, rules.Money(5000), bal)
	})
	stale := func(seq int64, id string) error {
		return e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
			s := newSettlement(id, p, "H1", at(t, "2026-03-15 12:00:00"))
			lt := &settlement.LedgerTxn{ID: "T-" + id, Chain: chain, Kind: settlement.TxnSettle, SetlID: id,
				Time: s.SetlTime, Entries: settlement.SettlementEntries(&s)}
			lt.Seal(seq-1, second.Hash)
			if err := tx.AppendLedger(ctx, lt, nil); err != nil {
				return err
			}
			_, err := tx.ChainHead(ctx, chain)
			return err
		})
	}
	require.Error(t, stale(2, "S3"), "a transaction sealed on a stale head is refused")
	require.Error(t, stale(1, "S4"), "a chain starts once")
	require.Error(t, stale(4, "S5"), "no seq is skipped")
	require.NoError(t, stale(3, "S6"), "the head's next seq is taken")
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		h, err := tx.ChainHead(ctx, chain)
		require.NoError(t, err)
		require.Equal(t, int64(3), h.Seq)
		bal, err := clearing(t, tx).Balance(ctx, settlement.MedinsAccount("H1"))
		require.NoError(t, err)
		require.Equal(t, rules.Money(-30000), bal, "the refused appends left no entries")
	})
}

func zeroEntry(t *testing.T, e *env) {
	err := e.st.Update(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		lt := &settlement.LedgerTxn{ID: "T1", Chain: "psn:x", Kind: settlement.TxnSettle, SetlID: "S1",
			Time: at(t, "2026-03-15 10:00:00"), Entries: []settlement.Entry{{Account: "a", Amount: 0}, {Account: "b", Amount: 0}}}
		lt.Seal(0, "")
		if err := tx.AppendLedger(ctx, lt, nil); err != nil {
			return err
		}
		_, err := tx.ChainHead(ctx, "psn:x")
		return err
	})
	require.Error(t, err)
	e.view(t, func(ctx context.Context, tx settlement.Tx) {
		h, err := tx.ChainHead(ctx, "psn:x")
		require.NoError(t, err)
		require.Zero(t, h, "the refused append started no chain")
	})
}

// Auditor is a store that audits itself (both stores do).
type Auditor interface {
	Audit(ctx context.Context) (*settlement.AuditReport, error)
}

func auditClean(t *testing.T, e *env) {
	a, ok := e.st.(Auditor)
	if !ok {
		t.Skip("the store has no Audit")
	}
	p := e.persons[0]
	e.update(t, func(ctx context.Context, tx settlement.Tx) { writeAll(t, ctx, tx, p) })
	rep, err := a.Audit(context.Background())
	require.NoError(t, err)
	// writeAll's counters (balance -100 fen, one admission) are not what the
	// settlement's delta says: the audit names exactly that.
	require.Len(t, rep.Problems, 1, "%v", rep.Problems)
	require.Contains(t, rep.Problems[0], "counters of "+p.PsnNo+" for 2026")
	require.Equal(t, 1, rep.Chains)
	require.Equal(t, 1, rep.Txns)
	require.Equal(t, 4, rep.Entries)
	require.Equal(t, 1, rep.Settlements)
	require.Equal(t, 1, rep.Counters)
	e.update(t, func(ctx context.Context, tx settlement.Tx) {
		s := newSettlement("S1", p, "H1", at(t, "2026-03-15 10:00:00"))
		require.NoError(t, tx.PutCounters(ctx, settlement.YearCounters{PsnNo: p.PsnNo, Year: 2026,
			Counters: s.Delta.Apply(rules.Counters{AcctBalc: p.OpeningBalc})}))
	})
	rep, err = a.Audit(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
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
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, rules.CST)
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
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, rules.CST)
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
