package settlement

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	fakePsn      = "15010000000000000001" // employee insured in Hohhot (150100)
	fakeHosp     = "H15010000011"
	fakePharmacy = "P15010000201"
)

var fakeMsgs int

func fakeMsg(inst, infno string) Msg {
	fakeMsgs++
	return Msg{ID: fmt.Sprintf("%s-%s-%d", inst, infno, fakeMsgs), Infno: infno, Institution: inst, Digest: fmt.Sprint(fakeMsgs)}
}

// calls runs op and returns the store calls it made.
func calls(tx *fakeTx, op func()) []string {
	tx.calls = nil
	op()
	return tx.calls
}

// outpatient registers an outpatient visit of psn at fakeHosp with lines and returns its mdtrt_id.
func outpatient(t *testing.T, e *Engine, psn string, lines ...LineInput) string {
	t.Helper()
	ctx := context.Background()
	v, err := e.RegisterVisit(ctx, fakeMsg(fakeHosp, "2201"), VisitInput{PsnNo: psn, Kind: VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = e.UploadLines(ctx, fakeMsg(fakeHosp, "2204"), v.MdtrtID, psn, lines)
	require.NoError(t, err)
	return v.MdtrtID
}

// The engine sends a store its reads and writes in one order, on which the
// postgres store's pipelining depends (cdb2a9d: the visit, counters and
// chain head one after another, then the ledger rows and the settlement).
func TestSettleCallOrder(t *testing.T) {
	e, tx := fakeEngine(t)
	ctx := context.Background()
	mdtrt := outpatient(t, e, fakePsn,
		LineInput{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "30.00", Amount: "30.00"},
		LineInput{SN: "2", Code: "XJ01DDA062B002010100345", Cnt: "3", Pric: "1500.5", Amount: "4501.50"})
	var err error

	var pre, a SettleAnswer
	require.Equal(t, []string{"Visit", "Lines", "Person", "Counters"}, calls(tx, func() {
		pre, err = e.PreSettle(ctx, fakeHosp, SettleInput{MdtrtID: mdtrt, PsnNo: fakePsn})
		require.NoError(t, err)
	}))
	require.NotEmpty(t, pre.SetlID, "a pre-settlement shows a setl_id, as it always has")
	m := fakeMsg(fakeHosp, "2207")
	require.Equal(t, []string{"ClaimMessage done", "Visit", "Lines", "Person", "Counters",
		"PutVisit settled", "PutCounters", "ChainHead", "AppendLedger settle", "PutSettlement"}, calls(tx, func() {
		a, err = e.Settle(ctx, m, SettleInput{MdtrtID: mdtrt, PsnNo: fakePsn})
		require.NoError(t, err)
	}))
	require.NotEqual(t, pre.SetlID, a.SetlID)
	require.Equal(t, pre.Info, a.Info)
	s := tx.setls[a.SetlID]
	require.Equal(t, s.LedgerTxnID, tx.txns[len(tx.txns)-1].ID)
	require.Empty(t, CheckSettlement(&s, tx.txns[len(tx.txns)-1]))

	// A replay reads the settlement back.
	require.Equal(t, []string{"ClaimMessage done", "Settlement"}, calls(tx, func() {
		again, err := e.Settle(ctx, m, SettleInput{MdtrtID: mdtrt, PsnNo: fakePsn})
		require.NoError(t, err)
		require.Equal(t, a, again)
	}))

	require.Equal(t, []string{"ClaimMessage ", "Settlement", "SetSettlementStatus cancelled", "Visit", "Counters",
		"PutCounters", "ChainHead", "AppendLedger cancel", "PutSettlement", "PutVisit open", "PutMessage done"}, calls(tx, func() {
		r, err := e.Cancel(ctx, fakeMsg(fakeHosp, "2208"), CancelInput{SetlID: a.SetlID, PsnNo: fakePsn})
		require.NoError(t, err)
		require.Equal(t, -a.Info.MedfeeSumamt, r.Info.MedfeeSumamt)
	}))
}

func TestPharmacyCallOrder(t *testing.T) {
	e, tx := fakeEngine(t)
	ctx := context.Background()
	in := PharmacyInput{PsnNo: fakePsn, Lines: []LineInput{{SN: "1", Code: "XA10BAG046A001010100111", Cnt: "2", Pric: "62.70", Amount: "125.40"}}}
	require.Equal(t, []string{"Person", "Counters"}, calls(tx, func() {
		pre, err := e.PharmacyPreSettle(ctx, fakePharmacy, in)
		require.NoError(t, err)
		require.NotEmpty(t, pre.SetlID)
	}))
	var a SettleAnswer
	require.Equal(t, []string{"ClaimMessage done", "Person", "PutVisit open", "PutLines", "Counters",
		"PutCounters", "ChainHead", "AppendLedger settle", "PutSettlement", "PutVisit settled"}, calls(tx, func() {
		var err error
		a, err = e.PharmacySettle(ctx, fakeMsg(fakePharmacy, "2102"), in)
		require.NoError(t, err)
	}))
	require.Equal(t, []string{"ClaimMessage ", "Message", "Settlement", "Settlement", "SetSettlementStatus cancelled", "Visit",
		"Counters", "PutCounters", "ChainHead", "AppendLedger cancel", "PutSettlement", "PutVisit cancelled",
		"PutMessage reversed", "PutMessage done"}, calls(tx, func() {
		r, err := e.Reverse(ctx, fakeMsg(fakePharmacy, "2601"), tx.setls[a.SetlID].Msgid, "2102", fakePsn)
		require.NoError(t, err)
		require.Equal(t, "reversed", r.Outcome)
	}))
}

// writesOf are the calls among cs that write.
func writesOf(cs []string) []string {
	var out []string
	for _, c := range cs {
		if strings.HasPrefix(c, "Put") || strings.HasPrefix(c, "Append") || strings.HasPrefix(c, "Set") || strings.HasPrefix(c, "Withdraw") {
			out = append(out, c)
		}
	}
	return out
}

// A settlement whose identities do not hold, or whose ledger transaction
// would not balance, is refused as an internal error before the store sees
// any of its writes.
func TestCommitRefusesBrokenSettlement(t *testing.T) {
	e, tx := fakeEngine(t)
	ctx := context.Background()
	mdtrt := outpatient(t, e, fakePsn, LineInput{SN: "1", Code: "XJ01DDA062B002010100345", Cnt: "3", Pric: "1500.5", Amount: "4501.50"})
	breaks := map[string]func(s *Settlement){
		"cash pay off by a cent":          func(s *Settlement) { s.Info.PsnCashPay++ },
		"fund total not the sum of funds": func(s *Settlement) { s.Info.FundPaySumamt++; s.Info.PsnCashPay-- },
		"medfee and cash both off":        func(s *Settlement) { s.Info.MedfeeSumamt++; s.Info.PsnCashPay++; s.Info.HifpPay++ },
	}
	for name, broken := range breaks {
		t.Run(name, func(t *testing.T) {
			p, err := e.price(ctx, tx, fakeHosp, SettleInput{MdtrtID: mdtrt, PsnNo: fakePsn}, NewID("S"), e.now())
			require.NoError(t, err)
			require.NotNil(t, p.local)
			broken(p.local)
			cs := calls(tx, func() {
				err = e.commit(ctx, tx, p.local, writes{kind: TxnSettle, counters: &p.counters, settled: p.visit})
			})
			require.ErrorIs(t, err, ErrInvariant)
			require.Equal(t, EINTERNAL, ErrorCode(err))
			require.Empty(t, cs, "nothing read or written")
		})
	}
	// The same settlement unbroken goes through.
	p, err := e.price(ctx, tx, fakeHosp, SettleInput{MdtrtID: mdtrt, PsnNo: fakePsn}, NewID("S"), e.now())
	require.NoError(t, err)
	require.NoError(t, e.commit(ctx, tx, p.local, writes{kind: TxnSettle, counters: &p.counters, settled: p.visit}))
}

// A reversal of a settlement that was stored broken is refused before the
// original's status changes.
func TestCommitReversalRefusesBrokenSettlement(t *testing.T) {
	e, tx := fakeEngine(t)
	s := &Settlement{SetlID: NewID("S"), MdtrtID: "M1", PsnNo: fakePsn, Institution: fakeHosp, InsuredRegion: "150100",
		TreatmentRegion: "150100", MedType: "11", Insutype: "310", Year: 2026, Status: Settled}
	s.Info.MedfeeSumamt, s.Info.HifpPay, s.Info.FundPaySumamt = 10000, 6000, 6000 // no one pays the other 40.00
	var err error
	cs := calls(tx, func() { _, err = e.commitReversal(context.Background(), tx, s, "m", e.now()) })
	require.ErrorIs(t, err, ErrInvariant)
	require.Empty(t, cs)
}

// A clearing transaction that does not balance is refused before it is appended.
func TestAppendLedgerRefusesUnbalanced(t *testing.T) {
	_, tx := fakeEngine(t)
	ctx := context.Background()
	bad := &LedgerTxn{ID: NewID("T"), Chain: "clearing:420000", Kind: TxnTopUp,
		Entries: []Entry{{AdvanceAccount("420000"), 100}, {TreasuryAccount, -99}}}
	bad.Seal(0, "")
	cs := calls(tx, func() { require.ErrorIs(t, appendLedger(ctx, tx, bad, nil), ErrInvariant) })
	require.Empty(t, cs)
	zero := &LedgerTxn{ID: NewID("T"), Chain: "clearing:420000", Kind: TxnTopUp,
		Entries: []Entry{{AdvanceAccount("420000"), 100}, {TreasuryAccount, -100}, {TreasuryAccount, 0}}}
	zero.Seal(0, "")
	cs = calls(tx, func() { require.ErrorIs(t, appendLedger(ctx, tx, zero, nil), ErrInvariant) })
	require.Empty(t, cs, "a zero leg is refused too")
}

// brokenHub answers for the insured province with a settlement whose
// amounts do not add up, as a faulty peer might.
type brokenHub struct{ reversed []RemoteReverse }

func (h *brokenHub) Settle(_ context.Context, c RemoteClaim) (RemoteAnswer, error) {
	a := RemoteAnswer{SetlID: NewID("S")}
	a.Info.MedfeeSumamt, a.Info.HifpPay, a.Info.FundPaySumamt, a.Info.PsnCashPay = 10000, 7000, 7000, 2000
	return a, nil
}

func (h *brokenHub) Reverse(_ context.Context, r RemoteReverse) (RemoteReverseAnswer, error) {
	h.reversed = append(h.reversed, r)
	return RemoteReverseAnswer{Outcome: "reversed"}, nil
}

// The treatment side refuses to record an insured side's answer that breaks
// a settlement's identities: nothing of the settlement is written, and the
// insured side is reversed, as when this side cannot record it for any
// other reason.
func TestTreatmentSideRefusesBrokenAnswer(t *testing.T) {
	e, tx := fakeEngine(t)
	hub := &brokenHub{}
	e.Hub, e.Reverser = hub, &InlineReverser{Hub: hub}
	ctx := context.Background()
	const wuhanPsn = "42010000000000000044"
	mdtrt := outpatient(t, e, wuhanPsn, LineInput{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "100.00", Amount: "100.00"})
	var err error
	m := fakeMsg(fakeHosp, "2207")
	cs := calls(tx, func() {
		_, err = e.Settle(ctx, m, SettleInput{MdtrtID: mdtrt, PsnNo: wuhanPsn})
	})
	require.Equal(t, ECONFLICT, ErrorCode(err), "%v", err)
	require.Equal(t, []string{"PutMessage reversed"}, writesOf(cs), "only the message, marked reversed, was written")
	require.Len(t, hub.reversed, 1)
	require.Equal(t, m.ID, hub.reversed[0].Msgid)
	require.Empty(t, tx.txns)
	require.Empty(t, tx.setls)
}
