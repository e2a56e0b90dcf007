package settlement_test

// The engine's flows with no database: every store is the in-memory one
// (adapters/memory), which passes the same contract suite as the
// PostgreSQL store (settlement/storetest). Each flow checks the money: the
// amounts against the pure pricing function, the counters, the ledger
// balances, and a clean audit.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/memory"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
	"github.com/medsettle/medsettle/settlement/storetest"
)

const (
	hohhotEmployee = "15010000000000000001" // employee (310) of Hohhot, account 4882.69
	hohhotHospital = "H15010000011"         // level 3, region 150100
	wuhanResident  = "42010000000000000044" // resident (390) insured in Wuhan (Hubei, 420000)
)

var cst = rules.CST

// clock is a settable time source (engines read it concurrently with the hub's goroutines).
type clock struct{ t atomic.Pointer[time.Time] }

func newClock(at time.Time) *clock { c := &clock{}; c.Set(at); return c }
func (c *clock) Now() time.Time    { return *c.t.Load() }
func (c *clock) Set(t time.Time)   { c.t.Store(&t) }

// province is one deployment: an engine over its own in-memory store.
type province struct {
	engine *settlement.Engine
	store  *memory.Store
}

var loaded struct {
	rules   *rules.RuleSet
	persons []settlement.Person
}

func ruleSet(t *testing.T) (*rules.RuleSet, []settlement.Person) {
	t.Helper()
	if loaded.rules == nil {
		rs, err := rules.Load(medsettle.Rules())
		require.NoError(t, err)
		loaded.rules, loaded.persons = rs, storetest.Persons(t)
	}
	return loaded.rules, loaded.persons
}

// newProvince is a deployment of prov ("" serves every region) on c's time.
func newProvince(t *testing.T, prov string, c *clock) province {
	t.Helper()
	rs, persons := ruleSet(t)
	st, err := memory.New(persons)
	require.NoError(t, err)
	return province{engine: &settlement.Engine{Rules: rs, Store: st, Province: prov, Now: c.Now}, store: st}
}

var msgSeq atomic.Int64

func newMsg(inst, infno string) settlement.Msg {
	n := msgSeq.Add(1)
	return settlement.Msg{ID: fmt.Sprintf("%s20260315%010d", inst, n), Infno: infno, Institution: inst, Digest: fmt.Sprint("d", n)}
}

func line(sn, batch, code, cnt, pric, amount string) settlement.LineInput {
	return settlement.LineInput{SN: sn, ChrgBchno: batch, Code: code, Cnt: cnt, Pric: pric, Amount: amount}
}

// visit registers an outpatient visit of psn at inst and uploads lines.
func (p province) visit(t *testing.T, inst, psn string, lines ...settlement.LineInput) string {
	t.Helper()
	ctx := context.Background()
	v, err := p.engine.RegisterVisit(ctx, newMsg(inst, "2201"), settlement.VisitInput{PsnNo: psn, Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = p.engine.UploadLines(ctx, newMsg(inst, "2204"), v.MdtrtID, psn, lines)
	require.NoError(t, err)
	return v.MdtrtID
}

// person reads a registry person.
func (p province) person(t *testing.T, psn string) settlement.Person {
	t.Helper()
	var out settlement.Person
	require.NoError(t, p.store.View(context.Background(), func(ctx context.Context, tx settlement.Tx) error {
		got, err := tx.Person(ctx, psn)
		if got != nil {
			out = *got
		}
		return err
	}))
	require.NotEmpty(t, out.PsnNo, "psn_no %s", psn)
	return out
}

// price is what the pure pricing function makes of a claim of person at
// inst on the clock's day, with counters state.
func price(t *testing.T, p settlement.Person, inst string, day rules.Date, useAccount bool, state rules.Counters,
	lines ...settlement.LineInput) *rules.Result {
	t.Helper()
	rs, _ := ruleSet(t)
	in := rs.Institutions[inst]
	require.NotNil(t, in)
	c := &rules.Claim{InsuredRegion: p.InsuredRegion, Institution: inst, MedType: "11", SetlDate: day, Insutype: p.Insutype,
		Retired: p.Retired, Registered: p.RegisteredFor(in.Admdvs, day), Assistance: p.Assistance, UseAccount: useAccount, State: state}
	for _, l := range lines {
		c.Lines = append(c.Lines, rules.Line{SN: l.SN, Code: l.Code, Cnt: decimal.RequireFromString(l.Cnt),
			Pric: decimal.RequireFromString(l.Pric), Amount: decimal.RequireFromString(l.Amount)})
	}
	res, err := rs.Price(c)
	require.NoError(t, err)
	return res
}

// balances are the ledger balances of accounts.
func (p province) balances(t *testing.T, accounts ...string) map[string]rules.Money {
	t.Helper()
	out := map[string]rules.Money{}
	for _, a := range accounts {
		b, err := p.engine.Balance(context.Background(), a)
		require.NoError(t, err)
		out[a] = b
	}
	return out
}

// localAccounts are the accounts a local settlement of psn at inst moves.
func localAccounts(region, psn, inst string) []string {
	return []string{settlement.FundAccount(region, settlement.FundBasic), settlement.FundAccount(region, settlement.FundHifmi),
		settlement.FundAccount(region, settlement.FundHifob), settlement.FundAccount(region, settlement.FundMaf),
		settlement.PersonAccount(psn), settlement.CashAccount(inst), settlement.MedinsAccount(inst)}
}

// localBalances are what settlements with the sums of info leave on localAccounts.
func localBalances(region, psn, inst string, i rules.Setlinfo) map[string]rules.Money {
	a := localAccounts(region, psn, inst)
	return map[string]rules.Money{a[0]: i.HifpPay, a[1]: i.HifmiPay, a[2]: i.HifobPay, a[3]: i.MafPay,
		a[4]: i.AcctPay, a[5]: i.PsnCashPay, a[6]: -i.MedfeeSumamt}
}

// audited requires a clean audit of p's store, and every chain to verify on its own.
func (p province) audited(t *testing.T, settlements, txns int) {
	t.Helper()
	rep, err := p.store.Audit(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.Equal(t, settlements, rep.Settlements, "settlements audited")
	require.Equal(t, txns, rep.Txns, "ledger transactions audited")
}

// verifyChain replays chain from genesis.
func (p province) verifyChain(t *testing.T, chain string, seq int64) {
	t.Helper()
	v := settlement.NewChainVerifier()
	txns := p.store.LedgerTxns(chain)
	for i := range txns {
		v.Add(&txns[i])
	}
	require.Len(t, txns, int(seq))
	v.Finish(map[string]settlement.ChainHead{chain: {Seq: seq, Hash: txns[len(txns)-1].Hash}})
	require.Empty(t, v.Problems)
}

func (p province) counters(t *testing.T, psn string) rules.Counters {
	t.Helper()
	c, err := p.engine.YearCountersOf(context.Background(), psn, 2026)
	require.NoError(t, err)
	return c
}

var outpatientLines = []settlement.LineInput{
	line("1", "B1", "001101000010000", "1", "30.00", "30.00"),
	line("2", "B1", "XJ01DDA062B002010100345", "3", "1500.5", "4501.50"), // 乙类, self-pay-first 0.10
	line("3", "B2", "001103000010000", "1", "200", "200.00"),             // 丙类: all self-paid
}

// localVisit is a deployment serving every region, on 2026-03-15, with an
// open visit of the Hohhot employee carrying outpatientLines.
func localVisit(t *testing.T) (province, settlement.Person, string) {
	t.Helper()
	p := newProvince(t, "", newClock(time.Date(2026, 3, 15, 10, 0, 0, 0, cst)))
	return p, p.person(t, hohhotEmployee), p.visit(t, hohhotHospital, hohhotEmployee, outpatientLines...)
}

func TestFlowSettleAndCancel(t *testing.T) {
	ctx := context.Background()
	p, who, mdtrt := localVisit(t)
	in := settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee, MedfeeSumamt: "4731.50", UseAccount: true}

	pre, err := p.engine.PreSettle(ctx, hohhotHospital, in)
	require.NoError(t, err)
	m := newMsg(hohhotHospital, "2207")
	got, err := p.engine.Settle(ctx, m, in)
	require.NoError(t, err)
	want := price(t, who, hohhotHospital, 20260315, true, rules.Counters{AcctBalc: who.OpeningBalc}, outpatientLines...)
	require.Equal(t, want.Setlinfo, got.Info, "the settlement is the pricing function's")
	require.Equal(t, pre.Info, got.Info, "and its pre-settlement's")
	require.Equal(t, want.Detail, got.Detail)
	require.Equal(t, "4731.50", got.Info.MedfeeSumamt.String())
	require.Equal(t, want.After, p.counters(t, hohhotEmployee))
	accounts := localAccounts(who.InsuredRegion, hohhotEmployee, hohhotHospital)
	require.Equal(t, localBalances(who.InsuredRegion, hohhotEmployee, hohhotHospital, got.Info), p.balances(t, accounts...))

	again, err := p.engine.Settle(ctx, m, in)
	require.NoError(t, err)
	require.Equal(t, got, again, "the same msgid replays the first answer")
	_, err = p.engine.Settle(ctx, newMsg(hohhotHospital, "2207"), in)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "a settled visit is settled once")

	rev, err := p.engine.Cancel(ctx, newMsg(hohhotHospital, "2208"),
		settlement.CancelInput{SetlID: got.SetlID, MdtrtID: mdtrt, PsnNo: hohhotEmployee})
	require.NoError(t, err)
	require.Equal(t, got.SetlID, rev.Reverses)
	require.Equal(t, -got.Info.MedfeeSumamt, rev.Info.MedfeeSumamt)
	require.Equal(t, -got.Info.FundPaySumamt, rev.Info.FundPaySumamt)
	require.Equal(t, who.OpeningBalc, rev.Info.Balc, "the balance after the reversal")
	require.Equal(t, rules.Counters{AcctBalc: who.OpeningBalc}, p.counters(t, hohhotEmployee), "counters back where they were")
	for a, b := range p.balances(t, accounts...) {
		require.Zero(t, b, "account %s after the cancellation", a)
	}
	_, err = p.engine.Cancel(ctx, newMsg(hohhotHospital, "2208"), settlement.CancelInput{SetlID: got.SetlID})
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "a settlement is cancelled once")

	p.audited(t, 2, 2)
	p.verifyChain(t, settlement.ChainOf(hohhotEmployee), 2)
	require.Len(t, p.store.Events(), 2, "one outbox event per ledger transaction")
}

// 2205: a charge batch is withdrawn before settlement; the settlement
// prices the lines left, and the withdrawal is undone by nothing else.
func TestFlowWithdrawBatchThenSettle(t *testing.T) {
	ctx := context.Background()
	p, who, mdtrt := localVisit(t)

	_, err := p.engine.WithdrawLines(ctx, newMsg(hohhotHospital, "2205"), mdtrt, hohhotEmployee, "B2")
	require.NoError(t, err)
	_, err = p.engine.WithdrawLines(ctx, newMsg(hohhotHospital, "2205"), mdtrt, hohhotEmployee, "B2")
	require.Equal(t, settlement.ENOTFOUND, settlement.ErrorCode(err), "a batch is withdrawn once")
	_, err = p.engine.Settle(ctx, newMsg(hohhotHospital, "2207"), settlement.SettleInput{MdtrtID: mdtrt, MedfeeSumamt: "4731.50"})
	require.Equal(t, settlement.EINVALID, settlement.ErrorCode(err), "the withdrawn batch no longer counts")

	got, err := p.engine.Settle(ctx, newMsg(hohhotHospital, "2207"), settlement.SettleInput{MdtrtID: mdtrt, MedfeeSumamt: "4531.50"})
	require.NoError(t, err)
	want := price(t, who, hohhotHospital, 20260315, false, rules.Counters{AcctBalc: who.OpeningBalc}, outpatientLines[:2]...)
	require.Equal(t, want.Setlinfo, got.Info)
	require.Zero(t, got.Info.AcctPay, "no account without acct_used_flag")
	require.Equal(t, want.After, p.counters(t, hohhotEmployee))
	require.Equal(t, localBalances(who.InsuredRegion, hohhotEmployee, hohhotHospital, got.Info),
		p.balances(t, localAccounts(who.InsuredRegion, hohhotEmployee, hohhotHospital)...))
	_, err = p.engine.WithdrawLines(ctx, newMsg(hohhotHospital, "2205"), mdtrt, hohhotEmployee, "B1")
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "a settled visit's lines are final")
	p.audited(t, 1, 1)
}

// 2601: a settlement reversed by its msgid is cancelled; a msgid that never
// arrived is voided and refused when it comes late.
func TestFlowReverse(t *testing.T) {
	ctx := context.Background()
	p, who, mdtrt := localVisit(t)
	in := settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee, UseAccount: true}
	m := newMsg(hohhotHospital, "2207")
	got, err := p.engine.Settle(ctx, m, in)
	require.NoError(t, err)

	r := newMsg(hohhotHospital, "2601")
	ans, err := p.engine.Reverse(ctx, r, m.ID, "2207", hohhotEmployee)
	require.NoError(t, err)
	require.Equal(t, "reversed", ans.Outcome)
	require.NotNil(t, ans.Setl)
	require.Equal(t, got.SetlID, ans.Setl.Reverses)
	require.Equal(t, -got.Info.AcctPay, ans.Setl.Info.AcctPay)
	replay, err := p.engine.Reverse(ctx, r, m.ID, "2207", hohhotEmployee)
	require.NoError(t, err)
	require.Equal(t, ans, replay, "the same 2601 replays its answer")
	twice, err := p.engine.Reverse(ctx, newMsg(hohhotHospital, "2601"), m.ID, "2207", hohhotEmployee)
	require.NoError(t, err)
	require.Equal(t, "already_reversed", twice.Outcome)
	_, err = p.engine.Settle(ctx, m, in)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "a reversed msgid never takes effect")
	require.Equal(t, rules.Counters{AcctBalc: who.OpeningBalc}, p.counters(t, hohhotEmployee))

	late := newMsg(hohhotHospital, "2207")
	voided, err := p.engine.Reverse(ctx, newMsg(hohhotHospital, "2601"), late.ID, "2207", "")
	require.NoError(t, err)
	require.Equal(t, "voided", voided.Outcome)
	_, err = p.engine.Settle(ctx, late, in)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "a voided msgid is refused when it arrives")

	// The visit is open again: settled anew, at the first settlement's amounts.
	again, err := p.engine.Settle(ctx, newMsg(hohhotHospital, "2207"), in)
	require.NoError(t, err)
	require.Equal(t, got.Info, again.Info)
	require.Equal(t, localBalances(who.InsuredRegion, hohhotEmployee, hohhotHospital, again.Info),
		p.balances(t, localAccounts(who.InsuredRegion, hohhotEmployee, hohhotHospital)...))
	p.audited(t, 3, 3)
	p.verifyChain(t, settlement.ChainOf(hohhotEmployee), 3)
}

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
