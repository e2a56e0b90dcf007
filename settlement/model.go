package settlement

import (
	"time"

	"github.com/medsettle/medsettle/rules"
)

// Person is an insured person of the registry (参保人).
type Person struct {
	PsnNo         string
	Name          string
	Gend          string
	Certno        string // ID number (GB 11643)
	CardNo        string // insurance card number
	InsuredRegion string // insuplc_admdvs
	Insutype      string // 310 employee, 390 resident
	Retired       bool
	Assistance    string      // "", dibao, tekun
	OpeningBalc   rules.Money // personal account at the start of the first year on record
	// Registration (备案) for treatment in another region; empty RegRegion means none.
	RegRegion string
	RegBegin  rules.Date
	RegEnd    rules.Date
}

// RegisteredFor reports whether the person's 备案 covers treatment in region on day.
func (p *Person) RegisteredFor(region string, day rules.Date) bool {
	return p.RegRegion != "" && p.RegRegion == region && p.RegBegin <= day && day <= p.RegEnd
}

// VisitKind tells an outpatient visit (2201) from an admission (2401) and a pharmacy sale (2102).
type VisitKind string

const (
	VisitOutpatient VisitKind = "outpatient"
	VisitInpatient  VisitKind = "inpatient"
	VisitPharmacy   VisitKind = "pharmacy"
	VisitManual     VisitKind = "manual" // a manual claim (零星报销): care paid in full, claimed afterwards
)

// VisitStatus is where a visit is in its life.
type VisitStatus string

const (
	VisitOpen      VisitStatus = "open"      // registered, lines may be uploaded
	VisitSettled   VisitStatus = "settled"   // a settlement stands
	VisitCancelled VisitStatus = "cancelled" // registration withdrawn (2202/2404) or reversed
)

// Visit is one 就诊 (mdtrt): the unit lines are uploaded to and settled on.
type Visit struct {
	MdtrtID     string
	PsnNo       string
	Institution string
	Kind        VisitKind
	MedType     string
	Insutype    string
	Begin       time.Time
	End         time.Time // discharge (2402); zero while admitted
	IptOtpNo    string
	Status      VisitStatus
	DiseCodg    string
	DiseName    string
}

// FeeLine is one uploaded fee line, priced at upload so the counter sees its class.
type FeeLine struct {
	MdtrtID   string
	SN        string // feedetl_sn, unique within the visit
	ChrgBchno string // 收费批次号: withdrawn as a batch (2205/2302)
	Code      string // med_list_codg
	HospCode  string // medins_list_codg
	Cnt       string // as sent, exact decimal text
	Pric      string
	Amount    rules.Money
	FeeTime   time.Time
	Withdrawn bool
	Priced    rules.LineResult
}

// SettlementStatus is whether a settlement stands.
type SettlementStatus string

const (
	Settled   SettlementStatus = "settled"
	Cancelled SettlementStatus = "cancelled"
)

// Settlement is one settled claim or the reversal of one (Reverses set,
// every amount negated). Settlements are never updated except for Status.
type Settlement struct {
	SetlID          string
	MdtrtID         string
	PsnNo           string
	Institution     string
	InsuredRegion   string
	TreatmentRegion string
	MedType         string
	Insutype        string
	SetlTime        time.Time
	Year            int
	Info            rules.Setlinfo
	Detail          []rules.FundPayment
	Delta           Delta // what this settlement added to the person's counters
	Status          SettlementStatus
	Reverses        string // for a reversal: the SetlID it negates
	Msgid           string
	LedgerTxnID     string
	Role            Role // "" is RoleLocal

	// For the outbox event only (not stored with the settlement).
	visit *Visit
	lines []FeeLine
}

// Delta is a change of a person's year counters.
type Delta struct {
	DedcOutpatient rules.Money
	DedcChronic    rules.Money
	FundOutpatient rules.Money
	FundInpatient  rules.Money
	Burden         rules.Money
	Supp           rules.Money
	Maf            rules.Money
	Acct           rules.Money // change of the account balance: -acct_pay
	Admissions     int
}

// DeltaOf is after minus before.
func DeltaOf(before, after rules.Counters) Delta {
	return Delta{
		DedcOutpatient: after.DedcUsedOutpatient - before.DedcUsedOutpatient,
		DedcChronic:    after.DedcUsedChronic - before.DedcUsedChronic,
		FundOutpatient: after.FundPaidOutpatient - before.FundPaidOutpatient,
		FundInpatient:  after.FundPaidInpatient - before.FundPaidInpatient,
		Burden:         after.BurdenYTD - before.BurdenYTD,
		Supp:           after.SuppPaidYTD - before.SuppPaidYTD,
		Maf:            after.MafPaidYTD - before.MafPaidYTD,
		Acct:           after.AcctBalc - before.AcctBalc,
		Admissions:     after.Admissions - before.Admissions,
	}
}

// Apply adds d to c.
func (d Delta) Apply(c rules.Counters) rules.Counters {
	c.DedcUsedOutpatient += d.DedcOutpatient
	c.DedcUsedChronic += d.DedcChronic
	c.FundPaidOutpatient += d.FundOutpatient
	c.FundPaidInpatient += d.FundInpatient
	c.BurdenYTD += d.Burden
	c.SuppPaidYTD += d.Supp
	c.MafPaidYTD += d.Maf
	c.AcctBalc += d.Acct
	c.Admissions += d.Admissions
	return c
}

// Neg is the delta that undoes d.
func (d Delta) Neg() Delta {
	return Delta{-d.DedcOutpatient, -d.DedcChronic, -d.FundOutpatient, -d.FundInpatient,
		-d.Burden, -d.Supp, -d.Maf, -d.Acct, -d.Admissions}
}

// Neg returns the setlinfo of a reversal: every amount negated, the ratio kept.
func negInfo(s rules.Setlinfo) rules.Setlinfo {
	n := s
	for _, p := range []*rules.Money{&n.MedfeeSumamt, &n.FulamtOwnpayAmt, &n.OverlmtSelfpay, &n.PreselfpayAmt,
		&n.InscpScpAmt, &n.ActPayDedc, &n.HifpPay, &n.HifmiPay, &n.HifobPay, &n.MafPay, &n.FundPaySumamt,
		&n.PsnPartAmt, &n.AcctPay, &n.PsnCashPay} {
		*p = -*p
	}
	return n
}

// YearCounters is a person's counters for one calendar year, with the account
// balance the year opened with (so that audit can replay the year).
type YearCounters struct {
	PsnNo       string
	Year        int
	Counters    rules.Counters
	OpeningBalc rules.Money
}
