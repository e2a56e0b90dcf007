package settlement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

func (e *Engine) remote(region string) bool {
	return e.Province != "" && e.Rules.Province(region) != e.Province
}

// remoteClaim is returned by price when the person is insured in another
// province; it carries what was read so the hub request can be built.
type remoteClaim struct {
	visit   *Visit
	lines   []FeeLine
	person  *Person
	medType string
	day     rules.Date
}

func (r *remoteClaim) Error() string { return "claim of a person insured in another province" }

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
	var out SettleAnswer
	err = e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (SettleAnswer, string, error) {
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
			// The person's counters are the insured province's: nothing to update here.
			if err := e.commitSide(ctx, tx, s, TxnSettle); err != nil {
				return SettleAnswer{}, "", err
			}
			v.Status = VisitSettled
			if err := tx.PutVisit(ctx, v); err != nil {
				return SettleAnswer{}, "", err
			}
			return answerOf(s), s.SetlID, nil
		})
		return err
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

// commitSide writes a settlement with its ledger transaction and outbox
// event; the person's counters are the caller's (commit) or live in another
// province (the treatment side of a cross-province settlement). The chain
// head is read before anything is written, so that the writes go to the
// database together.
func (e *Engine) commitSide(ctx context.Context, tx Tx, s *Settlement, kind string) error {
	chain := ChainOf(s.PsnNo)
	head, err := tx.ChainHead(ctx, chain)
	if err != nil {
		return err
	}
	t := &LedgerTxn{ID: NewID("T"), Chain: chain, Kind: kind, SetlID: s.SetlID, Time: s.SetlTime, Entries: SettlementEntries(s)}
	t.Seal(head.Seq, head.Hash)
	s.LedgerTxnID = t.ID
	ev, err := settlementEvent(s, kind, t)
	if err != nil {
		return err
	}
	if err := tx.AppendLedger(ctx, t, ev); err != nil {
		return err
	}
	return tx.PutSettlement(ctx, s)
}

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
	day := DateOf(c.SetlTime)
	price := func(ctx context.Context, tx Tx) (*Settlement, YearCounters, error) {
		var yc YearCounters
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
		s := &Settlement{SetlID: NewID("S"), MdtrtID: c.MdtrtID, PsnNo: p.PsnNo, Institution: c.Institution,
			InsuredRegion: p.InsuredRegion, TreatmentRegion: c.InstitutionRegion, MedType: c.MedType, Insutype: p.Insutype,
			SetlTime: c.SetlTime, Year: day.Year(), Info: res.Setlinfo, Detail: res.Detail,
			Delta: DeltaOf(yc.Counters, res.After), Status: Settled, Msgid: c.Msgid, Role: RoleInsured}
		yc.Counters = res.After
		return s, yc, nil
	}
	var out RemoteAnswer
	if c.Preview {
		err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
			s, _, err := price(ctx, tx)
			if err == nil {
				out = RemoteAnswer{Info: s.Info, Detail: s.Detail}
			}
			return err
		})
		return out, err
	}
	msg := Msg{ID: c.Msgid, Infno: HubSettleInfno, Institution: c.Institution, Digest: remoteDigest(c)}
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (RemoteAnswer, string, error) {
			s, yc, err := price(ctx, tx)
			if err != nil {
				return RemoteAnswer{}, "", err
			}
			if err := e.commit(ctx, tx, s, yc, TxnSettle); err != nil {
				return RemoteAnswer{}, "", err
			}
			return RemoteAnswer{SetlID: s.SetlID, Info: s.Info, Detail: s.Detail}, s.SetlID, nil
		})
		return err
	})
	return out, err
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
			if _, err := e.cancelSettlement(ctx, tx, s, "rev:"+r.Msgid, now); err != nil {
				return err
			}
		}
		om.Status = MessageReversed
		out.Outcome = "reversed"
		return tx.PutMessage(ctx, om)
	})
	return out, err
}

// remoteCancel is returned by cancel for a settlement whose insured side is
// in another province: that side must be reversed first, outside the local
// transaction.
type remoteCancel struct{ settlement *Settlement }

func (r *remoteCancel) Error() string { return "settlement of a person insured in another province" }

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
	var out SettleAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (SettleAnswer, string, error) {
			cur, err := tx.Settlement(ctx, s.SetlID)
			if err != nil {
				return SettleAnswer{}, "", err
			}
			if cur == nil || cur.Status != Settled {
				return SettleAnswer{}, "", Errorf(ECONFLICT, "settlement %s is already cancelled", s.SetlID)
			}
			r, err := e.cancelSettlement(ctx, tx, cur, msg.ID, now)
			if err != nil {
				return SettleAnswer{}, "", err
			}
			return answerOf(r), r.SetlID, nil
		})
		return err
	})
	return out, err
}

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
	var out ReverseAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (ReverseAnswer, string, error) {
			ans := ReverseAnswer{Omsgid: omsgid, Outcome: "reversed"}
			cur, err := tx.Settlement(ctx, s.SetlID)
			if err != nil {
				return ans, "", err
			}
			if cur != nil && cur.Status == Settled {
				r, err := e.cancelSettlement(ctx, tx, cur, msg.ID, now)
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
		return err
	})
	return out, err
}

// sameClass compares what a line's classification decides: its split and class.
func sameClass(a, b rules.LineResult) bool {
	return a.Amount == b.Amount && a.Fulamt == b.Fulamt && a.Over == b.Over && a.Pre == b.Pre &&
		a.Inscp == b.Inscp && a.Level == b.Level
}
