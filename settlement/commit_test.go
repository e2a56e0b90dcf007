package settlement

import (
	"context"
	"fmt"
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

// The engine sends a store its reads and writes in one order, on which the
// postgres store's pipelining depends (cdb2a9d: the visit, counters and
// chain head one after another, then the ledger rows and the settlement).
func TestSettleCallOrder(t *testing.T) {
	e, tx := fakeEngine(t)
	ctx := context.Background()
	v, err := e.RegisterVisit(ctx, fakeMsg(fakeHosp, "2201"), VisitInput{PsnNo: fakePsn, Kind: VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = e.UploadLines(ctx, fakeMsg(fakeHosp, "2204"), v.MdtrtID, fakePsn, []LineInput{
		{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "30.00", Amount: "30.00"},
		{SN: "2", Code: "XJ01DDA062B002010100345", Cnt: "3", Pric: "1500.5", Amount: "4501.50"},
	})
	require.NoError(t, err)

	var pre, a SettleAnswer
	require.Equal(t, []string{"Visit", "Lines", "Person", "Counters"}, calls(tx, func() {
		pre, err = e.PreSettle(ctx, fakeHosp, SettleInput{MdtrtID: v.MdtrtID, PsnNo: fakePsn})
		require.NoError(t, err)
	}))
	require.NotEmpty(t, pre.SetlID, "a pre-settlement shows a setl_id, as it always has")
	m := fakeMsg(fakeHosp, "2207")
	require.Equal(t, []string{"ClaimMessage done", "Visit", "Lines", "Person", "Counters",
		"PutVisit settled", "PutCounters", "ChainHead", "AppendLedger settle", "PutSettlement"}, calls(tx, func() {
		a, err = e.Settle(ctx, m, SettleInput{MdtrtID: v.MdtrtID, PsnNo: fakePsn})
		require.NoError(t, err)
	}))
	require.NotEqual(t, pre.SetlID, a.SetlID)
	require.Equal(t, pre.Info, a.Info)
	s := tx.setls[a.SetlID]
	require.Equal(t, s.LedgerTxnID, tx.txns[len(tx.txns)-1].ID)
	require.Empty(t, CheckSettlement(&s, tx.txns[len(tx.txns)-1]))

	// A replay reads the settlement back.
	require.Equal(t, []string{"ClaimMessage done", "Settlement"}, calls(tx, func() {
		again, err := e.Settle(ctx, m, SettleInput{MdtrtID: v.MdtrtID, PsnNo: fakePsn})
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
