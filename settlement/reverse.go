package settlement

import (
	"context"
	"time"
)

// ReverseAnswer is the answer of 2601.
type ReverseAnswer struct {
	Omsgid string `json:"omsgid"`
	// Outcome: "reversed" (what omsgid did is undone), "voided" (omsgid never
	// arrived and never will take effect), "already_reversed".
	Outcome string        `json:"outcome"`
	Setl    *SettleAnswer `json:"setlinfo,omitempty"`
}

// Reverse is 2601 (冲正): it undoes message omsgid whatever its outcome was.
// A settlement that happened is cancelled; a message that never arrived is
// recorded as reversed so that it is refused if it arrives later. Reversing
// twice is harmless. Errors: EINVALID (oinfno does not match or cannot be
// reversed), ECONFLICT (the visit moved on: cancel its settlement first).
func (e *Engine) Reverse(ctx context.Context, msg Msg, omsgid, oinfno, psnNo string) (ReverseAnswer, error) {
	now := e.now()
	var remote *Settlement
	out, here, err := onceHere(ctx, e.Store, msg, now, Prefetch{}, func(ctx context.Context, tx Tx) (ReverseAnswer, string, bool, error) {
		a, r, err := e.reverse(ctx, tx, msg, omsgid, oinfno, psnNo, now)
		remote = r
		return a, omsgid, err == nil && r == nil, err
	})
	if err == nil && !here {
		return e.reverseRemote(ctx, msg, omsgid, remote, now)
	}
	return out, err
}

// reverse undoes message omsgid in tx; a settlement whose insured side is in
// another province is returned instead (remote), to be reversed there first.
func (e *Engine) reverse(ctx context.Context, tx Tx, msg Msg, omsgid, oinfno, psnNo string, now time.Time) (ReverseAnswer, *Settlement, error) {
	ans := ReverseAnswer{Omsgid: omsgid}
	if omsgid == "" || omsgid == msg.ID {
		return ans, nil, Errorf(EINVALID, "omsgid %q: name the message to reverse", omsgid)
	}
	if !reversible[oinfno] {
		return ans, nil, Errorf(EINVALID, "oinfno %q cannot be reversed", oinfno)
	}
	om, err := tx.Message(ctx, omsgid)
	if err != nil {
		return ans, nil, err
	}
	if om == nil {
		ans.Outcome = "voided"
		return ans, nil, tx.PutMessage(ctx, &Message{Msgid: omsgid, Infno: oinfno, Institution: msg.Institution,
			Status: MessageReversed, Created: now, Answer: []byte("null")})
	}
	if om.Institution != msg.Institution {
		return ans, nil, Errorf(ENOTFOUND, "omsgid %s: no such message of %s", omsgid, msg.Institution)
	}
	if om.Infno != oinfno {
		return ans, nil, Errorf(EINVALID, "oinfno %s: message %s was a %s", oinfno, omsgid, om.Infno)
	}
	if om.Status == MessageReversed {
		ans.Outcome = "already_reversed"
		return ans, nil, nil
	}
	switch oinfno {
	case "2207", "2304", "2102":
		u, err := e.reverseSettlement(ctx, tx, msg, om, psnNo, now)
		if err != nil || u.remote != nil {
			return ans, u.remote, err
		}
		if u.reversal != nil {
			a := answerOf(u.reversal)
			ans.Setl = &a
		}
	case "2201", "2401":
		err = reverseVisit(ctx, tx, om, psnNo)
	case "2204", "2301":
		err = reverseBatch(ctx, tx, om, psnNo)
	}
	if err != nil {
		return ans, nil, err
	}
	om.Status = MessageReversed
	ans.Outcome = "reversed"
	return ans, nil, tx.PutMessage(ctx, om)
}

// reverseSettlement cancels the settlement message om made, if it stands.
func (e *Engine) reverseSettlement(ctx context.Context, tx Tx, msg Msg, om *Message, psnNo string, now time.Time) (undone, error) {
	s, err := tx.Settlement(ctx, om.Ref)
	if err != nil {
		return undone{}, err
	}
	if s != nil && psnNo != "" && s.PsnNo != psnNo {
		return undone{}, Errorf(EINVALID, "psn_no %s is not the person of message %s", psnNo, om.Msgid)
	}
	if s == nil || s.Status != Settled {
		return undone{}, nil
	}
	return e.cancel(ctx, tx, msg.Institution, CancelInput{SetlID: s.SetlID}, msg.ID, now)
}

// reverseVisit withdraws the visit message om opened, unless it is settled.
func reverseVisit(ctx context.Context, tx Tx, om *Message, psnNo string) error {
	v, err := tx.Visit(ctx, om.Ref)
	if err != nil {
		return err
	}
	if v != nil && psnNo != "" && v.PsnNo != psnNo {
		return Errorf(EINVALID, "psn_no %s is not the person of message %s", psnNo, om.Msgid)
	}
	if v != nil && v.Status == VisitSettled {
		return Errorf(ECONFLICT, "visit %s is settled: reverse or cancel its settlement first", v.MdtrtID)
	}
	if v != nil && v.Status == VisitOpen {
		v.Status = VisitCancelled
		return tx.PutVisit(ctx, v)
	}
	return nil
}

// reverseBatch withdraws the charge batch message om uploaded, while its visit is open.
func reverseBatch(ctx context.Context, tx Tx, om *Message, psnNo string) error {
	mdtrtID, bchno, _ := cut(om.Ref, "/")
	v, err := tx.Visit(ctx, mdtrtID)
	if err != nil {
		return err
	}
	if v != nil && psnNo != "" && v.PsnNo != psnNo {
		return Errorf(EINVALID, "psn_no %s is not the person of message %s", psnNo, om.Msgid)
	}
	if v != nil && v.Status != VisitOpen {
		return Errorf(ECONFLICT, "visit %s is %s: its lines are final", v.MdtrtID, v.Status)
	}
	_, err = tx.WithdrawBatch(ctx, mdtrtID, bchno)
	return err
}

var reversible = map[string]bool{"2201": true, "2401": true, "2204": true, "2301": true, "2207": true, "2304": true, "2102": true}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}
