package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
)

// With the SDK's test environment and its time skipping: a province that
// never confirms is escalated after its deadline (three days later, in
// virtual time), the other pair is paid, and the net positions sum to zero.
func TestClearingEscalatesAfterTheDeadline(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	a := &workflows.ClearingActivities{}
	env.RegisterActivity(a)

	item := func(id string, m rules.Money) settlement.ClearingItem {
		return settlement.ClearingItem{OrigSetlID: id, Kind: settlement.TxnSettle, SetlID: id, PsnNo: "P", Amount: m}
	}
	hubei := settlement.Statement{Period: "2026-03", Treatment: "150000", Insured: "420000",
		Items: []settlement.ClearingItem{item("S1", 10000), item("S2", 2500)}, Total: 12500}
	heilongjiang := settlement.Statement{Period: "2026-03", Treatment: "150000", Insured: "230000",
		Items: []settlement.ClearingItem{item("S3", 7000)}, Total: 7000}

	env.OnActivity(a.Statements, mock.Anything, "150000", settlement.Period("2026-03")).Return([]settlement.Statement{hubei, heilongjiang}, nil)
	env.OnActivity(a.Statements, mock.Anything, mock.Anything, settlement.Period("2026-03")).Return(nil, nil)
	verdicts := []settlement.Verdict{{Item: hubei.Items[0], Confirmed: true}, {Item: hubei.Items[1], Reason: "amount differs"}}
	env.OnActivity(a.Confirm, mock.Anything, hubei).Return(verdicts, nil)
	// Heilongjiang never answers: every attempt times out until the deadline.
	env.OnActivity(a.Confirm, mock.Anything, heilongjiang).Return(func(ctx context.Context, st settlement.Statement) ([]settlement.Verdict, error) {
		return nil, errors.New("no answer from 230000")
	})
	env.OnActivity(a.PostPayment, mock.Anything, hubei, verdicts).Return(rules.Money(10000), nil).Once()
	env.OnActivity(a.PostReceipt, mock.Anything, hubei, verdicts).Return(rules.Money(10000), nil).Once()
	env.OnActivity(a.TopUp, mock.Anything, "420000", settlement.Period("2026-03"), "150000", rules.Ratio(5000)).Return(rules.Money(0), nil)

	start := env.Now()
	env.ExecuteWorkflow(workflows.ClearingWorkflow, workflows.ClearingInput{Period: "2026-03",
		Provinces: []string{"150000", "420000", "230000"}, ConfirmWithin: 72 * time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.ClearingResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Len(t, res.Pairs, 2)
	byInsured := map[string]workflows.PairResult{}
	for _, p := range res.Pairs {
		byInsured[p.Insured] = p
	}
	require.True(t, byInsured["230000"].Escalated)
	require.Zero(t, byInsured["230000"].Paid, "nothing is paid without a confirmation")
	require.Equal(t, rules.Money(10000), byInsured["420000"].Paid)
	require.Len(t, byInsured["420000"].Disputed, 1)
	require.Equal(t, rules.Money(10000), res.Net["150000"])
	require.Equal(t, rules.Money(-10000), res.Net["420000"])
	require.GreaterOrEqual(t, env.Now().Sub(start), 72*time.Hour, "the deadline passed in virtual time")
	env.AssertExpectations(t)
}
