package hubhttp_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The clearing's steps, called over HTTP as the hub's workflow calls them:
// the receivables close, the advance fund pays exactly what was confirmed,
// a repeated posting pays nothing more, and every audit stays clean.
func TestClearingOverHTTP(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	hoh, wuh := w.prov[hohhot], w.prov[wuhan]
	for i := 0; i < 2; i++ {
		mdtrt := w.visit(t, hoh, hohhotHosp, wuhanResident)
		_, err := hoh.engine.Settle(ctx, msg(hohhotHosp, "2207"), settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
		require.NoError(t, err)
	}
	owed := balance(t, hoh, settlement.ClearingAccount(wuhan))
	require.Positive(t, owed)

	peers := map[string]*hubhttp.PeerClient{}
	for code, p := range w.prov {
		peers[code] = &hubhttp.PeerClient{URL: p.peer.URL, Token: peerToken(code)}
	}
	sts, err := peers[hohhot].Statements(ctx, "2026-03")
	require.NoError(t, err)
	require.Len(t, sts, 1)
	st := sts[0]
	require.Equal(t, wuhan, st.Insured)
	require.Equal(t, owed, st.Total)

	verdicts, err := peers[wuhan].Confirm(ctx, st)
	require.NoError(t, err)
	require.Len(t, verdicts, 2)
	for _, v := range verdicts {
		require.True(t, v.Confirmed, v.Reason)
	}
	for round := 0; round < 2; round++ { // the second round is a retried activity
		paid, err := peers[wuhan].PostPayment(ctx, st, verdicts)
		require.NoError(t, err)
		require.Equal(t, owed, paid)
		got, err := peers[hohhot].PostReceipt(ctx, st, verdicts)
		require.NoError(t, err)
		require.Equal(t, owed, got)
	}
	require.Equal(t, rules.Money(0), balance(t, hoh, settlement.ClearingAccount(wuhan)), "the receivable is closed")
	require.Equal(t, rules.Money(0), balance(t, wuh, settlement.ClearingAccount(hohhot)), "the payable is closed")
	require.Equal(t, -owed, balance(t, wuh, settlement.AdvanceAccount(hohhot)), "paid once out of the advance")
	topUp, err := peers[wuhan].TopUp(ctx, "2026-03", hohhot, 5000)
	require.NoError(t, err)
	require.Equal(t, 2*owed, topUp, "back up to one month's average")
	for _, p := range w.prov {
		rep, err := p.store.Audit(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%s: %v", p.code, rep.Problems)
	}

	// The hub's token is required here too.
	_, err = (&hubhttp.PeerClient{URL: wuh.peer.URL, Token: "not-the-hub-token-at-all"}).Statements(ctx, "2026-03")
	require.Error(t, err)
}
