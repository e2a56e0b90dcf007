package settlement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/rules"
)

type SettleInput struct {
	MdtrtID      string
	PsnNo        string
	MedType      string // when set, must agree with (or sets) the visit's
	Insutype     string
	MedfeeSumamt string // when set, must equal the sum of the uploaded lines
	UseAccount   bool   // acct_used_flag "1"
	// ServiceDate prices the claim as of the day care was given (a manual
	// claim settled afterwards); zero means today.
	ServiceDate rules.Date
}

// prefetch names what settling in reads: the visit and its lines, and, when
// the request names the person, their counters and ledger chain.
func (in SettleInput) prefetch(now time.Time) Prefetch {
	k := Prefetch{Visit: in.MdtrtID}
	if in.PsnNo != "" {
		k.Person, k.Year, k.Chain = in.PsnNo, in.day(now).Year(), ChainOf(in.PsnNo)
	}
	return k
}

// day is the day the claim is priced as of: the service date, or today.
func (in SettleInput) day(now time.Time) rules.Date {
	if in.ServiceDate != 0 {
		return in.ServiceDate
	}
	return DateOf(now)
}

// SettleAnswer is a settlement (or its reversal) as the counter sees it.
type SettleAnswer struct {
	MdtrtID  string              `json:"mdtrt_id"`
	SetlID   string              `json:"setl_id"`
	PsnNo    string              `json:"psn_no"`
	SetlTime time.Time           `json:"setl_time"`
	MedType  string              `json:"med_type"`
	Insutype string              `json:"insutype"`
	Info     rules.Setlinfo      `json:"setlinfo"`
	Detail   []rules.FundPayment `json:"setldetail"`
	Reverses string              `json:"reverses,omitempty"`
	// ClrOptins is the pooling region whose funds pay (the insured region).
	ClrOptins string `json:"clr_optins"`
}

func answerOf(s *Settlement) SettleAnswer {
	return SettleAnswer{MdtrtID: s.MdtrtID, SetlID: s.SetlID, PsnNo: s.PsnNo, SetlTime: s.SetlTime,
		MedType: s.MedType, Insutype: s.Insutype, Info: s.Info, Detail: s.Detail, Reverses: s.Reverses,
		ClrOptins: s.InsuredRegion}
}

// PreSettle prices a visit as Settle would, writing nothing (2206/2303).
func (e *Engine) PreSettle(ctx context.Context, inst string, in SettleInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		prefetch(tx, in.prefetch(now))
		s, _, _, err := e.price(ctx, tx, inst, in, now)
		if err != nil {
			return err
		}
		out = answerOf(s)
		return nil
	})
	var rc *remoteClaim
	if errors.As(err, &rc) {
		return e.preSettleRemote(ctx, inst, in, rc, now)
	}
	return out, err
}

// Settle settles a visit: one transaction reads the person's counters,
// prices, updates the counters, appends the ledger transaction and the
// outbox event. Errors: EINVALID (pricing refusal: Rule says which),
// ENOTFOUND, ECONFLICT (already settled, msgid reused).
func (e *Engine) Settle(ctx context.Context, msg Msg, in SettleInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	var rc *remoteClaim
	setlID := NewID("S")
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		prefetch(tx, in.prefetch(now))
		var err error
		out, err = settleOnce(ctx, tx, msg, now, setlID, func() (*Settlement, error) {
			s, v, yc, err := e.price(ctx, tx, msg.Institution, in, now)
			if err != nil {
				return nil, err // a remoteClaim among them
			}
			s.SetlID, s.Msgid = setlID, msg.ID
			v.Status = VisitSettled
			if err := tx.PutVisit(ctx, v); err != nil {
				return nil, err
			}
			return s, e.commit(ctx, tx, s, yc, TxnSettle)
		})
		return err
	})
	if errors.As(err, &rc) {
		return e.settleRemote(ctx, msg, in, rc, now)
	}
	return out, err
}

// price builds the settlement of a visit without writing anything.
func (e *Engine) price(ctx context.Context, tx Tx, inst string, in SettleInput, now time.Time) (*Settlement, *Visit, YearCounters, error) {
	var yc YearCounters
	v, err := visitOf(ctx, tx, inst, in.MdtrtID, in.PsnNo)
	if err != nil {
		return nil, nil, yc, err
	}
	if v.Status != VisitOpen {
		return nil, nil, yc, Errorf(ECONFLICT, "visit %s is %s", v.MdtrtID, v.Status)
	}
	medType := v.MedType
	if in.MedType != "" {
		if medType != "" && medType != in.MedType {
			return nil, nil, yc, Errorf(EINVALID, "med_type %s differs from the visit's %s", in.MedType, medType)
		}
		medType = in.MedType
	}
	if medType == "" {
		return nil, nil, yc, Errorf(EINVALID, "med_type is required (not set at registration)")
	}
	lines, err := tx.Lines(ctx, v.MdtrtID)
	if err != nil {
		return nil, nil, yc, err
	}
	p, err := e.person(ctx, tx, v.PsnNo)
	if err != nil {
		return nil, nil, yc, err
	}
	return e.priceLines(ctx, tx, inst, in, medType, v, lines, p, now)
}

// priceLines prices a visit's lines for person p, as price does once it has
// read them.
func (e *Engine) priceLines(ctx context.Context, tx Tx, inst string, in SettleInput, medType string, v *Visit,
	lines []FeeLine, p *Person, now time.Time) (*Settlement, *Visit, YearCounters, error) {
	var yc YearCounters
	if in.Insutype != "" && in.Insutype != v.Insutype {
		return nil, nil, yc, Errorf(EINVALID, "insutype %s differs from the visit's %s", in.Insutype, v.Insutype)
	}
	if len(lines) == 0 {
		return nil, nil, yc, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: fmt.Sprintf("visit %s has no fee lines", v.MdtrtID)}
	}
	var sum rules.Money
	for _, l := range lines {
		sum += l.Amount
	}
	if in.MedfeeSumamt != "" {
		want, err := rules.ParseMoney(in.MedfeeSumamt)
		if err != nil {
			return nil, nil, yc, Errorf(EINVALID, "medfee_sumamt %q is not an amount with at most 2 decimals", in.MedfeeSumamt)
		}
		if want != sum {
			return nil, nil, yc, Errorf(EINVALID, "medfee_sumamt %s differs from the uploaded lines' total %s", want, sum)
		}
	}
	day := in.day(now)
	if e.remote(p.InsuredRegion) {
		// The person's policy and counters live in another province: the
		// hub settles it there (see cross.go).
		return nil, nil, yc, &remoteClaim{visit: v, lines: lines, person: p, medType: medType, day: day}
	}
	yc, err := tx.Counters(ctx, p.PsnNo, day.Year())
	if err != nil {
		return nil, nil, yc, err
	}
	institution := e.Rules.Institutions[inst]
	claim := e.claimFor(p, inst, medType, day, in.UseAccount, yc.Counters)
	for _, l := range lines {
		cl, err := claimLine(l.SN, l.Code, l.Cnt, l.Pric, l.Amount)
		if err != nil {
			return nil, nil, yc, fmt.Errorf("stored line %s/%s: %w", l.MdtrtID, l.SN, err)
		}
		claim.Lines = append(claim.Lines, cl)
	}
	res, err := e.Rules.Price(claim)
	if err != nil {
		return nil, nil, yc, fromRules(err)
	}
	s := &Settlement{
		SetlID: NewID("S"), MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, Institution: inst,
		InsuredRegion: p.InsuredRegion, TreatmentRegion: institution.Admdvs, MedType: medType,
		Insutype: p.Insutype, SetlTime: now.UTC().Truncate(time.Microsecond), Year: day.Year(),
		Info: res.Setlinfo, Detail: res.Detail, Delta: DeltaOf(yc.Counters, res.After), Status: Settled,
		visit: v, lines: lines,
	}
	yc.Counters = res.After
	return s, v, yc, nil
}

// claimFor is the claim of person p at institution inst on day, with the
// person's counters; the caller adds the lines.
func (e *Engine) claimFor(p *Person, inst, medType string, day rules.Date, useAccount bool, state rules.Counters) *rules.Claim {
	in := e.Rules.Institutions[inst]
	return &rules.Claim{InsuredRegion: p.InsuredRegion, Institution: inst, MedType: medType, SetlDate: day,
		Insutype: p.Insutype, Retired: p.Retired, Registered: in != nil && p.RegisteredFor(in.Admdvs, day),
		Assistance: p.Assistance, UseAccount: useAccount, State: state}
}

// claimLine turns a line's decimal texts into a pricing line.
func claimLine(sn, code, cnt, pric string, amount rules.Money) (rules.Line, error) {
	c, err1 := decimal.NewFromString(cnt)
	p, err2 := decimal.NewFromString(pric)
	if err := errors.Join(err1, err2); err != nil {
		return rules.Line{}, fmt.Errorf("cnt %q and pric %q must be decimals: %w", cnt, pric, err)
	}
	return rules.Line{SN: sn, Code: code, Cnt: c, Pric: p, Amount: amount.Decimal()}, nil
}

// commit writes a settlement (or reversal) with its counters and ledger
// transaction. The order of the writes does not change the outcome (one
// transaction), but the counters go first and the ledger (its chain head
// first) next, so that with the visit the callers write just before, a
// settlement's one-row updates come one after another, where a store may
// send them together.
func (e *Engine) commit(ctx context.Context, tx Tx, s *Settlement, yc YearCounters, kind string) error {
	if err := tx.PutCounters(ctx, yc); err != nil {
		return err
	}
	return e.commitSide(ctx, tx, s, kind)
}

// CancelInput is 2208/2305/2103.
type CancelInput struct {
	SetlID  string
	MdtrtID string
	PsnNo   string
	// MedTypes, when set, are the med_types this cancel may undo: 2208
	// cancels outpatient settlements, 2305 inpatient ones, 2103 pharmacy sales.
	MedTypes []string
}

// Cancel reverses a standing settlement: a new settlement with every amount
// negated, a ledger transaction negating the original, counters restored by
// the original's delta, and the visit open again.
// Errors: ENOTFOUND, EINVALID (mdtrt_id/psn_no do not match), ECONFLICT (already cancelled).
func (e *Engine) Cancel(ctx context.Context, msg Msg, in CancelInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (SettleAnswer, string, error) {
			r, err := e.cancel(ctx, tx, msg.Institution, in, msg.ID, now)
			if err != nil {
				return SettleAnswer{}, "", err
			}
			return answerOf(r), r.SetlID, nil
		})
		return err
	})
	var rc *remoteCancel
	if errors.As(err, &rc) {
		return e.cancelRemote(ctx, msg, rc.settlement, now)
	}
	return out, err
}

func (e *Engine) cancel(ctx context.Context, tx Tx, inst string, in CancelInput, msgid string, now time.Time) (*Settlement, error) {
	s, err := tx.Settlement(ctx, in.SetlID)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Institution != inst || s.Reverses != "" {
		return nil, Errorf(ENOTFOUND, "setl_id %q: no such settlement at %s", in.SetlID, inst)
	}
	if in.MdtrtID != "" && in.MdtrtID != s.MdtrtID {
		return nil, Errorf(EINVALID, "mdtrt_id %s is not the visit of settlement %s", in.MdtrtID, s.SetlID)
	}
	if in.PsnNo != "" && in.PsnNo != s.PsnNo {
		return nil, Errorf(EINVALID, "psn_no %s is not the person of settlement %s", in.PsnNo, s.SetlID)
	}
	if len(in.MedTypes) > 0 && !slices.Contains(in.MedTypes, s.MedType) {
		return nil, Errorf(EINVALID, "setl_id %s is a med_type %s settlement, which this transaction does not cancel", s.SetlID, s.MedType)
	}
	if s.Status != Settled {
		return nil, Errorf(ECONFLICT, "settlement %s is already cancelled", s.SetlID)
	}
	if s.Role == RoleTreatment {
		return nil, &remoteCancel{settlement: s}
	}
	return e.cancelSettlement(ctx, tx, s, msgid, now)
}

// cancelSettlement writes the reversal of a standing settlement: a negated
// settlement, its ledger transaction, the counters restored (where they
// live here), and the visit reopened.
func (e *Engine) cancelSettlement(ctx context.Context, tx Tx, s *Settlement, msgid string, now time.Time) (*Settlement, error) {
	r := &Settlement{
		SetlID: NewID("S"), MdtrtID: s.MdtrtID, PsnNo: s.PsnNo, Institution: s.Institution,
		InsuredRegion: s.InsuredRegion, TreatmentRegion: s.TreatmentRegion, MedType: s.MedType,
		Insutype: s.Insutype, SetlTime: now.UTC().Truncate(time.Microsecond), Year: s.Year,
		Info: negInfo(s.Info), Detail: negDetail(s.Detail), Delta: s.Delta.Neg(), Status: Settled,
		Reverses: s.SetlID, Msgid: msgid, Role: s.Role,
	}
	if err := tx.SetSettlementStatus(ctx, s.SetlID, Cancelled); err != nil {
		return nil, err
	}
	v, err := tx.Visit(ctx, s.MdtrtID)
	if err != nil {
		return nil, err
	}
	r.visit = v
	if s.Role == RoleTreatment {
		r.Info.Balc = s.Info.Balc + s.Info.AcctPay // the insured province keeps the account; this is its balance as of the reversal
		err = e.commitSide(ctx, tx, r, TxnCancel)
	} else {
		var yc YearCounters
		if yc, err = tx.Counters(ctx, s.PsnNo, s.Year); err != nil {
			return nil, err
		}
		yc.Counters = r.Delta.Apply(yc.Counters)
		r.Info.Balc = yc.Counters.AcctBalc // the balance after the reversal, not the original's
		err = e.commit(ctx, tx, r, yc, TxnCancel)
	}
	if err != nil {
		return nil, err
	}
	if v != nil && v.Status == VisitSettled {
		v.Status = VisitOpen
		if v.Kind == VisitPharmacy || v.Kind == VisitManual {
			v.Status = VisitCancelled // a sale or a claim has no visit to return to
		}
		if err := tx.PutVisit(ctx, v); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func negDetail(d []rules.FundPayment) []rules.FundPayment {
	out := make([]rules.FundPayment, len(d))
	for i, p := range d {
		out[i] = rules.FundPayment{FundPayType: p.FundPayType, FundPayamt: -p.FundPayamt, CrtPaybLmt: p.CrtPaybLmt}
	}
	return out
}

// PharmacyInput is 2101/2102: a pharmacy sale carries its lines and settles at once.
