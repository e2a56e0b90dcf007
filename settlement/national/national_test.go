package national_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
)

// peer answers for its province and counts what it was asked.
type peer struct{ settles, reverses int }

func (p *peer) SettleForHub(_ context.Context, c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	p.settles++
	if c.PsnNo == "refused" {
		return settlement.RemoteAnswer{}, settlement.Errorf(settlement.EINVALID, "no such person")
	}
	return settlement.RemoteAnswer{SetlID: "S1"}, nil
}

func (p *peer) ReverseForHub(context.Context, settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	p.reverses++
	return settlement.RemoteReverseAnswer{Outcome: "reversed"}, nil
}

// The hub routes to the insured person's province and records every message.
func TestHubRoutesAndRecords(t *testing.T) {
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	hub := national.New(rs)
	hubei := &peer{}
	hub.Register("420000", hubei)
	ctx := context.Background()
	from := hub.For("150000")

	a, err := from.Settle(ctx, settlement.RemoteClaim{Msgid: "M1", InsuredRegion: "420100", PsnNo: "p"})
	require.NoError(t, err)
	require.Equal(t, "S1", a.SetlID)
	_, err = from.Settle(ctx, settlement.RemoteClaim{Msgid: "M2", InsuredRegion: "420100", PsnNo: "refused"})
	require.Equal(t, settlement.EINVALID, settlement.ErrorCode(err))
	_, err = from.Reverse(ctx, settlement.RemoteReverse{Msgid: "M1", InsuredRegion: "420100"})
	require.NoError(t, err)
	_, err = from.Settle(ctx, settlement.RemoteClaim{Msgid: "M3", InsuredRegion: "230100"})
	require.Equal(t, settlement.ENOTFOUND, settlement.ErrorCode(err), "Heilongjiang is not connected")
	require.Equal(t, 2, hubei.settles)
	require.Equal(t, 1, hubei.reverses)

	var got []string
	for _, r := range hub.Records() {
		require.False(t, r.At.IsZero())
		got = append(got, r.Kind+" "+r.From+"→"+r.To+" "+r.Msgid+" ["+r.Fault+"]: "+r.Result)
	}
	require.Equal(t, []string{"settle 150000→420000 M1 []: ok",
		"settle 150000→420000 M2 []: refused: settlement: invalid: no such person",
		"reverse 150000→420000 M1 []: ok"}, got, "what was not routed is not recorded")
}
