package settlement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/medsettle/medsettle/rules"
)

// The insured side of a cross-province settlement (see cross.go): what the
// hub asks of the province where the person is insured.

func remoteDigest(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// SettleForHub is the insured side of a cross-province settlement, called by
// the hub: the person's policy and counters, the lines as classified by the
// treatment province's catalog. Idempotent by the treatment side's msgid.
func (e *Engine) SettleForHub(ctx context.Context, c RemoteClaim) (RemoteAnswer, error) {
	if e.remote(c.InsuredRegion) {
		return RemoteAnswer{}, Errorf(ENOTFOUND, "insuplc_admdvs %s is not a region of province %s", c.InsuredRegion, e.Province)
	}
	inst := e.Rules.Institutions[c.Institution]
	if inst == nil || inst.Admdvs != c.InstitutionRegion {
		return RemoteAnswer{}, Errorf(EINVALID, "fixmedins_code %s is not an institution of %s", c.Institution, c.InstitutionRegion)
	}
	now := e.now()
	if c.Preview {
		var out RemoteAnswer
		err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
			s, _, err := e.priceForHub(ctx, tx, c, "") // a preview answers no setl_id
			if err == nil {
				out = RemoteAnswer{Info: s.Info, Detail: s.Detail}
			}
			return err
		})
		return out, err
	}
	msg := Msg{ID: c.Msgid, Infno: HubSettleInfno, Institution: c.Institution, Digest: remoteDigest(c)}
	return once(ctx, e.Store, msg, now, Prefetch{}, func(ctx context.Context, tx Tx) (RemoteAnswer, string, error) {
		s, yc, err := e.priceForHub(ctx, tx, c, NewID("S"))
		if err != nil {
			return RemoteAnswer{}, "", err
		}
		if err := e.commit(ctx, tx, s, writes{kind: TxnSettle, counters: &yc}); err != nil {
			return RemoteAnswer{}, "", err
		}
		return RemoteAnswer{SetlID: s.SetlID, Info: s.Info, Detail: s.Detail}, s.SetlID, nil
	})
}

// priceForHub prices claim c as settlement setlID of the insured side, with
// the person's counters after it, without writing anything.
func (e *Engine) priceForHub(ctx context.Context, tx Tx, c RemoteClaim, setlID string) (*Settlement, YearCounters, error) {
	var yc YearCounters
	day := DateOf(c.SetlTime)
	p, err := e.person(ctx, tx, c.PsnNo)
	if err != nil {
		return nil, yc, err
	}
	if p.InsuredRegion != c.InsuredRegion {
		return nil, yc, Errorf(EINVALID, "psn_no %s is insured in %s, not %s", p.PsnNo, p.InsuredRegion, c.InsuredRegion)
	}
	if yc, err = tx.Counters(ctx, p.PsnNo, day.Year()); err != nil {
		return nil, yc, err
	}
	claim := e.claimFor(p, c.Institution, c.MedType, day, c.UseAccount, yc.Counters)
	for _, l := range c.Lines {
		cl, err := claimLine(l.SN, l.Code, l.Cnt, l.Pric, l.Amount)
		if err != nil {
			return nil, yc, Errorf(EINVALID, "feedetail[%s]: %v", l.SN, err)
		}
		claim.Lines = append(claim.Lines, cl)
	}
	res, err := e.Rules.Price(claim)
	if err != nil {
		return nil, yc, fromRules(err)
	}
	// 就医地目录: the lines are the treatment province's to classify. Both
	// sides hold the national catalogs; a disagreement means their
	// catalog versions differ, which must be fixed, not guessed around.
	for i := range res.Lines {
		if !sameClass(res.Lines[i], c.Lines[i].Priced) {
			return nil, yc, Errorf(EINVALID, "feedetail[%s]: classified differently here (%+v) than at the treatment side (%+v): catalog versions differ",
				c.Lines[i].SN, res.Lines[i], c.Lines[i].Priced)
		}
	}
	s := &Settlement{SetlID: setlID, MdtrtID: c.MdtrtID, PsnNo: p.PsnNo, Institution: c.Institution,
		InsuredRegion: p.InsuredRegion, TreatmentRegion: c.InstitutionRegion, MedType: c.MedType, Insutype: p.Insutype,
		SetlTime: c.SetlTime, Year: day.Year(), Info: res.Setlinfo, Detail: res.Detail,
		Delta: DeltaOf(yc.Counters, res.After), Status: Settled, Msgid: c.Msgid, Role: RoleInsured}
	yc.Counters = res.After
	return s, yc, nil
}

// ReverseForHub is the insured side of a reversal: it undoes message Msgid of
// the treatment side, whatever became of it. Idempotent.
func (e *Engine) ReverseForHub(ctx context.Context, r RemoteReverse) (RemoteReverseAnswer, error) {
	now := e.now()
	var out RemoteReverseAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		om, err := tx.Message(ctx, r.Msgid)
		if err != nil {
			return err
		}
		switch {
		case om == nil:
			out.Outcome = "voided"
			return tx.PutMessage(ctx, &Message{Msgid: r.Msgid, Infno: HubSettleInfno, Institution: r.Institution,
				Status: MessageReversed, Created: now, Answer: []byte("null")})
		case om.Institution != r.Institution || om.Infno != HubSettleInfno:
			return Errorf(ENOTFOUND, "omsgid %s: no hub settlement of %s", r.Msgid, r.Institution)
		case om.Status == MessageReversed:
			out.Outcome = "already_reversed"
			return nil
		}
		s, err := tx.Settlement(ctx, om.Ref)
		if err != nil {
			return err
		}
		if s != nil && s.Status == Settled {
			if _, err := e.commitReversal(ctx, tx, s, "rev:"+r.Msgid, now); err != nil {
				return err
			}
		}
		om.Status = MessageReversed
		out.Outcome = "reversed"
		return tx.PutMessage(ctx, om)
	})
	return out, err
}

// sameClass compares what a line's classification decides: its split and class.
func sameClass(a, b rules.LineResult) bool {
	return a.Amount == b.Amount && a.Fulamt == b.Fulamt && a.Over == b.Over && a.Pre == b.Pre &&
		a.Inscp == b.Inscp && a.Level == b.Level
}
