package workflows

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// HubTaskQueue is where the hub's clearing workflows run.
const HubTaskQueue = "medsettle-hub"

// ClearingInput starts the clearing of a period across provinces.
type ClearingInput struct {
	Period    settlement.Period
	Provinces []string
	// ConfirmWithin is how long an insured province has to confirm a
	// statement before the hub escalates and carries the items over.
	ConfirmWithin time.Duration
	// TopUpShare: an advance fund below this share of the monthly average
	// payment is topped up (default 0.5).
	TopUpShare rules.Ratio
	// ActivityTimeout bounds one attempt of an activity (default 1 min): a
	// worker that dies mid-activity is noticed after this long.
	ActivityTimeout time.Duration
}

// PairResult is the clearing between one treatment and one insured province.
type PairResult struct {
	Treatment string               `json:"treatment_province"`
	Insured   string               `json:"insured_province"`
	Claimed   rules.Money          `json:"claimed"`
	Paid      rules.Money          `json:"paid"`
	Disputed  []settlement.Verdict `json:"disputed,omitempty"`
	Escalated bool                 `json:"escalated,omitempty"` // the insured province did not answer in time
	TopUp     rules.Money          `json:"top_up"`
}

// ClearingResult is the outcome of a period's clearing.
type ClearingResult struct {
	Period settlement.Period `json:"period"`
	Pairs  []PairResult      `json:"pairs"`
	// Net is each province's net position: what it was paid minus what it paid.
	// It sums to zero across provinces.
	Net map[string]rules.Money `json:"net"`
}

// ClearingWorkflow is the monthly clearing the hub runs: it collects every
// province's statements, asks each insured province to confirm item by item
// (escalating, not losing, when one does not answer by its deadline), has the
// insured province pay the confirmed items out of its advance fund and the
// treatment province record the receipt, carries disputed items into the
// next period, and tops advance funds up. Every activity is idempotent, so a
// worker restarted mid-step, or a repeated confirmation, pays nothing twice.
func ClearingWorkflow(ctx workflow.Context, in ClearingInput) (ClearingResult, error) {
	res := ClearingResult{Period: in.Period, Net: map[string]rules.Money{}}
	if in.TopUpShare == 0 {
		in.TopUpShare = 5000
	}
	if in.ConfirmWithin == 0 {
		in.ConfirmWithin = 72 * time.Hour
	}
	if in.ActivityTimeout == 0 {
		in.ActivityTimeout = time.Minute
	}
	steady := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: in.ActivityTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute},
	})
	var a *ClearingActivities

	// 1. Statements from every province, in parallel.
	futures := make([]workflow.Future, len(in.Provinces))
	for i, p := range in.Provinces {
		futures[i] = workflow.ExecuteActivity(steady, a.Statements, p, in.Period)
	}
	var all []settlement.Statement
	for i, f := range futures {
		var sts []settlement.Statement
		if err := f.Get(ctx, &sts); err != nil {
			return res, fmt.Errorf("statements of %s: %w", in.Provinces[i], err)
		}
		all = append(all, sts...)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Treatment != all[j].Treatment {
			return all[i].Treatment < all[j].Treatment
		}
		return all[i].Insured < all[j].Insured
	})

	// 2. Each insured province confirms, within its deadline.
	for _, st := range all {
		pr := PairResult{Treatment: st.Treatment, Insured: st.Insured, Claimed: st.Total}
		verdicts, err := confirmBy(ctx, st, in)
		switch {
		case errors.Is(err, errNoAnswer):
			// Escalation, not loss: nothing is paid, every item stays open
			// and is claimed again next period.
			pr.Escalated = true
			workflow.GetLogger(ctx).Warn("insured province did not confirm in time: escalated",
				"period", in.Period, "insured", st.Insured, "treatment", st.Treatment, "items", len(st.Items))
			res.Pairs = append(res.Pairs, pr)
			continue
		case err != nil:
			return res, fmt.Errorf("confirmation by %s: %w", st.Insured, err)
		}
		for _, v := range verdicts {
			if !v.Confirmed {
				pr.Disputed = append(pr.Disputed, v)
			}
		}
		// 3. The insured province pays, then the treatment province records it.
		if err := workflow.ExecuteActivity(steady, a.PostPayment, st, verdicts).Get(ctx, &pr.Paid); err != nil {
			return res, fmt.Errorf("payment by %s: %w", st.Insured, err)
		}
		var received rules.Money
		if err := workflow.ExecuteActivity(steady, a.PostReceipt, st, verdicts).Get(ctx, &received); err != nil {
			return res, fmt.Errorf("receipt by %s: %w", st.Treatment, err)
		}
		if received != pr.Paid {
			return res, fmt.Errorf("%s paid %s but %s received %s", st.Insured, pr.Paid, st.Treatment, received)
		}
		// 4. Top the advance fund up when it ran low.
		if err := workflow.ExecuteActivity(steady, a.TopUp, st.Insured, in.Period, st.Treatment, in.TopUpShare).Get(ctx, &pr.TopUp); err != nil {
			return res, fmt.Errorf("top-up by %s: %w", st.Insured, err)
		}
		res.Net[st.Treatment] += pr.Paid
		res.Net[st.Insured] -= pr.Paid
		res.Pairs = append(res.Pairs, pr)
	}
	return res, nil
}

// errNoAnswer means the insured province did not confirm by its deadline.
var errNoAnswer = errors.New("no confirmation by the deadline")

// confirmBy asks the insured province to confirm, retrying until it answers
// or ConfirmWithin has passed. The deadline is a workflow timer rather than
// an activity timeout, so that it is the same whatever the retry policy.
func confirmBy(ctx workflow.Context, st settlement.Statement, in ClearingInput) ([]settlement.Verdict, error) {
	actx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	actx = workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		StartToCloseTimeout: in.ActivityTimeout,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: 10 * time.Minute, MaximumAttempts: math.MaxInt32},
	})
	var a *ClearingActivities
	var verdicts []settlement.Verdict
	var err error
	answered := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(workflow.ExecuteActivity(actx, a.Confirm, st), func(f workflow.Future) {
		answered = true
		err = f.Get(ctx, &verdicts)
	})
	sel.AddFuture(workflow.NewTimer(ctx, in.ConfirmWithin), func(workflow.Future) {})
	sel.Select(ctx)
	if !answered {
		return nil, errNoAnswer
	}
	return verdicts, err
}

// ClearingActivities reach the provinces. Peers maps a province code to its platform.
type ClearingActivities struct {
	Peers map[string]settlement.ClearingPeer
}

func (a *ClearingActivities) peer(province string) (settlement.ClearingPeer, error) {
	p := a.Peers[province]
	if p == nil {
		return nil, temporal.NewNonRetryableApplicationError("unknown province "+province, "unknown_province", nil)
	}
	return p, nil
}

// Statements asks a province for its statements of a period.
func (a *ClearingActivities) Statements(ctx context.Context, province string, period settlement.Period) ([]settlement.Statement, error) {
	p, err := a.peer(province)
	if err != nil {
		return nil, err
	}
	return p.Statements(ctx, period)
}

// Confirm asks the insured province of st to confirm its items.
func (a *ClearingActivities) Confirm(ctx context.Context, st settlement.Statement) ([]settlement.Verdict, error) {
	p, err := a.peer(st.Insured)
	if err != nil {
		return nil, err
	}
	return p.Confirm(ctx, st)
}

// PostPayment has the insured province pay the confirmed items.
func (a *ClearingActivities) PostPayment(ctx context.Context, st settlement.Statement, v []settlement.Verdict) (rules.Money, error) {
	p, err := a.peer(st.Insured)
	if err != nil {
		return 0, err
	}
	return p.PostPayment(ctx, st, v)
}

// PostReceipt has the treatment province record the payment.
func (a *ClearingActivities) PostReceipt(ctx context.Context, st settlement.Statement, v []settlement.Verdict) (rules.Money, error) {
	p, err := a.peer(st.Treatment)
	if err != nil {
		return 0, err
	}
	return p.PostReceipt(ctx, st, v)
}

// TopUp has the insured province refill its advance fund for a treatment province.
func (a *ClearingActivities) TopUp(ctx context.Context, insured string, period settlement.Period, treatment string, share rules.Ratio) (rules.Money, error) {
	p, err := a.peer(insured)
	if err != nil {
		return 0, err
	}
	return p.TopUp(ctx, period, treatment, share)
}

// ClearingID is the workflow id of a period's clearing: one clearing per period.
func ClearingID(period settlement.Period) string { return "clearing-" + string(period) }
