package settlement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/rules"
)

// China Standard Time: a settlement's date, and so its policy version and its
// counters' year, is the date at the counter.
var cst = time.FixedZone("CST", 8*3600)

// DateOf is the calendar day of t at the counter.
func DateOf(t time.Time) rules.Date {
	y, m, d := t.In(cst).Date()
	return rules.Date(y*10000 + int(m)*100 + d)
}

// Engine settles claims: the service behind the counter interface. All of its
// methods are safe for concurrent use; every change is one Store transaction.
type Engine struct {
	Rules *rules.RuleSet
	Store Store
	// Province is the province this deployment serves ("150000"); persons
	// insured elsewhere are settled through Hub. Empty: every region is local.
	Province string
	Hub      Hub
	Reverser Reverser
	// Now is the clock (time.Now when nil); tests and replays set it.
	Now func() time.Time
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// NewID returns a random identifier: random, not sequential, so that inserts
// spread over a CockroachDB keyspace instead of piling onto one range.
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return prefix + hex.EncodeToString(b[:])
}

// Msg identifies a counter message for idempotency: the same ID and Digest
// replays the first answer; the same ID with another Digest is refused.
type Msg struct {
	ID          string
	Infno       string
	Institution string // the authenticated caller (fixmedins_code)
	Digest      string
}

// idempotent runs op once per msgid inside tx. A stored answer is replayed.
// A refusal rolls the transaction back, the msgid claim included: a refused
// request writes nothing, and the same msgid may be tried again.
func idempotent[T any](ctx context.Context, tx Tx, msg Msg, now time.Time, op func() (T, string, error)) (T, error) {
	var zero T
	if msg.ID == "" {
		return zero, Errorf(EINVALID, "msgid is required")
	}
	m, err := tx.ClaimMessage(ctx, &Message{Msgid: msg.ID, Infno: msg.Infno, Institution: msg.Institution,
		Digest: msg.Digest, Created: now})
	if err != nil {
		return zero, err
	}
	if m != nil {
		switch {
		case m.Institution != msg.Institution:
			return zero, Errorf(ECONFLICT, "msgid %s belongs to another institution", msg.ID)
		case m.Status == MessageReversed:
			return zero, Errorf(ECONFLICT, "msgid %s was reversed (2601) and never takes effect", msg.ID)
		case m.Infno != msg.Infno || m.Digest != msg.Digest:
			return zero, Errorf(ECONFLICT, "msgid %s was already used with a different request", msg.ID)
		}
		var out T
		if err := json.Unmarshal(m.Answer, &out); err != nil {
			return zero, fmt.Errorf("replaying msgid %s: %w", msg.ID, err)
		}
		return out, nil
	}
	out, ref, err := op()
	if err != nil {
		return zero, err
	}
	answer, err := json.Marshal(out)
	if err != nil {
		return zero, fmt.Errorf("storing answer of msgid %s: %w", msg.ID, err)
	}
	err = tx.PutMessage(ctx, &Message{Msgid: msg.ID, Infno: msg.Infno, Institution: msg.Institution,
		Digest: msg.Digest, Status: MessageDone, Ref: ref, Answer: answer, Created: now})
	return out, err
}

// PersonInfo is 1101: the person and this year's counters.
type PersonInfo struct {
	Person   Person
	Counters rules.Counters
	Year     int
}

// FindPerson returns a person by certificate (02 ID number, 03 card) with the
// counters of the current year. Any caller may ask; ENOTFOUND when unknown.
func (e *Engine) FindPerson(ctx context.Context, certType, certNo string) (*PersonInfo, error) {
	var out *PersonInfo
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		var p *Person
		var err error
		switch certType {
		case "02", "03":
			p, err = tx.PersonByCert(ctx, certType, certNo)
		case "01":
			p, err = tx.Person(ctx, certNo)
		default:
			return Errorf(EINVALID, "mdtrt_cert_type %q: want 01 (e-voucher), 02 (ID) or 03 (card)", certType)
		}
		if err != nil {
			return err
		}
		if p == nil {
			return Errorf(ENOTFOUND, "mdtrt_cert_no %q: no insured person", certNo)
		}
		year := DateOf(e.now()).Year()
		yc, err := tx.Counters(ctx, p.PsnNo, year)
		if err != nil {
			return err
		}
		out = &PersonInfo{Person: *p, Counters: yc.Counters, Year: year}
		return nil
	})
	return out, err
}

// YearCountersOf is 5206: a person's counters for year.
func (e *Engine) YearCountersOf(ctx context.Context, psnNo string, year int) (rules.Counters, error) {
	var out rules.Counters
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		p, err := tx.Person(ctx, psnNo)
		if err != nil {
			return err
		}
		if p == nil {
			return Errorf(ENOTFOUND, "psn_no %q: no insured person", psnNo)
		}
		yc, err := tx.Counters(ctx, psnNo, year)
		out = yc.Counters
		return err
	})
	return out, err
}

// VisitInput opens a visit (2201 outpatient, 2401 admission).
type VisitInput struct {
	PsnNo    string
	Insutype string
	Kind     VisitKind
	MedType  string // may come later with 2203; required for an admission
	Begin    time.Time
	IptOtpNo string
	DiseCodg string
	DiseName string
}

// VisitAnswer is the answer of 2201/2401.
type VisitAnswer struct {
	MdtrtID  string `json:"mdtrt_id"`
	PsnNo    string `json:"psn_no"`
	IptOtpNo string `json:"ipt_otp_no"`
}

// RegisterVisit opens a visit of msg.Institution for a person.
// Errors: EINVALID (field), ENOTFOUND (person), ECONFLICT (msgid).
func (e *Engine) RegisterVisit(ctx context.Context, msg Msg, in VisitInput) (VisitAnswer, error) {
	now := e.now()
	var out VisitAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (VisitAnswer, string, error) {
			p, err := e.person(ctx, tx, in.PsnNo)
			if err != nil {
				return VisitAnswer{}, "", err
			}
			if in.Insutype != "" && in.Insutype != p.Insutype {
				return VisitAnswer{}, "", Errorf(EINVALID, "insutype %s: the person is insured as %s", in.Insutype, p.Insutype)
			}
			if in.MedType != "" {
				if err := e.checkMedType(msg.Institution, in.MedType); err != nil {
					return VisitAnswer{}, "", err
				}
			}
			begin := in.Begin
			if begin.IsZero() {
				begin = now
			}
			v := &Visit{MdtrtID: NewID("M"), PsnNo: p.PsnNo, Institution: msg.Institution, Kind: in.Kind,
				MedType: in.MedType, Insutype: p.Insutype, Begin: begin, IptOtpNo: in.IptOtpNo,
				Status: VisitOpen, DiseCodg: in.DiseCodg, DiseName: in.DiseName}
			if err := tx.PutVisit(ctx, v); err != nil {
				return VisitAnswer{}, "", err
			}
			return VisitAnswer{MdtrtID: v.MdtrtID, PsnNo: v.PsnNo, IptOtpNo: v.IptOtpNo}, v.MdtrtID, nil
		})
		return err
	})
	return out, err
}

func (e *Engine) checkMedType(inst, medType string) error {
	in := e.Rules.Institutions[inst]
	if in == nil {
		return Errorf(EFORBIDDEN, "fixmedins_code %s is not a designated institution", inst)
	}
	switch {
	case medType == "41" && in.Kind == rules.KindPharmacy:
	case (medType == "11" || medType == "14" || medType == "21") && in.Kind == rules.KindHospital:
	default:
		return Errorf(EINVALID, "med_type %q does not fit the institution kind %s", medType, in.Kind)
	}
	return nil
}

func (e *Engine) person(ctx context.Context, tx Tx, psnNo string) (*Person, error) {
	p, err := tx.Person(ctx, psnNo)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, Errorf(ENOTFOUND, "psn_no %q: no insured person", psnNo)
	}
	return p, nil
}

// visitOf loads a visit that msg's institution may act on.
func visitOf(ctx context.Context, tx Tx, inst, mdtrtID, psnNo string) (*Visit, error) {
	v, err := tx.Visit(ctx, mdtrtID)
	if err != nil {
		return nil, err
	}
	// Another institution's visit is reported as absent: its existence is not the caller's business.
	if v == nil || v.Institution != inst {
		return nil, Errorf(ENOTFOUND, "mdtrt_id %q: no such visit at %s", mdtrtID, inst)
	}
	if psnNo != "" && v.PsnNo != psnNo {
		return nil, Errorf(EINVALID, "psn_no %s is not the person of visit %s", psnNo, mdtrtID)
	}
	return v, nil
}

// VisitUpdate is 2203 (visit information) and 2402 (discharge).
type VisitUpdate struct {
	MdtrtID  string
	PsnNo    string
	MedType  string
	DiseCodg string
	DiseName string
	End      time.Time // discharge time (2402); zero otherwise
}

// Ack is the answer of a message whose output is empty.
type Ack struct {
	Ref string `json:"ref,omitempty"`
}

// UpdateVisit records a visit's med_type and diagnosis, or a discharge.
// Errors: EINVALID, ENOTFOUND, ECONFLICT (visit not open).
func (e *Engine) UpdateVisit(ctx context.Context, msg Msg, in VisitUpdate) (Ack, error) {
	return e.ackUpdate(ctx, msg, func(ctx context.Context, tx Tx) (string, error) {
		v, err := visitOf(ctx, tx, msg.Institution, in.MdtrtID, in.PsnNo)
		if err != nil {
			return "", err
		}
		if v.Status != VisitOpen {
			return "", Errorf(ECONFLICT, "visit %s is %s", v.MdtrtID, v.Status)
		}
		if in.MedType != "" {
			if err := e.checkMedType(msg.Institution, in.MedType); err != nil {
				return "", err
			}
			v.MedType = in.MedType
		}
		if in.DiseCodg != "" {
			v.DiseCodg, v.DiseName = in.DiseCodg, in.DiseName
		}
		if !in.End.IsZero() {
			if v.Kind != VisitInpatient {
				return "", Errorf(EINVALID, "mdtrt_id %s is not an admission", v.MdtrtID)
			}
			v.End = in.End
		}
		return v.MdtrtID, tx.PutVisit(ctx, v)
	})
}

// CancelVisit withdraws a visit with no standing settlement (2202/2404), or
// undoes a discharge (2405) when undischarge is set.
func (e *Engine) CancelVisit(ctx context.Context, msg Msg, mdtrtID, psnNo string, undischarge bool) (Ack, error) {
	return e.ackUpdate(ctx, msg, func(ctx context.Context, tx Tx) (string, error) {
		v, err := visitOf(ctx, tx, msg.Institution, mdtrtID, psnNo)
		if err != nil {
			return "", err
		}
		if v.Status != VisitOpen {
			return "", Errorf(ECONFLICT, "visit %s is %s: cancel its settlement first", v.MdtrtID, v.Status)
		}
		if undischarge {
			if v.End.IsZero() {
				return "", Errorf(ECONFLICT, "visit %s is not discharged", v.MdtrtID)
			}
			v.End = time.Time{}
		} else {
			v.Status = VisitCancelled
		}
		return v.MdtrtID, tx.PutVisit(ctx, v)
	})
}

func (e *Engine) ackUpdate(ctx context.Context, msg Msg, op func(ctx context.Context, tx Tx) (string, error)) (Ack, error) {
	now := e.now()
	var out Ack
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (Ack, string, error) {
			ref, err := op(ctx, tx)
			return Ack{Ref: ref}, ref, err
		})
		return err
	})
	return out, err
}

// LineInput is one fee line as uploaded (2204/2301).
type LineInput struct {
	SN        string
	ChrgBchno string
	Code      string
	HospCode  string
	Cnt       string // exact decimal text, at most 4 decimals
	Pric      string
	Amount    string // at most 2 decimals, = ROUND(cnt*pric)
	FeeTime   time.Time
}

// UploadAnswer is the answer of 2204/2301: each line's classification.
type UploadAnswer struct {
	Lines []PricedLine `json:"result"`
}

// PricedLine is one classified line as the counter interface reports it.
type PricedLine struct {
	SN          string      `json:"feedetl_sn"`
	Amount      rules.Money `json:"det_item_fee_sumamt"`
	Cnt         string      `json:"cnt"`
	Pric        string      `json:"pric"`
	PricUplmt   string      `json:"pric_uplmt_amt"`
	SelfpayProp string      `json:"selfpay_prop"`
	Fulamt      rules.Money `json:"fulamt_ownpay_amt"`
	Over        rules.Money `json:"overlmt_amt"`
	Pre         rules.Money `json:"preselfpay_amt"`
	Inscp       rules.Money `json:"inscp_scp_amt"`
	Level       rules.Level `json:"chrgitm_lv"`
	ListType    string      `json:"med_chrgitm_type"`
}

func pricedLine(l *FeeLine) PricedLine {
	p := PricedLine{SN: l.SN, Amount: l.Amount, Cnt: l.Cnt, Pric: l.Pric, Fulamt: l.Priced.Fulamt,
		Over: l.Priced.Over, Pre: l.Priced.Pre, Inscp: l.Priced.Inscp, Level: l.Priced.Level, ListType: l.Priced.ListType}
	if l.Priced.HasCap {
		p.PricUplmt = l.Priced.PriceCap.String()
	}
	if l.Priced.Level != "" {
		p.SelfpayProp = l.Priced.SelfpayProp.String()
	}
	return p
}

// UploadLines adds fee lines to an open visit and classifies them against
// the treatment province's catalog. All lines are refused if one is.
// Errors: EINVALID (the line and field), ENOTFOUND, ECONFLICT.
func (e *Engine) UploadLines(ctx context.Context, msg Msg, mdtrtID, psnNo string, in []LineInput) (UploadAnswer, error) {
	now := e.now()
	var out UploadAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (UploadAnswer, string, error) {
			v, err := visitOf(ctx, tx, msg.Institution, mdtrtID, psnNo)
			if err != nil {
				return UploadAnswer{}, "", err
			}
			if v.Status != VisitOpen {
				return UploadAnswer{}, "", Errorf(ECONFLICT, "visit %s is %s: no more lines", v.MdtrtID, v.Status)
			}
			if len(in) == 0 {
				return UploadAnswer{}, "", Errorf(EINVALID, "feedetail is empty")
			}
			existing, err := tx.Lines(ctx, mdtrtID)
			if err != nil {
				return UploadAnswer{}, "", err
			}
			lines, err := e.classify(v, existing, in, now)
			if err != nil {
				return UploadAnswer{}, "", err
			}
			if err := tx.PutLines(ctx, lines); err != nil {
				return UploadAnswer{}, "", err
			}
			ans := UploadAnswer{Lines: make([]PricedLine, len(lines))}
			for i := range lines {
				ans.Lines[i] = pricedLine(&lines[i])
			}
			return ans, mdtrtID + "/" + in[0].ChrgBchno, nil
		})
		return err
	})
	return out, err
}

// classify validates new lines against the visit's and prices them one by one
// with the rules' line step, so that a bad line is named exactly.
func (e *Engine) classify(v *Visit, existing []FeeLine, in []LineInput, now time.Time) ([]FeeLine, error) {
	seen := make(map[string]bool, len(existing)+len(in))
	for _, l := range existing {
		seen[l.SN] = true
	}
	inst := e.Rules.Institutions[v.Institution]
	if inst == nil {
		return nil, Errorf(EFORBIDDEN, "fixmedins_code %s is not a designated institution", v.Institution)
	}
	catalog := e.Rules.Catalogs[e.Rules.Province(inst.Admdvs)]
	out := make([]FeeLine, len(in))
	for i, li := range in {
		if li.SN == "" || seen[li.SN] {
			return nil, &Error{Code: EINVALID, Rule: rules.CodeDuplicateLine, Message: fmt.Sprintf("feedetail[%d].feedetl_sn %q is empty or already uploaded for this visit", i, li.SN)}
		}
		seen[li.SN] = true
		if li.Code == "" {
			return nil, Errorf(EINVALID, "feedetail[%d].med_list_codg is required", i)
		}
		feeTime := li.FeeTime
		if feeTime.IsZero() {
			feeTime = now
		}
		lr, err := rules.PriceLine(catalog, DateOf(feeTime), li.SN, li.Code, li.Cnt, li.Pric, li.Amount)
		if err != nil {
			return nil, fromRules(err)
		}
		out[i] = FeeLine{MdtrtID: v.MdtrtID, SN: li.SN, ChrgBchno: li.ChrgBchno, Code: li.Code, HospCode: li.HospCode,
			Cnt: li.Cnt, Pric: li.Pric, Amount: lr.Amount, FeeTime: feeTime, Priced: lr}
	}
	return out, nil
}

// WithdrawLines withdraws a charge batch of an open visit (2205/2302).
func (e *Engine) WithdrawLines(ctx context.Context, msg Msg, mdtrtID, psnNo, chrgBchno string) (Ack, error) {
	return e.ackUpdate(ctx, msg, func(ctx context.Context, tx Tx) (string, error) {
		v, err := visitOf(ctx, tx, msg.Institution, mdtrtID, psnNo)
		if err != nil {
			return "", err
		}
		if v.Status != VisitOpen {
			return "", Errorf(ECONFLICT, "visit %s is %s: lines are final", v.MdtrtID, v.Status)
		}
		n, err := tx.WithdrawBatch(ctx, mdtrtID, chrgBchno)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", Errorf(ENOTFOUND, "chrg_bchno %q: no lines of visit %s", chrgBchno, mdtrtID)
		}
		return mdtrtID + "/" + chrgBchno, nil
	})
}

// SettleInput is 2206/2207, 2303/2304.
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
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (SettleAnswer, string, error) {
			s, v, yc, err := e.price(ctx, tx, msg.Institution, in, now)
			if errors.As(err, &rc) {
				return SettleAnswer{}, "", err
			}
			if err != nil {
				return SettleAnswer{}, "", err
			}
			s.Msgid = msg.ID
			if err := e.commit(ctx, tx, s, yc, TxnSettle); err != nil {
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
	if rc != nil && errors.As(err, &rc) {
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
	if in.Insutype != "" && in.Insutype != v.Insutype {
		return nil, nil, yc, Errorf(EINVALID, "insutype %s differs from the visit's %s", in.Insutype, v.Insutype)
	}
	lines, err := tx.Lines(ctx, v.MdtrtID)
	if err != nil {
		return nil, nil, yc, err
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
	p, err := e.person(ctx, tx, v.PsnNo)
	if err != nil {
		return nil, nil, yc, err
	}
	day := DateOf(now)
	if in.ServiceDate != 0 {
		day = in.ServiceDate
	}
	if e.remote(p.InsuredRegion) {
		// The person's policy and counters live in another province: the
		// hub settles it there (see cross.go).
		return nil, nil, yc, &remoteClaim{visit: v, lines: lines, person: p, medType: medType, day: day}
	}
	yc, err = tx.Counters(ctx, p.PsnNo, day.Year())
	if err != nil {
		return nil, nil, yc, err
	}
	institution := e.Rules.Institutions[inst]
	claim := &rules.Claim{
		InsuredRegion: p.InsuredRegion, Institution: inst, MedType: medType, SetlDate: day,
		Insutype: p.Insutype, Retired: p.Retired, Registered: institution != nil && p.RegisteredFor(institution.Admdvs, day),
		Assistance: p.Assistance, UseAccount: in.UseAccount, State: yc.Counters,
		Lines: make([]rules.Line, len(lines)),
	}
	for i, l := range lines {
		cnt, err1 := decimal.NewFromString(l.Cnt)
		pric, err2 := decimal.NewFromString(l.Pric)
		if err1 != nil || err2 != nil {
			return nil, nil, yc, fmt.Errorf("stored line %s/%s is not decimal: %v %v", l.MdtrtID, l.SN, err1, err2)
		}
		claim.Lines[i] = rules.Line{SN: l.SN, Code: l.Code, Cnt: cnt, Pric: pric, Amount: l.Amount.Decimal()}
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

// commit writes a settlement (or reversal) with its counters and ledger transaction.
func (e *Engine) commit(ctx context.Context, tx Tx, s *Settlement, yc YearCounters, kind string) error {
	if err := e.commitSide(ctx, tx, s, kind); err != nil {
		return err
	}
	return tx.PutCounters(ctx, yc)
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
type PharmacyInput struct {
	PsnNo        string
	Insutype     string
	MedfeeSumamt string
	UseAccount   bool
	Lines        []LineInput
}

// PharmacyPreSettle prices a sale, writing nothing (2101).
func (e *Engine) PharmacyPreSettle(ctx context.Context, inst string, in PharmacyInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = e.pharmacy(ctx, &previewTx{Tx: tx}, inst, in, "", now)
		return err
	})
	var rc *remoteClaim
	if errors.As(err, &rc) {
		return e.preSettleRemote(ctx, inst, SettleInput{UseAccount: in.UseAccount}, rc, now)
	}
	return out, err
}

// PharmacySettle opens a pharmacy visit, stores its lines and settles it in one transaction (2102).
func (e *Engine) PharmacySettle(ctx context.Context, msg Msg, in PharmacyInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (SettleAnswer, string, error) {
			a, err := e.pharmacy(ctx, tx, msg.Institution, in, msg.ID, now)
			return a, a.SetlID, err
		})
		return err
	})
	var rc *remoteClaim
	if errors.As(err, &rc) {
		// A sale to a person insured in another province: the visit and its
		// lines are stored first, then settled through the hub.
		err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
			if err := tx.PutVisit(ctx, rc.visit); err != nil {
				return err
			}
			return tx.PutLines(ctx, rc.lines)
		})
		if err != nil {
			return SettleAnswer{}, err
		}
		return e.settleRemote(ctx, msg, SettleInput{UseAccount: in.UseAccount}, rc, now)
	}
	return out, err
}

func (e *Engine) pharmacy(ctx context.Context, tx Tx, inst string, in PharmacyInput, msgid string, now time.Time) (SettleAnswer, error) {
	return e.direct(ctx, tx, inst, "41", VisitPharmacy, in, 0, msgid, now)
}

// direct opens a visit, stores its lines and settles it in one go: a
// pharmacy sale, or a manual claim. An empty msgid previews without writing.
func (e *Engine) direct(ctx context.Context, tx Tx, inst, medType string, kind VisitKind, in PharmacyInput, serviceDate rules.Date, msgid string, now time.Time) (SettleAnswer, error) {
	if err := e.checkMedType(inst, medType); err != nil {
		return SettleAnswer{}, err
	}
	p, err := e.person(ctx, tx, in.PsnNo)
	if err != nil {
		return SettleAnswer{}, err
	}
	if len(in.Lines) == 0 {
		return SettleAnswer{}, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: "feedetail is empty"}
	}
	v := &Visit{MdtrtID: NewID("M"), PsnNo: p.PsnNo, Institution: inst, Kind: kind, MedType: medType,
		Insutype: p.Insutype, Begin: now, Status: VisitOpen}
	lines, err := e.classify(v, nil, in.Lines, now)
	if err != nil {
		return SettleAnswer{}, err
	}
	if err := tx.PutVisit(ctx, v); err != nil {
		return SettleAnswer{}, err
	}
	if err := tx.PutLines(ctx, lines); err != nil {
		return SettleAnswer{}, err
	}
	s, v, yc, err := e.price(ctx, tx, inst, SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, MedType: medType,
		Insutype: in.Insutype, MedfeeSumamt: in.MedfeeSumamt, UseAccount: in.UseAccount, ServiceDate: serviceDate}, now)
	if err != nil {
		return SettleAnswer{}, err
	}
	if msgid == "" { // preview
		return answerOf(s), nil
	}
	s.Msgid = msgid
	if err := e.commit(ctx, tx, s, yc, TxnSettle); err != nil {
		return SettleAnswer{}, err
	}
	v.Status = VisitSettled
	if err := tx.PutVisit(ctx, v); err != nil {
		return SettleAnswer{}, err
	}
	return answerOf(s), nil
}

// previewTx lets a pre-settlement run the settle path in a read-only
// transaction: the visit and lines it would create are kept in memory.
type previewTx struct {
	Tx
	visit *Visit
	lines []FeeLine
}

func (p *previewTx) PutVisit(_ context.Context, v *Visit) error { c := *v; p.visit = &c; return nil }
func (p *previewTx) PutLines(_ context.Context, l []FeeLine) error {
	p.lines = append(p.lines, l...)
	return nil
}
func (p *previewTx) Visit(ctx context.Context, id string) (*Visit, error) {
	if p.visit != nil && p.visit.MdtrtID == id {
		c := *p.visit
		return &c, nil
	}
	return p.Tx.Visit(ctx, id)
}
func (p *previewTx) Lines(ctx context.Context, id string) ([]FeeLine, error) {
	if p.visit != nil && p.visit.MdtrtID == id {
		return p.lines, nil
	}
	return p.Tx.Lines(ctx, id)
}

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
