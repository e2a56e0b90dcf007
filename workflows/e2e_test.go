package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/medsettle/medsettle/adapters/hubsim"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
)

func TestMain(m *testing.M) { pgfixture.Main(m) }

// A settlement whose answer is lost while the insured province is also
// unreachable for a while: the reversal runs as a workflow on a real
// Temporal server, survives its worker being replaced mid-way, and ends with
// both provinces agreeing that nothing happened.
func TestReversalWorkflowOnTemporal(t *testing.T) {
	const (
		resident = "42010000000000000044" // insured in Wuhan (420000)
		hosp     = "H15010000011"         // Hohhot (150000)
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pf := newPlatform(t)
	tc := pf.client
	hub := hubsim.New(pf.rules)
	now := func() time.Time { return time.Date(2026, 3, 15, 10, 0, 0, 0, rules.CST) }
	pf.open(t, hub, now, func(e *settlement.Engine) settlement.Reverser {
		return &workflows.Reverser{Client: tc, Province: e.Province}
	}, "150000", "420000")
	treat, insured := pf.engines["150000"], pf.engines["420000"]
	register := func(r worker.Registry) {
		workflows.Register(r, &workflows.Activities{Hub: hub.For("150000")})
	}
	w1 := pf.server.NewWorker(workflows.TaskQueue("150000"), register)

	v, err := treat.RegisterVisit(ctx, pgfixture.Msg(hosp, "2201"), settlement.VisitInput{PsnNo: resident, Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = treat.UploadLines(ctx, pgfixture.Msg(hosp, "2204"), v.MdtrtID, resident, []settlement.LineInput{
		{SN: "1", Code: "002302000010000", Cnt: "2", Pric: "380.00", Amount: "760.00"}})
	require.NoError(t, err)

	// The insured side settles, the answer is lost, and the first reversals fail.
	hub.Inject(hubsim.DropAnswer)
	hub.FailReverses(2)
	m := pgfixture.Msg(hosp, "2207")
	_, err = treat.Settle(ctx, m, settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: resident})
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "%v", err)

	// The worker goes away mid-reversal; another one takes over.
	w1.Stop()
	pf.server.NewWorker(workflows.TaskQueue("150000"), register)

	var ans settlement.RemoteReverseAnswer
	require.NoError(t, tc.GetWorkflow(ctx, workflows.ReversalID(m.ID), "").Get(ctx, &ans))
	require.Equal(t, "reversed", ans.Outcome)

	counters, err := insured.YearCountersOf(ctx, resident, 2026)
	require.NoError(t, err)
	require.Equal(t, rules.Counters{}, counters, "the reversed settlement left no trace in the counters")
	pf.audited(t, ctx)
	var standing int
	require.NoError(t, pf.stores["420000"].Pool().QueryRow(ctx,
		`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`).Scan(&standing))
	require.Zero(t, standing)

	// Starting the same reversal again is harmless.
	require.NoError(t, treat.Reverser.StartReversal(ctx, settlement.RemoteReverse{Msgid: m.ID, Institution: hosp,
		InsuredRegion: "420100", TreatmentProvince: "150000", PsnNo: resident}))
}
