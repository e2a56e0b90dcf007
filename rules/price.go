package rules

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Error codes of a refused claim, in the order docs/pricing.md checks them.
const (
	CodeInvalidRequest     = "invalid_request" // malformed request: not a pricing rule, a syntax one
	CodeUnknownRegion      = "unknown_region"
	CodeUnknownInstitution = "unknown_institution"
	CodeRegionMismatch     = "region_mismatch"
	CodeInvalidMedType     = "invalid_med_type"
	CodeNoPolicy           = "no_policy"
	CodeInvalidInsutype    = "invalid_insutype"
	CodeEmptyClaim         = "empty_claim"
	CodeDuplicateLine      = "duplicate_line"
	CodeInvalidAmount      = "invalid_amount"
	CodeAmountMismatch     = "amount_mismatch"
	CodeInvalidAssistance  = "invalid_assistance"
)

// Error is a claim refused by the rules: Code is machine-readable (one of the
// Code constants), Message is for the person at the counter and names the field.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Counters are a person's running totals for one calendar year (the state
// pricing reads and the state after it).
type Counters struct {
	DedcUsedOutpatient Money `json:"dedc_used_outpatient"`
	DedcUsedChronic    Money `json:"dedc_used_chronic"`
	FundPaidOutpatient Money `json:"fund_paid_outpatient"`
	FundPaidInpatient  Money `json:"fund_paid_inpatient"`
	BurdenYTD          Money `json:"burden_ytd"`
	SuppPaidYTD        Money `json:"supp_paid_ytd"`
	MafPaidYTD         Money `json:"maf_paid_ytd"`
	AcctBalc           Money `json:"acct_balc"`
	Admissions         int   `json:"admissions"`
}

func (c *Counters) dedcUsed(cat Category) *Money {
	switch cat {
	case Outpatient:
		return &c.DedcUsedOutpatient
	case Chronic:
		return &c.DedcUsedChronic
	}
	return nil
}

func (c *Counters) fundPaid(p CapPool) *Money {
	if p == PoolOutpatient {
		return &c.FundPaidOutpatient
	}
	return &c.FundPaidInpatient
}

// Line is one fee line of a claim.
type Line struct {
	SN     string          // feedetl_sn, unique within the claim
	Code   string          // med_list_codg, looked up in the treatment province's catalog
	Cnt    decimal.Decimal // > 0, at most 4 decimals
	Pric   decimal.Decimal // >= 0, at most 4 decimals
	Amount decimal.Decimal // det_item_fee_sumamt = ROUND(cnt*pric), at most 2 decimals

	// parseErr carries a decoding problem to the point where docs/pricing.md checks it,
	// so that the check order holds for wire requests too.
	parseErr *Error
}

// Claim is what is priced: who, where, when, which lines, and the person's counters.
type Claim struct {
	InsuredRegion   string // insuplc_admdvs
	TreatmentRegion string // mdtrtarea_admvs; optional, must be the institution's region
	Institution     string // fixmedins_code
	MedType         string
	SetlDate        Date
	Insutype        string
	Retired         bool
	Registered      bool // 备案 for the treatment region, valid on SetlDate
	Assistance      string
	UseAccount      bool // acct_used_flag "1"
	State           Counters
	Lines           []Line

	headErr  *Error // a decoding problem found before the lines (setl_date, state)
	stateErr *Error
}

// LineResult is how one line was classified.
type LineResult struct {
	SN          string `json:"feedetl_sn"`
	Amount      Money  `json:"det_item_fee_sumamt"`
	Fulamt      Money  `json:"fulamt_ownpay_amt"`
	Over        Money  `json:"overlmt_amt"`
	Pre         Money  `json:"preselfpay_amt"`
	Inscp       Money  `json:"inscp_scp_amt"`
	Level       Level  `json:"chrgitm_lv"` // "" when not in the catalog
	ListType    string `json:"-"`          // drug/service/material, "" when not in the catalog
	PriceCap    Money  `json:"-"`
	HasCap      bool   `json:"-"`
	SelfpayProp Ratio  `json:"-"`
}

// Setlinfo is the split of a claim between the funds and the patient.
type Setlinfo struct {
	MedfeeSumamt    Money `json:"medfee_sumamt"`
	FulamtOwnpayAmt Money `json:"fulamt_ownpay_amt"`
	OverlmtSelfpay  Money `json:"overlmt_selfpay"`
	PreselfpayAmt   Money `json:"preselfpay_amt"`
	InscpScpAmt     Money `json:"inscp_scp_amt"`
	ActPayDedc      Money `json:"act_pay_dedc"`
	HifpPay         Money `json:"hifp_pay"`
	PoolPropSelfpay Ratio `json:"pool_prop_selfpay"`
	HifmiPay        Money `json:"hifmi_pay"`
	HifobPay        Money `json:"hifob_pay"`
	MafPay          Money `json:"maf_pay"`
	FundPaySumamt   Money `json:"fund_pay_sumamt"`
	PsnPartAmt      Money `json:"psn_part_amt"`
	AcctPay         Money `json:"acct_pay"`
	PsnCashPay      Money `json:"psn_cash_pay"`
	Balc            Money `json:"balc"`
}

// Fund pay types of setldetail (docs/pricing.md, "Fund detail").
const (
	FundPayEmployeePool    = "310100"
	FundPayEmployeeAccount = "310200"
	FundPayHifob           = "330100"
	FundPayResidentPool    = "390100"
	FundPayHifmi           = "390200"
	FundPayMaf             = "610100"
)

// FundPayment is one setldetail row: what one fund paid, and what it could have
// paid at most (the remaining cap or balance before this claim).
type FundPayment struct {
	FundPayType string `json:"fund_pay_type"`
	FundPayamt  Money  `json:"fund_payamt"`
	CrtPaybLmt  Money  `json:"crt_payb_lmt_amt"`
}

// Result is a priced claim.
type Result struct {
	Setlinfo Setlinfo      `json:"setlinfo"`
	Lines    []LineResult  `json:"feedetail"`
	Detail   []FundPayment `json:"setldetail"`
	After    Counters      `json:"state_after"`

	Category    Category `json:"-"`
	Level       int      `json:"-"` // the institution's level
	CrossRegion bool     `json:"-"` // insured region != treatment region
	Province    string   `json:"-"` // the treatment province whose catalog priced the lines
}

// categoryOf maps med_type to its benefit category and the institution kind it needs.
func categoryOf(medType string, kind Kind) (Category, bool) {
	switch medType {
	case "11":
		return Outpatient, kind == KindHospital
	case "41":
		return Outpatient, kind == KindPharmacy
	case "14":
		return Chronic, kind == KindHospital
	case "21":
		return Inpatient, kind == KindHospital
	}
	return 0, false
}

// Price splits a claim between the funds and the patient as docs/pricing.md says.
// It is pure: the same claim and rules give the same result, and nothing is
// read but its arguments. A refusal is an *Error with the code of the first
// failing check in the normative order.
func (rs *RuleSet) Price(c *Claim) (*Result, error) {
	region := rs.Regions[c.InsuredRegion]
	if region == nil {
		return nil, refuse(CodeUnknownRegion, "insuplc_admdvs %q is not a pooling region of this platform", c.InsuredRegion)
	}
	inst := rs.Institutions[c.Institution]
	if inst == nil {
		return nil, refuse(CodeUnknownInstitution, "fixmedins_code %q is not a designated institution", c.Institution)
	}
	if c.TreatmentRegion != "" && c.TreatmentRegion != inst.Admdvs {
		return nil, refuse(CodeRegionMismatch, "mdtrtarea_admvs %s is not the region %s of institution %s", c.TreatmentRegion, inst.Admdvs, inst.Code)
	}
	cat, ok := categoryOf(c.MedType, inst.Kind)
	if !ok {
		return nil, refuse(CodeInvalidMedType, "med_type %q does not fit the institution kind %s", c.MedType, inst.Kind)
	}
	if c.headErr != nil {
		return nil, c.headErr
	}
	version := region.InForce(c.SetlDate)
	if version == nil {
		return nil, refuse(CodeNoPolicy, "no policy of %s in force on %s", region.Admdvs, c.SetlDate)
	}
	ip := version.Insutypes[c.Insutype]
	if ip == nil {
		return nil, refuse(CodeInvalidInsutype, "insutype %q has no policy in region %s", c.Insutype, region.Admdvs)
	}
	if len(c.Lines) == 0 {
		return nil, refuse(CodeEmptyClaim, "feedetail is empty")
	}
	province := rs.Regions[inst.Admdvs].Province
	catalog := rs.Catalogs[province]

	res := &Result{
		Lines:       make([]LineResult, len(c.Lines)),
		Category:    cat,
		Level:       inst.Level,
		CrossRegion: c.InsuredRegion != inst.Admdvs,
		Province:    province,
	}
	var seen map[string]struct{}
	if len(c.Lines) > 16 {
		seen = make(map[string]struct{}, len(c.Lines))
	}
	s := &res.Setlinfo
	for i := range c.Lines {
		ln := &c.Lines[i]
		if ln.SN == "" || isDuplicate(c.Lines[:i], ln.SN, seen) {
			return nil, refuse(CodeDuplicateLine, "feedetl_sn '%s' repeated or missing", ln.SN)
		}
		if seen != nil {
			seen[ln.SN] = struct{}{}
		}
		lr, err := priceLine(catalog, c.SetlDate, ln)
		if err != nil {
			return nil, err
		}
		res.Lines[i] = lr
		s.MedfeeSumamt += lr.Amount
		if s.MedfeeSumamt > MaxMoney {
			return nil, refuse(CodeInvalidAmount, "feedetail: claim total exceeds %s", MaxMoney)
		}
		s.FulamtOwnpayAmt += lr.Fulamt
		s.OverlmtSelfpay += lr.Over
		s.PreselfpayAmt += lr.Pre
		s.InscpScpAmt += lr.Inscp
	}
	if c.stateErr != nil {
		return nil, c.stateErr
	}
	if err := checkCounters(&c.State); err != nil {
		return nil, err
	}
	var assistRatio Ratio
	if c.Assistance != "" {
		r, ok := version.Assistance.Ratios[c.Assistance]
		if !ok {
			return nil, refuse(CodeInvalidAssistance, "assistance %q is not a kind known to region %s", c.Assistance, region.Admdvs)
		}
		assistRatio = r
	}
	split(res, c, version, ip, cat, inst.Level, assistRatio)
	return res, nil
}

func isDuplicate(before []Line, sn string, seen map[string]struct{}) bool {
	if seen != nil {
		_, dup := seen[sn]
		return dup
	}
	for i := range before {
		if before[i].SN == sn {
			return true
		}
	}
	return false
}

func checkCounters(st *Counters) *Error {
	for _, f := range [...]struct {
		name string
		v    Money
	}{
		{"dedc_used_outpatient", st.DedcUsedOutpatient}, {"dedc_used_chronic", st.DedcUsedChronic},
		{"fund_paid_outpatient", st.FundPaidOutpatient}, {"fund_paid_inpatient", st.FundPaidInpatient},
		{"burden_ytd", st.BurdenYTD}, {"supp_paid_ytd", st.SuppPaidYTD},
		{"maf_paid_ytd", st.MafPaidYTD}, {"acct_balc", st.AcctBalc},
	} {
		if f.v < 0 || f.v > MaxMoney {
			return refuse(CodeInvalidAmount, "state.%s %s is outside [0, %s]", f.name, f.v, MaxMoney)
		}
	}
	if st.Admissions < 0 {
		return refuse(CodeInvalidAmount, "state.admissions %d is negative", st.Admissions)
	}
	return nil
}

// maxCapFen is the largest price cap (in fen) that can be scaled to pric's 10^-4 units.
const maxCapFen = Money((1<<63 - 1) / (qtyScale / moneyScale))

// priceLine checks one line's numbers and classifies it against the catalog (step 1).
func priceLine(catalog *Catalog, day Date, ln *Line) (LineResult, *Error) {
	if ln.parseErr != nil {
		return LineResult{}, ln.parseErr
	}
	cnt, err1 := fromDecimal(ln.Cnt, 4)
	pric, err2 := fromDecimal(ln.Pric, 4)
	amt, err3 := fromDecimal(ln.Amount, 2)
	switch {
	case err1 != nil:
		return LineResult{}, refuse(CodeInvalidAmount, "feedetail[%s].cnt %s: %v (at most 4 decimals)", ln.SN, ln.Cnt, err1)
	case err2 != nil:
		return LineResult{}, refuse(CodeInvalidAmount, "feedetail[%s].pric %s: %v (at most 4 decimals)", ln.SN, ln.Pric, err2)
	case err3 != nil:
		return LineResult{}, refuse(CodeInvalidAmount, "feedetail[%s].det_item_fee_sumamt %s: %v (at most 2 decimals)", ln.SN, ln.Amount, err3)
	}
	if cnt <= 0 || pric < 0 {
		return LineResult{}, refuse(CodeInvalidAmount, "feedetail[%s]: cnt must be > 0 and pric >= 0", ln.SN)
	}
	want, ok := mulDivRound(cnt, pric, qtyScale*qtyScale/moneyScale)
	if !ok || Money(want) > MaxMoney {
		return LineResult{}, refuse(CodeInvalidAmount, "feedetail[%s]: cnt*pric exceeds %s", ln.SN, MaxMoney)
	}
	if want != amt {
		return LineResult{}, refuse(CodeAmountMismatch, "feedetail[%s].det_item_fee_sumamt %s is not ROUND(cnt*pric) = %s", ln.SN, Money(amt), Money(want))
	}
	lr := LineResult{SN: ln.SN, Amount: Money(amt)}
	it := catalog.Lookup(ln.Code, day)
	if it == nil {
		lr.Fulamt = lr.Amount // not in the catalog: 全自费
		return lr, nil
	}
	lr.Level, lr.ListType, lr.PriceCap, lr.HasCap, lr.SelfpayProp = it.Level, it.ListType, it.PriceCap, it.HasCap, it.SelfpayProp
	if it.Level == LevelC {
		lr.Fulamt = lr.Amount
		return lr, nil
	}
	// A cap above maxCapFen cannot be scaled to 10^-4 without overflowing, and
	// no price that fits an int64 can pass it anyway.
	if it.HasCap && it.PriceCap <= maxCapFen {
		if capQ := int64(it.PriceCap) * (qtyScale / moneyScale); pric > capQ {
			// 超限价自费: the part of the price above the cap, for every unit.
			over, _ := mulDivRound(pric-capQ, cnt, qtyScale*qtyScale/moneyScale)
			lr.Over = Money(over)
		}
	}
	inside := lr.Amount - lr.Over
	if it.Level == LevelB {
		pre, _ := mulDivRound(int64(inside), int64(it.SelfpayProp), int64(ratioOne))
		lr.Pre = Money(pre)
	}
	lr.Inscp = lr.Amount - lr.Fulamt - lr.Over - lr.Pre
	return lr, nil
}

func minM(a, b Money) Money {
	if a < b {
		return a
	}
	return b
}

func maxM(a, b Money) Money {
	if a > b {
		return a
	}
	return b
}

// applyRatio is ROUND(m * r) for m >= 0.
func applyRatio(m Money, r Ratio) Money {
	v, _ := mulDivRound(int64(m), int64(r), int64(ratioOne))
	return Money(v)
}

// split runs steps 2 to 9 on the summed lines.
func split(res *Result, c *Claim, version *PolicyVersion, ip *InsutypePolicy, cat Category, level int, assistRatio Ratio) {
	s := &res.Setlinfo
	st := c.State
	after := st
	b := &ip.Benefits[cat]

	// 2. Deductible.
	var remaining Money
	switch b.Deductible.Mode {
	case DeductibleAnnual:
		remaining = maxM(0, b.Deductible.ByLevel[level]-*st.dedcUsed(cat))
	case DeductiblePerAdmission:
		remaining = b.Deductible.ByLevel[level]
		if st.Admissions >= 1 {
			remaining = applyRatio(remaining, b.Deductible.SubsequentFactor)
		}
	}
	s.ActPayDedc = minM(s.InscpScpAmt, remaining)
	base := s.InscpScpAmt - s.ActPayDedc

	// 3. Ratio.
	r := b.Ratio[level]
	if c.Insutype == "310" && c.Retired {
		r = min(r+b.RetireeBonus, b.MaxRatio)
	}
	if res.CrossRegion && !c.Registered {
		r = max(0, r-version.UnregisteredPenalty)
	}
	s.PoolPropSelfpay = r

	// 4. Basic fund, within the annual cap of its pool.
	hifpRoom := maxM(0, ip.AnnualCap[b.CapPool]-*st.fundPaid(b.CapPool))
	s.HifpPay = minM(applyRatio(base, r), hifpRoom)

	// 5. Supplementary and 6. assistance, inpatient and chronic only.
	var burden, supp, suppRoom, mafRoom Money
	if cat != Outpatient {
		burden = s.InscpScpAmt - s.HifpPay
		supp, suppRoom = supplementary(&ip.Supplementary, st.BurdenYTD, burden, st.SuppPaidYTD)
		if ip.Supplementary.Fund == FundHifob {
			s.HifobPay = supp
		} else {
			s.HifmiPay = supp
		}
		if c.Assistance != "" {
			mafRoom = maxM(0, version.Assistance.AnnualCap-st.MafPaidYTD)
			s.MafPay = minM(applyRatio(burden-supp, assistRatio), mafRoom)
		}
	}

	// 7. Totals.
	s.FundPaySumamt = s.HifpPay + s.HifmiPay + s.HifobPay + s.MafPay
	s.PsnPartAmt = s.MedfeeSumamt - s.FundPaySumamt

	// 8. Personal account.
	acct := ip.Account
	if c.Insutype == "310" && c.UseAccount && acct.Enabled && (!res.CrossRegion || acct.CrossRegion) {
		payable := s.PsnPartAmt
		if !acct.CoversFulamt {
			payable -= s.FulamtOwnpayAmt
		}
		s.AcctPay = minM(maxM(0, payable), st.AcctBalc)
	}
	s.PsnCashPay = s.PsnPartAmt - s.AcctPay
	s.Balc = st.AcctBalc - s.AcctPay

	// 9. Counters after.
	if b.Deductible.Mode == DeductibleAnnual {
		*after.dedcUsed(cat) += s.ActPayDedc
	}
	if cat == Inpatient {
		after.Admissions++
	}
	*after.fundPaid(b.CapPool) += s.HifpPay
	if cat != Outpatient {
		after.BurdenYTD += burden
		after.SuppPaidYTD += supp
	}
	after.MafPaidYTD += s.MafPay
	after.AcctBalc = s.Balc
	res.After = after

	res.Detail = fundDetail(s, c.Insutype, hifpRoom, suppRoom, mafRoom, st.AcctBalc)
}

// supplementary pays each segment's ratio on its overlap with [b0, b0+burden),
// rounded once, within what is left of the annual cap.
func supplementary(sp *Supplementary, b0, burden, paid Money) (pay, room Money) {
	room = maxM(0, sp.AnnualCap-paid)
	if burden <= 0 || len(sp.Segments) == 0 {
		return 0, room
	}
	b1 := b0 + burden
	var acc u128 // sum of overlap(fen) * ratio(1e-4): exact, rounded once at the end
	for k, seg := range sp.Segments {
		lo := maxM(seg.From, b0)
		hi := b1
		if k+1 < len(sp.Segments) {
			hi = minM(hi, sp.Segments[k+1].From)
		}
		if hi > lo {
			acc.addMul(uint64(hi-lo), uint64(seg.Ratio))
		}
	}
	return minM(acc.roundDiv(uint64(ratioOne)), room), room
}

func fundDetail(s *Setlinfo, insutype string, hifpRoom, suppRoom, mafRoom, balc Money) []FundPayment {
	pool, acct := FundPayResidentPool, ""
	if insutype == "310" {
		pool, acct = FundPayEmployeePool, FundPayEmployeeAccount
	}
	d := make([]FundPayment, 0, 4)
	add := func(t string, amt, limit Money) {
		if amt != 0 {
			d = append(d, FundPayment{FundPayType: t, FundPayamt: amt, CrtPaybLmt: limit})
		}
	}
	add(pool, s.HifpPay, hifpRoom)
	add(FundPayHifob, s.HifobPay, suppRoom)
	add(FundPayHifmi, s.HifmiPay, suppRoom)
	add(FundPayMaf, s.MafPay, mafRoom)
	if acct != "" {
		add(acct, s.AcctPay, balc)
	}
	return d
}
