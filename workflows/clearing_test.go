package workflows_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
	"github.com/medsettle/medsettle/workflows"
)

// A swipe in one province by a person insured in another.
type swipe struct {
	psn, hosp string
	amount    string
	cancel    bool
}

// flaky wraps a province for the hub: it can fail after acting (a worker
// dying before it reports), stall (a worker killed mid-activity), never
// confirm (a province that does not answer), or misstate one item.
type flaky struct {
	settlement.ClearingPeer
	failAfterPay atomic.Int32 // PostPayment calls that act, then report failure
	stallConfirm atomic.Int32 // Confirm calls that hang until cancelled
	neverConfirm bool
	misstate     string // a setl_id whose amount the statement overstates by 1.00
	payments     atomic.Int32
}

func (f *flaky) Statements(ctx context.Context, p settlement.Period) ([]settlement.Statement, error) {
	sts, err := f.ClearingPeer.Statements(ctx, p)
	for i := range sts {
		for j := range sts[i].Items {
			if sts[i].Items[j].SetlID == f.misstate {
				sts[i].Items[j].Amount += 100
				sts[i].Total += 100
			}
		}
	}
	return sts, err
}

func (f *flaky) Confirm(ctx context.Context, st settlement.Statement) ([]settlement.Verdict, error) {
	if f.neverConfirm || f.stallConfirm.Add(-1) >= 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.ClearingPeer.Confirm(ctx, st)
}

func (f *flaky) PostPayment(ctx context.Context, st settlement.Statement, v []settlement.Verdict) (rules.Money, error) {
	f.payments.Add(1)
	paid, err := f.ClearingPeer.PostPayment(ctx, st, v)
	if err == nil && f.failAfterPay.Add(-1) >= 0 {
		return 0, context.DeadlineExceeded
	}
	return paid, err
}

// A month of cross-province traffic between three provinces, then the
// clearing on a real Temporal server with a worker replaced mid-way, an
// activity that acts but fails to report, a misstated item (disputed and
// carried over), and a province that never answers (escalated). Money is
// conserved everywhere and nothing is paid twice; the next month clears what
// was carried.
func TestMonthlyClearing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pf := newPlatform(t)
	hub := national.New(pf.rules)
	var now atomic.Value
	now.Store(time.Date(2026, 3, 10, 10, 0, 0, 0, rules.CST))
	clock := func() time.Time { return now.Load().(time.Time) }
	provinces := []string{"150000", "420000", "230000"}
	pf.open(t, hub, clock, func(e *settlement.Engine) settlement.Reverser {
		return &settlement.InlineReverser{Hub: e.Hub, Backoff: time.Millisecond}
	}, provinces...)
	peers := map[string]*flaky{}
	for prov, e := range pf.engines {
		peers[prov] = &flaky{ClearingPeer: e}
	}
	// Every province holds an advance of 5,000.00 for every other one.
	for ins, tr := range pf.pairs() {
		require.NoError(t, pf.engines[ins].FundAdvance(ctx, "2026-02", tr, 500000))
	}

	traffic := []swipe{
		{psn: "42010000000000000044", hosp: "H15010000011", amount: "760.00"},               // Wuhan resident in Hohhot
		{psn: "42010000000000000045", hosp: "H15010000032", amount: "1520.00"},              // Wuhan resident in Hohhot
		{psn: "42010000000000000044", hosp: "H15020000012", amount: "380.00", cancel: true}, // cancelled: nets to zero
		{psn: "23010000000000000081", hosp: "H42010000001", amount: "2280.00"},              // Harbin person in Wuhan
		{psn: "15010000000000000011", hosp: "H23010000002", amount: "1140.00"},              // Hohhot resident in Harbin
		{psn: "15010000000000000011", hosp: "H42010000230", amount: "760.00"},               // Hohhot resident in Wuhan
	}
	misstated := swipeMonth(t, ctx, pf, traffic)

	// The clearing runs at the start of April.
	now.Store(time.Date(2026, 4, 2, 9, 0, 0, 0, rules.CST))
	peers["150000"].misstate = misstated  // Hohhot overstates one Wuhan item: disputed
	peers["420000"].failAfterPay.Store(1) // Wuhan pays, then its worker dies before reporting
	peers["420000"].stallConfirm.Store(1) // and the first confirmation hangs: the worker is replaced
	peers["150000"].neverConfirm = true   // Hohhot never confirms what Harbin claims: escalation
	res := clearMarchReplacingWorker(t, ctx, pf, peers, provinces)

	adv := requireMarchCleared(t, ctx, pf, peers, res)
	requireRerunPaysNothing(t, ctx, pf, provinces, adv)

	// April: everyone answers, the statement is right; what was carried clears.
	peers["150000"].misstate, peers["150000"].neverConfirm = "", false
	now.Store(time.Date(2026, 5, 2, 9, 0, 0, 0, rules.CST))
	clearAprilCarried(t, ctx, pf, provinces, &res)
}

// swipeMonth registers, prices and settles every swipe at its hospital's
// province, cancelling those marked so. It returns the setl_id of the second
// swipe, the one a province will misstate.
func swipeMonth(t *testing.T, ctx context.Context, pf *platform, traffic []swipe) (misstated string) {
	rs := pf.rules
	for i, sw := range traffic {
		e := pf.engines[rs.Province(rs.Institutions[sw.hosp].Admdvs)]
		v, err := e.RegisterVisit(ctx, pgfixture.Msg(sw.hosp, "2201"), settlement.VisitInput{PsnNo: sw.psn, Kind: settlement.VisitOutpatient, MedType: "11"})
		require.NoError(t, err, "swipe %d", i)
		cnt := map[string]string{"380.00": "1", "760.00": "2", "1140.00": "3", "1520.00": "4", "2280.00": "6"}[sw.amount]
		_, err = e.UploadLines(ctx, pgfixture.Msg(sw.hosp, "2204"), v.MdtrtID, sw.psn, []settlement.LineInput{
			{SN: "1", Code: "002302000010000", Cnt: cnt, Pric: "380.00", Amount: sw.amount}})
		require.NoError(t, err)
		a, err := e.Settle(ctx, pgfixture.Msg(sw.hosp, "2207"), settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: sw.psn})
		require.NoError(t, err, "swipe %d", i)
		if sw.cancel {
			_, err = e.Cancel(ctx, pgfixture.Msg(sw.hosp, "2208"), settlement.CancelInput{SetlID: a.SetlID})
			require.NoError(t, err)
		}
		if i == 1 {
			misstated = a.SetlID
		}
	}
	return misstated
}

// clearMarchReplacingWorker starts March's clearing on a hub worker, kills
// that worker a second in, starts a replacement and waits for the result.
func clearMarchReplacingWorker(t *testing.T, ctx context.Context, pf *platform, peers map[string]*flaky, provinces []string) workflows.ClearingResult {
	hubPeers := map[string]settlement.ClearingPeer{}
	for p, f := range peers {
		hubPeers[p] = f
	}
	register := func(r worker.Registry) { workflows.RegisterHub(r, &workflows.ClearingActivities{Peers: hubPeers}) }
	w1 := pf.server.NewWorker(workflows.HubTaskQueue, register)
	run, err := pf.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ClearingID("2026-03"), TaskQueue: workflows.HubTaskQueue},
		workflows.ClearingWorkflow, workflows.ClearingInput{Period: "2026-03", Provinces: provinces,
			ConfirmWithin: 20 * time.Second, ActivityTimeout: 3 * time.Second})
	require.NoError(t, err)
	time.Sleep(time.Second)
	w1.Stop() // killed mid-clearing
	pf.server.NewWorker(workflows.HubTaskQueue, register)
	var res workflows.ClearingResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// requireMarchCleared checks March's result: nets sum to zero, the misstated
// item is disputed, the silent province escalated, the payment ran twice but
// paid once. It returns Wuhan's advance for Hohhot after the clearing.
func requireMarchCleared(t *testing.T, ctx context.Context, pf *platform, peers map[string]*flaky, res workflows.ClearingResult) rules.Money {
	var net rules.Money
	for _, m := range res.Net {
		net += m
	}
	require.Zero(t, net, "net positions sum to zero")
	pairs := map[string]workflows.PairResult{}
	for _, p := range res.Pairs {
		pairs[p.Treatment+"<-"+p.Insured] = p
	}
	require.Len(t, pairs["150000<-420000"].Disputed, 1, "the overstated item is disputed")
	require.True(t, pairs["230000<-150000"].Escalated, "Hohhot did not answer: escalated")
	require.Zero(t, pairs["230000<-150000"].Paid)
	require.Equal(t, int32(2), peers["420000"].payments.Load(), "the payment activity ran twice")
	conserved(t, ctx, pf)

	// Wuhan paid exactly once what it confirmed, out of its advance for Hohhot.
	adv, err := pf.engines["420000"].Balance(ctx, settlement.AdvanceAccount("150000"))
	require.NoError(t, err)
	paid := pairs["150000<-420000"].Paid
	require.Equal(t, rules.Money(500000)-paid+pairs["150000<-420000"].TopUp, adv)
	recv, err := pf.engines["150000"].Balance(ctx, settlement.ReceivedAccount("420000"))
	require.NoError(t, err)
	require.Equal(t, paid, recv)
	return adv
}

// requireRerunPaysNothing runs the same period again (a duplicate
// confirmation): Wuhan's advance for Hohhot stays at adv.
func requireRerunPaysNothing(t *testing.T, ctx context.Context, pf *platform, provinces []string, adv rules.Money) {
	again, err := pf.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ClearingID("2026-03") + "-again", TaskQueue: workflows.HubTaskQueue},
		workflows.ClearingWorkflow, workflows.ClearingInput{Period: "2026-03", Provinces: provinces, ConfirmWithin: 20 * time.Second, ActivityTimeout: 3 * time.Second})
	require.NoError(t, err)
	var res2 workflows.ClearingResult
	require.NoError(t, again.Get(ctx, &res2))
	adv2, err := pf.engines["420000"].Balance(ctx, settlement.AdvanceAccount("150000"))
	require.NoError(t, err)
	require.Equal(t, adv, adv2, "nothing paid twice")
}

// clearAprilCarried runs April's clearing into res and checks that money is
// conserved and every receivable is cleared.
func clearAprilCarried(t *testing.T, ctx context.Context, pf *platform, provinces []string, res *workflows.ClearingResult) {
	run, err := pf.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ClearingID("2026-04"), TaskQueue: workflows.HubTaskQueue},
		workflows.ClearingWorkflow, workflows.ClearingInput{Period: "2026-04", Provinces: provinces, ActivityTimeout: 3 * time.Second})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, res))
	conserved(t, ctx, pf)
	for tr, ins := range pf.pairs() {
		open, err := pf.engines[tr].Balance(ctx, settlement.ClearingAccount(ins))
		require.NoError(t, err)
		require.Zero(t, open, "%s's receivable from %s is cleared", tr, ins)
	}
}

// conserved checks that every receivable equals the matching payable and
// that every province's audit is clean.
func conserved(t *testing.T, ctx context.Context, pf *platform) {
	t.Helper()
	for tr, ins := range pf.pairs() {
		recv, err := pf.engines[tr].Balance(ctx, settlement.ClearingAccount(ins))
		require.NoError(t, err)
		pay, err := pf.engines[ins].Balance(ctx, settlement.ClearingAccount(tr))
		require.NoError(t, err)
		require.Equal(t, rules.Money(0), recv+pay, "%s's receivable from %s (%s) must equal %s's payable (%s)", tr, ins, recv, ins, -pay)
	}
	pf.audited(t, ctx)
}

// flakyHub fails the first n reversals with an unknown outcome, then answers.
type flakyHub struct {
	fails   int32
	calls   atomic.Int32
	refuse  bool
	outcome string
}

func (h *flakyHub) Settle(context.Context, settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	panic("not used")
}

func (h *flakyHub) Reverse(_ context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	n := h.calls.Add(1)
	if h.refuse {
		return settlement.RemoteReverseAnswer{}, settlement.Errorf(settlement.ENOTFOUND, "omsgid %s: no hub settlement", r.Msgid)
	}
	if n <= h.fails {
		return settlement.RemoteReverseAnswer{}, settlement.ErrUnknownOutcome
	}
	return settlement.RemoteReverseAnswer{Outcome: h.outcome}, nil
}

func TestReversalRetriesUntilAcknowledged(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	hub := &flakyHub{fails: 6, outcome: "reversed"}
	env.RegisterActivity(&workflows.Activities{Hub: hub})
	env.ExecuteWorkflow(workflows.ReversalWorkflow, settlement.RemoteReverse{Msgid: "H15010000011202603151000000001"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var out settlement.RemoteReverseAnswer
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, "reversed", out.Outcome)
	require.Equal(t, int32(7), hub.calls.Load(), "six lost attempts, then the acknowledgement")
}

// Backoff grows to minutes: with time skipping, a province unreachable for
// minutes passes in a test and the reversal still lands. (The SDK's test
// environment caps attempts at 10; a real server retries without limit.)
func TestReversalOutlastsAnOutage(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	hub := &flakyHub{fails: 9, outcome: "voided"}
	env.RegisterActivity(&workflows.Activities{Hub: hub})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowExecutionTimeout: 30 * 24 * time.Hour})
	start := env.Now()
	env.ExecuteWorkflow(workflows.ReversalWorkflow, settlement.RemoteReverse{Msgid: "H15010000011202603151000000002"})
	require.NoError(t, env.GetWorkflowError())
	require.Greater(t, env.Now().Sub(start), 8*time.Minute)
	require.Equal(t, int32(10), hub.calls.Load())
}

func TestReversalRefusedIsNotRetried(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	hub := &flakyHub{refuse: true}
	env.RegisterActivity(&workflows.Activities{Hub: hub})
	env.ExecuteWorkflow(workflows.ReversalWorkflow, settlement.RemoteReverse{Msgid: "H15010000011202603151000000003"})
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, int32(1), hub.calls.Load())
}
