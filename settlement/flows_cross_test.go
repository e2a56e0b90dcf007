package settlement_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
)

// hub is the national hub's core as these flows use it: it routes a claim
// to the insured person's province. newHub is the one place that names its
// package.
type hub interface {
	Register(province string, peer settlement.HubPeer)
	For(province string) settlement.Hub
}

func newHub(rs *rules.RuleSet) hub { return national.New(rs) }

// world is two provinces, each with its own store, joined by the hub.
type world struct {
	clock     *clock
	treatment province // 150000: Hohhot treats
	insured   province // 420000: Wuhan insures
}

func newWorld(t *testing.T) *world {
	t.Helper()
	rs, _ := ruleSet(t)
	c := newClock(time.Date(2026, 3, 15, 10, 0, 0, 0, cst))
	h := newHub(rs)
	open := func(prov string) province {
		p := newProvince(t, prov, c)
		p.engine.Hub = h.For(prov)
		p.engine.Reverser = &settlement.InlineReverser{Hub: p.engine.Hub, Backoff: time.Millisecond}
		h.Register(prov, p.engine)
		return p
	}
	return &world{clock: c, treatment: open("150000"), insured: open("420000")}
}

var crossLines = []settlement.LineInput{
	line("1", "B1", "002302000010000", "2", "380.00", "760.00"),
	line("2", "B1", "001103000010000", "1", "120.00", "120.00"),
}

// settle settles a new visit of the Wuhan resident at the Hohhot hospital.
func (w *world) settle(t *testing.T) settlement.SettleAnswer {
	t.Helper()
	mdtrt := w.treatment.visit(t, hohhotHospital, wuhanResident, crossLines...)
	got, err := w.treatment.engine.Settle(context.Background(), newMsg(hohhotHospital, "2207"),
		settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
	require.NoError(t, err)
	return got
}

// cancel cancels a settlement at the treatment side (2208).
func (w *world) cancel(t *testing.T, s settlement.SettleAnswer) settlement.SettleAnswer {
	t.Helper()
	rev, err := w.treatment.engine.Cancel(context.Background(), newMsg(hohhotHospital, "2208"),
		settlement.CancelInput{SetlID: s.SetlID, MdtrtID: s.MdtrtID, PsnNo: s.PsnNo})
	require.NoError(t, err)
	return rev
}

// owed is what the insured province owes the treatment province for s.
func owed(s settlement.SettleAnswer) rules.Money { return s.Info.FundPaySumamt + s.Info.AcctPay }

func TestFlowCrossProvince(t *testing.T) {
	w := newWorld(t)
	who := w.insured.person(t, wuhanResident)
	got := w.settle(t)

	want := price(t, who, hohhotHospital, 20260315, false, rules.Counters{AcctBalc: who.OpeningBalc}, crossLines...)
	require.Equal(t, want.Setlinfo, got.Info, "the insured province prices with its policy")
	require.Equal(t, who.InsuredRegion, got.ClrOptins)
	require.Equal(t, want.After, w.insured.counters(t, wuhanResident), "the insured province keeps the counters")
	require.Equal(t, rules.Counters{AcctBalc: who.OpeningBalc}, w.treatment.counters(t, wuhanResident),
		"the treatment province's copy of the person is untouched")

	// Each side's ledger balances on its own; the receivable is the payable.
	i := got.Info
	require.Equal(t, map[string]rules.Money{
		settlement.ClearingAccount("420000"):      owed(got),
		settlement.CashAccount(hohhotHospital):    i.PsnCashPay,
		settlement.MedinsAccount(hohhotHospital):  -i.MedfeeSumamt,
		settlement.FundAccount("150100", "basic"): 0,
	}, w.treatment.balances(t, settlement.ClearingAccount("420000"), settlement.CashAccount(hohhotHospital),
		settlement.MedinsAccount(hohhotHospital), settlement.FundAccount("150100", "basic")))
	insuredWant := localBalances(who.InsuredRegion, wuhanResident, hohhotHospital, i)
	delete(insuredWant, settlement.CashAccount(hohhotHospital))
	delete(insuredWant, settlement.MedinsAccount(hohhotHospital))
	insuredWant[settlement.ClearingAccount("150000")] = -owed(got)
	accounts := make([]string, 0, len(insuredWant))
	for a := range insuredWant {
		accounts = append(accounts, a)
	}
	require.Equal(t, insuredWant, w.insured.balances(t, accounts...))
	w.treatment.audited(t, 1, 1)
	w.insured.audited(t, 1, 1)

	// A cancellation at the counter reverses both sides.
	rev := w.cancel(t, got)
	require.Equal(t, got.SetlID, rev.Reverses)
	require.Equal(t, -i.MedfeeSumamt, rev.Info.MedfeeSumamt)
	require.Equal(t, rules.Counters{AcctBalc: who.OpeningBalc}, w.insured.counters(t, wuhanResident))
	for _, p := range []province{w.treatment, w.insured} {
		for a, b := range p.balances(t, append(accounts, settlement.ClearingAccount("420000"),
			settlement.MedinsAccount(hohhotHospital))...) {
			require.Zero(t, b, "account %s after the cancellation", a)
		}
		p.audited(t, 2, 2)
	}
	w.insured.verifyChain(t, settlement.ChainOf(wuhanResident), 2)
	w.treatment.verifyChain(t, settlement.ChainOf(wuhanResident), 2)
}

// The monthly clearing in the order of workflows.ClearingWorkflow: the
// treatment province's statements, the insured province's confirmation,
// its payment out of the advance fund, the receipt, the top-up.
func TestFlowClearing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	kept := w.settle(t)
	w.cancel(t, w.settle(t)) // a settlement and its reversal: two items that cancel out
	total := owed(kept)
	require.NotZero(t, total)

	w.clock.Set(time.Date(2026, 4, 2, 10, 0, 0, 0, cst))
	ins, trt := w.insured.engine, w.treatment.engine
	require.NoError(t, ins.FundAdvance(ctx, "2026-02", "150000", total))
	require.NoError(t, ins.FundAdvance(ctx, "2026-02", "150000", total), "an advance is posted once per period")

	sts, err := trt.Statements(ctx, "2026-03")
	require.NoError(t, err)
	require.Len(t, sts, 1)
	st := sts[0]
	require.Equal(t, "150000", st.Treatment)
	require.Equal(t, "420000", st.Insured)
	require.Len(t, st.Items, 3)
	require.Equal(t, total, st.Total)

	verdicts, err := ins.Confirm(ctx, st)
	require.NoError(t, err)
	for _, v := range verdicts {
		require.True(t, v.Confirmed, "%+v", v)
	}
	tampered := st
	tampered.Items = append([]settlement.ClearingItem(nil), st.Items...)
	tampered.Items[0].Amount++
	disputed, err := ins.Confirm(ctx, tampered)
	require.NoError(t, err)
	require.False(t, disputed[0].Confirmed)
	require.Contains(t, disputed[0].Reason, "amount differs")

	for range 2 { // a retried activity posts nothing twice
		paid, err := ins.PostPayment(ctx, st, verdicts)
		require.NoError(t, err)
		require.Equal(t, total, paid)
		received, err := trt.PostReceipt(ctx, st, verdicts)
		require.NoError(t, err)
		require.Equal(t, total, received)
	}
	require.Equal(t, map[string]rules.Money{settlement.ClearingAccount("150000"): 0, settlement.AdvanceAccount("150000"): 0,
		settlement.TreasuryAccount: -total}, w.insured.balances(t, settlement.ClearingAccount("150000"),
		settlement.AdvanceAccount("150000"), settlement.TreasuryAccount), "the payable closed out of the advance")
	require.Equal(t, map[string]rules.Money{settlement.ClearingAccount("420000"): 0, settlement.ReceivedAccount("420000"): total},
		w.treatment.balances(t, settlement.ClearingAccount("420000"), settlement.ReceivedAccount("420000")), "the receivable closed")
	sts, err = trt.Statements(ctx, "2026-04")
	require.NoError(t, err)
	require.Empty(t, sts, "cleared items are not claimed again")

	// The advance is empty, below half the monthly average: refilled to one month's average.
	topUp, err := ins.TopUp(ctx, "2026-03", "150000", 5000)
	require.NoError(t, err)
	require.Equal(t, total, topUp)
	again, err := ins.TopUp(ctx, "2026-03", "150000", 5000)
	require.NoError(t, err)
	require.Equal(t, total, again)
	require.Equal(t, map[string]rules.Money{settlement.AdvanceAccount("150000"): total, settlement.TreasuryAccount: -2 * total},
		w.insured.balances(t, settlement.AdvanceAccount("150000"), settlement.TreasuryAccount))

	w.treatment.audited(t, 3, 4) // three settlements, and the receipt
	w.insured.audited(t, 3, 6)   // three settlements, the advance, the payment and the top-up
}
