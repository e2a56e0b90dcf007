package settlement

import (
	"context"
	"errors"
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
	var out ReverseAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (ReverseAnswer, string, error) {
			a, err := e.reverse(ctx, tx, msg, omsgid, oinfno, psnNo, now)
			return a, omsgid, err
		})
		return err
	})
	var rc *remoteCancel
	if errors.As(err, &rc) {
		return e.reverseRemote(ctx, msg, omsgid, rc.settlement, now)
	}
	return out, err
}

func (e *Engine) reverse(ctx context.Context, tx Tx, msg Msg, omsgid, oinfno, psnNo string, now time.Time) (ReverseAnswer, error) {
	ans := ReverseAnswer{Omsgid: omsgid}
	if omsgid == "" || omsgid == msg.ID {
		return ans, Errorf(EINVALID, "omsgid %q: name the message to reverse", omsgid)
	}
	if !reversible[oinfno] {
		return ans, Errorf(EINVALID, "oinfno %q cannot be reversed", oinfno)
	}
	om, err := tx.Message(ctx, omsgid)
	if err != nil {
		return ans, err
	}
	if om == nil {
		ans.Outcome = "voided"
		return ans, tx.PutMessage(ctx, &Message{Msgid: omsgid, Infno: oinfno, Institution: msg.Institution,
			Status: MessageReversed, Created: now, Answer: []byte("null")})
	}
	if om.Institution != msg.Institution {
		return ans, Errorf(ENOTFOUND, "omsgid %s: no such message of %s", omsgid, msg.Institution)
	}
	if om.Infno != oinfno {
		return ans, Errorf(EINVALID, "oinfno %s: message %s was a %s", oinfno, omsgid, om.Infno)
	}
	if om.Status == MessageReversed {
		ans.Outcome = "already_reversed"
		return ans, nil
	}
	switch oinfno {
	case "2207", "2304", "2102":
		s, err := tx.Settlement(ctx, om.Ref)
		if err != nil {
			return ans, err
		}
		if s != nil && psnNo != "" && s.PsnNo != psnNo {
			return ans, Errorf(EINVALID, "psn_no %s is not the person of message %s", psnNo, omsgid)
		}
		if s != nil && s.Status == Settled {
			r, err := e.cancel(ctx, tx, msg.Institution, CancelInput{SetlID: s.SetlID}, msg.ID, now)
			if err != nil {
				return ans, err
			}
			a := answerOf(r)
			ans.Setl = &a
		}
	case "2201", "2401":
		v, err := tx.Visit(ctx, om.Ref)
		if err != nil {
			return ans, err
		}
		if v != nil && psnNo != "" && v.PsnNo != psnNo {
			return ans, Errorf(EINVALID, "psn_no %s is not the person of message %s", psnNo, omsgid)
		}
		if v != nil && v.Status == VisitSettled {
			return ans, Errorf(ECONFLICT, "visit %s is settled: reverse or cancel its settlement first", v.MdtrtID)
		}
		if v != nil && v.Status == VisitOpen {
			v.Status = VisitCancelled
			if err := tx.PutVisit(ctx, v); err != nil {
				return ans, err
			}
		}
	case "2204", "2301":
		mdtrtID, bchno, _ := cut(om.Ref, "/")
		v, err := tx.Visit(ctx, mdtrtID)
		if err != nil {
			return ans, err
		}
		if v != nil && psnNo != "" && v.PsnNo != psnNo {
			return ans, Errorf(EINVALID, "psn_no %s is not the person of message %s", psnNo, omsgid)
		}
		if v != nil && v.Status != VisitOpen {
			return ans, Errorf(ECONFLICT, "visit %s is %s: its lines are final", v.MdtrtID, v.Status)
		}
		if _, err := tx.WithdrawBatch(ctx, mdtrtID, bchno); err != nil {
			return ans, err
		}
	}
	om.Status = MessageReversed
	ans.Outcome = "reversed"
	return ans, tx.PutMessage(ctx, om)
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
