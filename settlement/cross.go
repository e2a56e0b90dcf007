package settlement

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// Cross-province settlement (跨省异地就医). A deployment hosts the pooling
// regions of one province (Engine.Province). When a person insured in another
// province is treated here, the treatment side prices the lines with its own
// catalog and sends the claim through the national hub to the insured
// province, which applies its policy and the person's counters, posts its side
// and answers. The treatment side then posts its own side and answers the
// counter. Each side's ledger balances on its own:
//
//	insured side:   fund:<region>:*, psnacct:<psn>  (debits)  =  clearing:<treatment province> (credit: payable)
//	treatment side: clearing:<insured province> + cash:<inst> (debits)  =  medins:<inst> (credit)
//
// so the treatment province's receivable equals the insured province's
// payable, settlement by settlement, until the monthly clearing closes both.

func (e *Engine) remote(region string) bool {
	return e.Province != "" && e.Rules.Province(region) != e.Province
}

// remoteClaim is what pricing decides for a person insured in another
// province (priced.remote): what was read, so the hub request can be built.
type remoteClaim struct {
	visit   *Visit
	lines   []FeeLine
	person  *Person
	medType string
	day     rules.Date
}

func (e *Engine) remoteRequest(inst string, rc *remoteClaim, msgid string, useAccount bool, now time.Time) (RemoteClaim, error) {
	in := e.Rules.Institutions[inst]
	if in == nil {
		return RemoteClaim{}, Errorf(EFORBIDDEN, "fixmedins_code %s is not a designated institution", inst)
	}
	req := RemoteClaim{Msgid: msgid, TreatmentProvince: e.Province, Institution: inst, InstitutionRegion: in.Admdvs,
		InstitutionLevel: in.Level, InsuredRegion: rc.person.InsuredRegion, PsnNo: rc.person.PsnNo,
		MdtrtID: rc.visit.MdtrtID, MedType: rc.medType, SetlTime: now.UTC().Truncate(time.Microsecond), UseAccount: useAccount}
	for _, l := range rc.lines {
		req.Lines = append(req.Lines, RemoteLine{SN: l.SN, Code: l.Code, Cnt: l.Cnt, Pric: l.Pric, Amount: l.Amount, Priced: l.Priced})
	}
	return req, nil
}

func (e *Engine) preSettleRemote(ctx context.Context, inst string, in SettleInput, rc *remoteClaim, now time.Time) (SettleAnswer, error) {
	if e.Hub == nil {
		return SettleAnswer{}, Errorf(EINVALID, "psn_no %s is insured in another province and no hub is configured", rc.person.PsnNo)
	}
	req, err := e.remoteRequest(inst, rc, "", in.UseAccount, now)
	if err != nil {
		return SettleAnswer{}, err
	}
	req.Preview = true
	a, err := e.Hub.Settle(ctx, req)
	if err != nil {
		return SettleAnswer{}, err
	}
	return SettleAnswer{MdtrtID: rc.visit.MdtrtID, PsnNo: rc.person.PsnNo, MedType: rc.medType,
		Insutype: rc.person.Insutype, Info: a.Info, Detail: a.Detail, ClrOptins: rc.person.InsuredRegion}, nil
}

// settleRemote is the treatment side of a cross-province settlement. The hub
// call happens outside any database transaction; the local side is written
// only once the insured side has answered. When the outcome is unknown the
// message is marked reversed here (a resend is refused) and the reversal is
// carried to the insured side by the Reverser.
func (e *Engine) settleRemote(ctx context.Context, msg Msg, in SettleInput, rc *remoteClaim, now time.Time) (SettleAnswer, error) {
	if e.Hub == nil {
		return SettleAnswer{}, Errorf(EINVALID, "psn_no %s is insured in another province and no hub is configured", rc.person.PsnNo)
	}
	req, err := e.remoteRequest(msg.Institution, rc, msg.ID, in.UseAccount, now)
	if err != nil {
		return SettleAnswer{}, err
	}
	a, err := e.Hub.Settle(ctx, req)
	if err != nil {
		if errors.Is(err, ErrUnknownOutcome) || ErrorCode(err) == EINTERNAL {
			return SettleAnswer{}, e.abandon(ctx, msg, rc)
		}
		return SettleAnswer{}, err // the insured side refused: nothing happened anywhere
	}
	out, err := once(ctx, e.Store, msg, now, Prefetch{}, func(ctx context.Context, tx Tx) (SettleAnswer, string, error) {
		v, err := tx.Visit(ctx, rc.visit.MdtrtID)
		if err != nil {
			return SettleAnswer{}, "", err
		}
		if v == nil || v.Status != VisitOpen {
			return SettleAnswer{}, "", Errorf(ECONFLICT, "visit %s changed while the insured province settled it", rc.visit.MdtrtID)
		}
		s := &Settlement{SetlID: a.SetlID, MdtrtID: v.MdtrtID, PsnNo: rc.person.PsnNo, Institution: msg.Institution,
			InsuredRegion: rc.person.InsuredRegion, TreatmentRegion: req.InstitutionRegion, MedType: rc.medType,
			Insutype: rc.person.Insutype, SetlTime: req.SetlTime, Year: rc.day.Year(), Info: a.Info, Detail: a.Detail,
			Status: Settled, Msgid: msg.ID, Role: RoleTreatment, visit: v, lines: rc.lines}
		v.Status = VisitSettled
		// The person's counters are the insured province's: nothing to update here.
		if err := e.commit(ctx, tx, s, writes{kind: TxnSettle, last: v}); err != nil {
			return SettleAnswer{}, "", err
		}
		return answerOf(s), s.SetlID, nil
	})
	if err != nil && ErrorCode(err) == EINTERNAL {
		// The insured side settled but this side could not record it: undo there.
		return SettleAnswer{}, e.abandon(ctx, msg, rc)
	}
	return out, err
}

// abandon marks msg reversed here and starts its reversal on the insured side.
func (e *Engine) abandon(ctx context.Context, msg Msg, rc *remoteClaim) error {
	// The caller's deadline may be what just expired: recording the outcome
	// and starting the reversal must happen regardless, or a late delivery
	// would leave a settlement standing on the insured side alone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := e.now()
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		m, err := tx.Message(ctx, msg.ID)
		if err != nil || m != nil {
			return err
		}
		return tx.PutMessage(ctx, &Message{Msgid: msg.ID, Infno: msg.Infno, Institution: msg.Institution, Digest: msg.Digest,
			Status: MessageReversed, Created: now, Answer: []byte("null")})
	})
	rev := RemoteReverse{Msgid: msg.ID, Institution: msg.Institution, InsuredRegion: rc.person.InsuredRegion,
		TreatmentProvince: e.Province, PsnNo: rc.person.PsnNo}
	if err == nil && e.Reverser != nil {
		err = e.Reverser.StartReversal(ctx, rev)
	}
	if err != nil {
		return fmt.Errorf("abandoning msgid %s after an unknown outcome: %w", msg.ID, err)
	}
	return Errorf(ECONFLICT, "the insured province did not answer in time: msgid %s is being reversed; settle again under a new msgid", msg.ID)
}

// reverseInsuredSide has the hub reverse the insured side of treatment-side
// settlement s. An unknown outcome is a conflict the counter can retry (what
// names the operation and how to retry it); a refusal is passed on.
func (e *Engine) reverseInsuredSide(ctx context.Context, s *Settlement, what string) error {
	rev := RemoteReverse{Msgid: s.Msgid, Institution: s.Institution, InsuredRegion: s.InsuredRegion,
		TreatmentProvince: e.Province, PsnNo: s.PsnNo}
	if _, err := e.Hub.Reverse(ctx, rev); err != nil {
		if errors.Is(err, ErrUnknownOutcome) || ErrorCode(err) == EINTERNAL {
			return Errorf(ECONFLICT, "the insured province did not confirm %s", what)
		}
		return err
	}
	return nil
}

// cancelRemote cancels a cross-province settlement: the insured side is
// reversed through the hub, then this side records its reversal.
func (e *Engine) cancelRemote(ctx context.Context, msg Msg, s *Settlement, now time.Time) (SettleAnswer, error) {
	if e.Hub == nil {
		return SettleAnswer{}, Errorf(EINVALID, "settlement %s was settled through the hub, and no hub is configured", s.SetlID)
	}
	if err := e.reverseInsuredSide(ctx, s, "the cancellation of "+s.SetlID+"; try again (the same msgid)"); err != nil {
		return SettleAnswer{}, err
	}
	return once(ctx, e.Store, msg, now, Prefetch{}, func(ctx context.Context, tx Tx) (SettleAnswer, string, error) {
		cur, err := tx.Settlement(ctx, s.SetlID)
		if err != nil {
			return SettleAnswer{}, "", err
		}
		if cur == nil || cur.Status != Settled {
			return SettleAnswer{}, "", Errorf(ECONFLICT, "settlement %s is already cancelled", s.SetlID)
		}
		r, err := e.commitReversal(ctx, tx, cur, msg.ID, now)
		if err != nil {
			return SettleAnswer{}, "", err
		}
		return answerOf(r), r.SetlID, nil
	})
}

// reverseRemote is 2601 of a cross-province settlement at the treatment
// side: the insured side is reversed through the hub first, then this side
// cancels its settlement and marks the original message reversed.
func (e *Engine) reverseRemote(ctx context.Context, msg Msg, omsgid string, s *Settlement, now time.Time) (ReverseAnswer, error) {
	if e.Hub == nil {
		return ReverseAnswer{}, Errorf(EINVALID, "settlement %s was settled through the hub, and no hub is configured", s.SetlID)
	}
	if err := e.reverseInsuredSide(ctx, s, "the reversal of "+omsgid+"; send this 2601 again"); err != nil {
		return ReverseAnswer{}, err
	}
	return once(ctx, e.Store, msg, now, Prefetch{}, func(ctx context.Context, tx Tx) (ReverseAnswer, string, error) {
		ans := ReverseAnswer{Omsgid: omsgid, Outcome: "reversed"}
		cur, err := tx.Settlement(ctx, s.SetlID)
		if err != nil {
			return ans, "", err
		}
		if cur != nil && cur.Status == Settled {
			r, err := e.commitReversal(ctx, tx, cur, msg.ID, now)
			if err != nil {
				return ans, "", err
			}
			a := answerOf(r)
			ans.Setl = &a
		}
		om, err := tx.Message(ctx, omsgid)
		if err != nil {
			return ans, "", err
		}
		if om != nil {
			om.Status = MessageReversed
			if err := tx.PutMessage(ctx, om); err != nil {
				return ans, "", err
			}
		}
		return ans, omsgid, nil
	})
}
