package hubhttp_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
)

// The hub's answers when the insured province is not there, or turns the
// hub away: settling is refused (nothing happened), reversing is to be
// retried (a reversal must go through).
func TestServerRouting(t *testing.T) {
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	tokens := hubhttp.DevTokens(hohhot, wuhan)
	hub := hubhttp.NewServer(national.New(rs), tokens)
	hubTS := httptest.NewServer(hub.Handler())
	defer hubTS.Close()
	ctx := context.Background()
	cl := hubhttp.NewClient(hubTS.URL, hohhot, hubhttp.DevProvinceToken(hohhot))

	claim := pricedClaim()
	rev := settlement.RemoteReverse{Msgid: "M1", Institution: hohhotHosp, InsuredRegion: "420100", TreatmentProvince: hohhot, PsnNo: wuhanResident}

	// Hubei is not connected.
	_, err = cl.Settle(ctx, claim)
	require.Equal(t, settlement.ENOTFOUND, settlement.ErrorCode(err), "%v", err)
	_, err = cl.Reverse(ctx, rev)
	require.ErrorIs(t, err, settlement.ErrUnknownOutcome)
	require.ErrorContains(t, err, "503")

	// Hubei is connected, but expects another token from the hub.
	var reached atomic.Bool
	peer := httptest.NewServer(hubhttp.PeerHandler(&fakePeer{
		settle: func(settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
			reached.Store(true)
			return settlement.RemoteAnswer{SetlID: "S1"}, nil
		},
		reverse: func(settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
			reached.Store(true)
			return settlement.RemoteReverseAnswer{Outcome: "voided"}, nil
		},
	}, "a-token-the-hub-does-not-have"))
	defer peer.Close()
	require.NoError(t, hub.Connect(wuhan, peer.URL))
	_, err = cl.Settle(ctx, claim)
	require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%v", err)
	_, err = cl.Reverse(ctx, rev)
	require.ErrorIs(t, err, settlement.ErrUnknownOutcome, "502: to be retried")
	require.ErrorContains(t, err, "502")
	require.False(t, reached.Load())

	// Mended: both go through.
	tokens.Peer[wuhan] = "a-token-the-hub-does-not-have"
	require.NoError(t, hub.Connect(wuhan, peer.URL))
	a, err := cl.Settle(ctx, claim)
	require.NoError(t, err)
	require.Equal(t, "S1", a.SetlID)
	ra, err := cl.Reverse(ctx, rev)
	require.NoError(t, err)
	require.Equal(t, "voided", ra.Outcome)

	// A province not in --peer has no token to connect with.
	require.Error(t, hub.Connect(harbin, peer.URL))
	require.Error(t, hub.Connect(wuhan, "ftp://x"))

	// The records are the national hub's; a hub without Faults injects none.
	admin := &hubhttp.Admin{URL: hubTS.URL, Token: tokens.Admin}
	recs, err := admin.Records(ctx, "M1")
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	require.Equal(t, "none", recs[0].Fault)
	require.ErrorContains(t, admin.Inject(ctx, 0, "drop-answer"), "injects no faults")
}
