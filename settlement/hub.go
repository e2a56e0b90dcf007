package settlement

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// Role says which side of a settlement a deployment records.
type Role string

const (
	RoleLocal     Role = "local"     // insured and treated in this deployment
	RoleTreatment Role = "treatment" // treated here, insured in another province
	RoleInsured   Role = "insured"   // insured here, treated in another province
)

// ClearingAccount is the account of what this deployment's province is owed
// by (debit) or owes to (credit) another province.
func ClearingAccount(province string) string { return "clearing:" + province }

// Hub is the national cross-region platform as one province sees it. The
// adapter may fail with ErrUnknownOutcome when a request may or may not have
// reached the other side (a time-out, a lost answer): the caller must then
// reverse, never resend under another msgid.
type Hub interface {
	// Settle asks the insured province to settle (or, with Preview, to price) a claim treated here.
	Settle(ctx context.Context, c RemoteClaim) (RemoteAnswer, error)
	// Reverse asks the insured province to undo message Msgid whatever became of it. Idempotent.
	Reverse(ctx context.Context, r RemoteReverse) (RemoteReverseAnswer, error)
}

// ErrUnknownOutcome means the other side may or may not have acted.
var ErrUnknownOutcome = errors.New("hub: outcome unknown")

// Reverser carries a reversal through to the insured province until it is
// acknowledged, surviving restarts (the Temporal workflow in workflows/), so
// that both sides always agree.
type Reverser interface {
	StartReversal(ctx context.Context, r RemoteReverse) error
}

// RemoteClaim is what the treatment side sends: the visit, the lines priced
// with its catalog, the institution and the settlement time.
type RemoteClaim struct {
	Msgid             string       `json:"msgid"`
	Preview           bool         `json:"preview,omitempty"`
	TreatmentProvince string       `json:"treatment_province"`
	Institution       string       `json:"fixmedins_code"`
	InstitutionRegion string       `json:"mdtrtarea_admvs"`
	InstitutionLevel  int          `json:"hosp_lv"`
	InsuredRegion     string       `json:"insuplc_admdvs"`
	PsnNo             string       `json:"psn_no"`
	MdtrtID           string       `json:"mdtrt_id"`
	MedType           string       `json:"med_type"`
	SetlTime          time.Time    `json:"setl_time"`
	UseAccount        bool         `json:"acct_used"`
	Lines             []RemoteLine `json:"feedetail"`
}

// RemoteLine is a fee line with the treatment side's classification.
type RemoteLine struct {
	SN     string           `json:"feedetl_sn"`
	Code   string           `json:"med_list_codg"`
	Cnt    string           `json:"cnt"`
	Pric   string           `json:"pric"`
	Amount rules.Money      `json:"det_item_fee_sumamt"`
	Priced rules.LineResult `json:"priced"`
}

// RemoteAnswer is the insured side's settlement.
type RemoteAnswer struct {
	SetlID string              `json:"setl_id"`
	Info   rules.Setlinfo      `json:"setlinfo"`
	Detail []rules.FundPayment `json:"setldetail"`
}

// RemoteReverse names a message to undo on the insured side.
type RemoteReverse struct {
	Msgid             string `json:"omsgid"`
	Institution       string `json:"fixmedins_code"`
	InsuredRegion     string `json:"insuplc_admdvs"`
	TreatmentProvince string `json:"treatment_province"`
	PsnNo             string `json:"psn_no"`
}

// RemoteReverseAnswer says what the insured side did.
type RemoteReverseAnswer struct {
	Outcome string `json:"outcome"` // reversed, voided, already_reversed
}

// HubInfno names hub messages in the message log, apart from counter ones.
const (
	HubSettleInfno  = "hub-settle"
	HubReverseInfno = "hub-reverse"
)

// HubPeer is what a province serves to the hub: the insured side of
// cross-province settlements. *Engine implements it.
type HubPeer interface {
	SettleForHub(ctx context.Context, c RemoteClaim) (RemoteAnswer, error)
	ReverseForHub(ctx context.Context, r RemoteReverse) (RemoteReverseAnswer, error)
}

// InlineReverser reverses at once, retrying a few times in the caller's
// goroutine. It does not survive a restart: production uses the Temporal
// workflow of package workflows, which does.
type InlineReverser struct {
	Hub      Hub
	Attempts int           // default 5
	Backoff  time.Duration // default 100 ms, doubled each attempt
}

// StartReversal implements Reverser.
func (r *InlineReverser) StartReversal(ctx context.Context, rev RemoteReverse) error {
	attempts, backoff := r.Attempts, r.Backoff
	if attempts == 0 {
		attempts = 5
	}
	if backoff == 0 {
		backoff = 100 * time.Millisecond
	}
	var err error
	for i := 0; i < attempts; i++ {
		if _, err = r.Hub.Reverse(ctx, rev); err == nil {
			return nil
		}
		select {
		case <-time.After(backoff << i):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("reversing msgid %s: %w", rev.Msgid, err)
}
