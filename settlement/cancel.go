package settlement

import (
	"context"
	"slices"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// CancelInput is 2208/2305/2103.
type CancelInput struct {
	SetlID  string
	MdtrtID string
	PsnNo   string
	// MedTypes, when set, are the med_types this cancel may undo: 2208
	// cancels outpatient settlements, 2305 inpatient ones, 2103 pharmacy sales.
	MedTypes []string
}

// undone is what cancelling decided: the reversal written here, or the
// settlement whose insured side is in another province (remote), to be
// reversed there through the hub before this side records its reversal.
type undone struct {
	reversal *Settlement
	remote   *Settlement
}

// Cancel reverses a standing settlement: a new settlement with every amount
// negated, a ledger transaction negating the original, counters restored by
// the original's delta, and the visit open again.
// Errors: ENOTFOUND, EINVALID (mdtrt_id/psn_no do not match), ECONFLICT (already cancelled).
func (e *Engine) Cancel(ctx context.Context, msg Msg, in CancelInput) (SettleAnswer, error) {
	now := e.now()
	var remote *Settlement
	out, here, err := onceHere(ctx, e.Store, msg, now, Prefetch{}, func(ctx context.Context, tx Tx) (SettleAnswer, string, bool, error) {
		u, err := e.cancel(ctx, tx, msg.Institution, in, msg.ID, now)
		if err != nil || u.remote != nil {
			remote = u.remote
			return SettleAnswer{}, "", false, err
		}
		return answerOf(u.reversal), u.reversal.SetlID, true, nil
	})
	if err == nil && !here {
		return e.cancelRemote(ctx, msg, remote, now)
	}
	return out, err
}

func (e *Engine) cancel(ctx context.Context, tx Tx, inst string, in CancelInput, msgid string, now time.Time) (undone, error) {
	s, err := tx.Settlement(ctx, in.SetlID)
	if err != nil {
		return undone{}, err
	}
	if s == nil || s.Institution != inst || s.Reverses != "" {
		return undone{}, Errorf(ENOTFOUND, "setl_id %q: no such settlement at %s", in.SetlID, inst)
	}
	if in.MdtrtID != "" && in.MdtrtID != s.MdtrtID {
		return undone{}, Errorf(EINVALID, "mdtrt_id %s is not the visit of settlement %s", in.MdtrtID, s.SetlID)
	}
	if in.PsnNo != "" && in.PsnNo != s.PsnNo {
		return undone{}, Errorf(EINVALID, "psn_no %s is not the person of settlement %s", in.PsnNo, s.SetlID)
	}
	if len(in.MedTypes) > 0 && !slices.Contains(in.MedTypes, s.MedType) {
		return undone{}, Errorf(EINVALID, "setl_id %s is a med_type %s settlement, which this transaction does not cancel", s.SetlID, s.MedType)
	}
	if s.Status != Settled {
		return undone{}, Errorf(ECONFLICT, "settlement %s is already cancelled", s.SetlID)
	}
	if s.Role == RoleTreatment {
		return undone{remote: s}, nil
	}
	r, err := e.commitReversal(ctx, tx, s, msgid, now)
	return undone{reversal: r}, err
}

func negDetail(d []rules.FundPayment) []rules.FundPayment {
	out := make([]rules.FundPayment, len(d))
	for i, p := range d {
		out[i] = rules.FundPayment{FundPayType: p.FundPayType, FundPayamt: -p.FundPayamt, CrtPaybLmt: p.CrtPaybLmt}
	}
	return out
}
