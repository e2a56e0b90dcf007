package workflows_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
)

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
