// Package workflows holds the Temporal workflows of medsettle: the durable
// reversal of an interrupted cross-province settlement (and, later, the
// monthly clearing between provinces).
//
// Workflows only orchestrate; every effect is an activity that calls an
// idempotent operation of the engine or the hub, so a retried or replayed
// activity never acts twice (after Temporal's money-transfer sample).
package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/medsettle/medsettle/settlement"
)

// TaskQueue is the task queue of a province's workers: each province reverses
// through its own connection to the hub.
func TaskQueue(province string) string { return "medsettle-" + province }

// refusedType marks a reversal the insured province refused for good (it
// names a message of another institution, say): retrying cannot help, so
// the workflow fails and the failure is there for an operator to see.
const refusedType = "refused"

// ReversalWorkflow carries the reversal of a cross-province message to the
// insured province until it is acknowledged. The insured side's reversal is
// idempotent (a settlement is cancelled once; a message that never arrived
// is voided), so retrying forever is safe, and the workflow survives restarts
// of either side or of its worker.
func ReversalWorkflow(ctx workflow.Context, rev settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			MaximumAttempts:        0, // until acknowledged
			NonRetryableErrorTypes: []string{refusedType},
		},
	})
	var a *Activities
	var out settlement.RemoteReverseAnswer
	err := workflow.ExecuteActivity(ctx, a.ReverseRemote, rev).Get(ctx, &out)
	return out, err
}

// Activities are the effects workflows ask for. One value per province: Hub
// is that province's connection to the national hub.
type Activities struct {
	Hub settlement.Hub
}

// ReverseRemote asks the insured province, through the hub, to undo a message.
func (a *Activities) ReverseRemote(ctx context.Context, rev settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	out, err := a.Hub.Reverse(ctx, rev)
	if err != nil && !errors.Is(err, settlement.ErrUnknownOutcome) && settlement.ErrorCode(err) != settlement.EINTERNAL {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), refusedType, err)
	}
	if err != nil {
		return out, fmt.Errorf("reversing %s: %w", rev.Msgid, err)
	}
	return out, nil
}

// Register adds a province's reversal workflow and activities to a worker.
func Register(r worker.Registry, a *Activities) {
	r.RegisterWorkflow(ReversalWorkflow)
	r.RegisterActivity(a)
}

// RegisterHub adds the hub's clearing workflow and activities to a worker.
func RegisterHub(r worker.Registry, a *ClearingActivities) {
	r.RegisterWorkflow(ClearingWorkflow)
	r.RegisterActivity(a)
}

// Reverser implements settlement.Reverser by starting ReversalWorkflow. The
// workflow id is derived from the msgid, so starting twice for one message
// starts one workflow.
type Reverser struct {
	Client   client.Client
	Province string
}

// ReversalID is the workflow id of the reversal of msgid.
func ReversalID(msgid string) string { return "reverse-" + msgid }

// StartReversal implements settlement.Reverser. It returns once the workflow
// is durably started, not when the reversal is done.
func (r *Reverser) StartReversal(ctx context.Context, rev settlement.RemoteReverse) error {
	_, err := r.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       ReversalID(rev.Msgid),
		TaskQueue:                TaskQueue(r.Province),
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, ReversalWorkflow, rev)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil // it ran to completion before: the reversal is done
	}
	if err != nil {
		return fmt.Errorf("starting the reversal of %s: %w", rev.Msgid, err)
	}
	return nil
}
