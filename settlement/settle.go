package settlement

import (
	"context"
	"errors"
	"fmt"
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

// priced is what pricing decided about a claim: settle it here (local, with
// the counters after it and its visit), or have the insured province settle
// it through the hub (remote, with what was read to ask it).
type priced struct {
	local    *Settlement
	counters YearCounters
	visit    *Visit
	remote   *remoteClaim
}

// PreSettle prices a visit as Settle would, writing nothing (2206/2303).
func (e *Engine) PreSettle(ctx context.Context, inst string, in SettleInput) (SettleAnswer, error) {
	now := e.now()
	var p priced
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		prefetch(tx, in.prefetch(now))
		var err error
		p, err = e.price(ctx, tx, inst, in, NewID("S"), now) // a preview shows a setl_id it will not keep
		return err
	})
	switch {
	case err != nil:
		return SettleAnswer{}, err
	case p.remote != nil:
		return e.preSettleRemote(ctx, inst, in, p.remote, now)
	}
	return answerOf(p.local), nil
}

// Settle settles a visit: one transaction reads the person's counters,
// prices, updates the counters, appends the ledger transaction and the
// outbox event. Errors: EINVALID (pricing refusal: Rule says which),
// ENOTFOUND, ECONFLICT (already settled, msgid reused).
func (e *Engine) Settle(ctx context.Context, msg Msg, in SettleInput) (SettleAnswer, error) {
	now := e.now()
	setlID := NewID("S")
	var remote *remoteClaim
	out, here, err := settleHere(ctx, e.Store, msg, now, in.prefetch(now), setlID, func(ctx context.Context, tx Tx) (*Settlement, bool, error) {
		p, err := e.price(ctx, tx, msg.Institution, in, setlID, now)
		if err != nil || p.remote != nil {
			remote = p.remote
			return nil, false, err
		}
		p.local.Msgid = msg.ID
		p.visit.Status = VisitSettled
		return p.local, true, e.commit(ctx, tx, p.local, writes{kind: TxnSettle, counters: &p.counters, settled: p.visit})
	})
	if err == nil && !here {
		return e.settleRemote(ctx, msg, in, remote, now)
	}
	return out, err
}

// price decides how a visit is settled, as settlement setlID when it is
// settled here, without writing anything.
func (e *Engine) price(ctx context.Context, tx Tx, inst string, in SettleInput, setlID string, now time.Time) (priced, error) {
	v, err := openVisit(ctx, tx, inst, in.MdtrtID, in.PsnNo, "")
	if err != nil {
		return priced{}, err
	}
	medType := v.MedType
	if in.MedType != "" {
		if medType != "" && medType != in.MedType {
			return priced{}, Errorf(EINVALID, "med_type %s differs from the visit's %s", in.MedType, medType)
		}
		medType = in.MedType
	}
	if medType == "" {
		return priced{}, Errorf(EINVALID, "med_type is required (not set at registration)")
	}
	lines, err := tx.Lines(ctx, v.MdtrtID)
	if err != nil {
		return priced{}, err
	}
	p, err := e.person(ctx, tx, v.PsnNo)
	if err != nil {
		return priced{}, err
	}
	return e.priceLines(ctx, tx, inst, in, medType, v, lines, p, setlID, now)
}

// priceLines prices a visit's lines for person p, as price does once it has
// read them.
func (e *Engine) priceLines(ctx context.Context, tx Tx, inst string, in SettleInput, medType string, v *Visit,
	lines []FeeLine, p *Person, setlID string, now time.Time) (priced, error) {
	if in.Insutype != "" && in.Insutype != v.Insutype {
		return priced{}, Errorf(EINVALID, "insutype %s differs from the visit's %s", in.Insutype, v.Insutype)
	}
	if len(lines) == 0 {
		return priced{}, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: fmt.Sprintf("visit %s has no fee lines", v.MdtrtID)}
	}
	if err := checkSum(in.MedfeeSumamt, lines); err != nil {
		return priced{}, err
	}
	day := in.day(now)
	if e.remote(p.InsuredRegion) {
		// The person's policy and counters live in another province: the
		// hub settles it there (see cross.go).
		return priced{remote: &remoteClaim{visit: v, lines: lines, person: p, medType: medType, day: day}}, nil
	}
	yc, err := tx.Counters(ctx, p.PsnNo, day.Year())
	if err != nil {
		return priced{}, err
	}
	institution := e.Rules.Institutions[inst]
	claim := e.claimFor(p, inst, medType, day, in.UseAccount, yc.Counters)
	for _, l := range lines {
		cl, err := claimLine(l.SN, l.Code, l.Cnt, l.Pric, l.Amount)
		if err != nil {
			return priced{}, fmt.Errorf("stored line %s/%s: %w", l.MdtrtID, l.SN, err)
		}
		claim.Lines = append(claim.Lines, cl)
	}
	res, err := e.Rules.Price(claim)
	if err != nil {
		return priced{}, fromRules(err)
	}
	s := &Settlement{
		SetlID: setlID, MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, Institution: inst,
		InsuredRegion: p.InsuredRegion, TreatmentRegion: institution.Admdvs, MedType: medType,
		Insutype: p.Insutype, SetlTime: now.UTC().Truncate(time.Microsecond), Year: day.Year(),
		Info: res.Setlinfo, Detail: res.Detail, Delta: DeltaOf(yc.Counters, res.After), Status: Settled,
		visit: v, lines: lines,
	}
	yc.Counters = res.After
	return priced{local: s, counters: yc, visit: v}, nil
}

// checkSum checks the request's medfee_sumamt, when it has one, against the lines' total.
func checkSum(medfeeSumamt string, lines []FeeLine) error {
	if medfeeSumamt == "" {
		return nil
	}
	var sum rules.Money
	for _, l := range lines {
		sum += l.Amount
	}
	want, err := rules.ParseMoney(medfeeSumamt)
	if err != nil {
		return Errorf(EINVALID, "medfee_sumamt %q is not an amount with at most 2 decimals", medfeeSumamt)
	}
	if want != sum {
		return Errorf(EINVALID, "medfee_sumamt %s differs from the uploaded lines' total %s", want, sum)
	}
	return nil
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
