package settlement

import (
	"context"
	"fmt"
	"time"

	"github.com/medsettle/medsettle/rules"
)

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
	return once(ctx, e.Store, msg, now, Prefetch{Person: in.PsnNo}, func(ctx context.Context, tx Tx) (VisitAnswer, string, error) {
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

// openVisit is visitOf for a message that needs the visit open (lines may
// still change): ECONFLICT "visit <id> is <status>", then ": why" when why
// is given, for a visit settled or cancelled.
func openVisit(ctx context.Context, tx Tx, inst, mdtrtID, psnNo, why string) (*Visit, error) {
	v, err := visitOf(ctx, tx, inst, mdtrtID, psnNo)
	if err != nil {
		return nil, err
	}
	if v.Status != VisitOpen {
		if why == "" {
			return nil, Errorf(ECONFLICT, "visit %s is %s", v.MdtrtID, v.Status)
		}
		return nil, Errorf(ECONFLICT, "visit %s is %s: %s", v.MdtrtID, v.Status, why)
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
		v, err := openVisit(ctx, tx, msg.Institution, in.MdtrtID, in.PsnNo, "")
		if err != nil {
			return "", err
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
		v, err := openVisit(ctx, tx, msg.Institution, mdtrtID, psnNo, "cancel its settlement first")
		if err != nil {
			return "", err
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
	return once(ctx, e.Store, msg, e.now(), Prefetch{}, func(ctx context.Context, tx Tx) (Ack, string, error) {
		ref, err := op(ctx, tx)
		return Ack{Ref: ref}, ref, err
	})
}

// LineInput is one fee line as uploaded (2204/2301).
type LineInput struct {
	SN        string    `json:"feedetl_sn"`
	ChrgBchno string    `json:"chrg_bchno,omitempty"`
	Code      string    `json:"med_list_codg"`
	HospCode  string    `json:"medins_list_codg,omitempty"`
	Cnt       string    `json:"cnt"`                 // exact decimal text, at most 4 decimals
	Pric      string    `json:"pric"`                // exact decimal text, at most 4 decimals
	Amount    string    `json:"det_item_fee_sumamt"` // at most 2 decimals, = ROUND(cnt*pric)
	FeeTime   time.Time `json:"fee_ocur_time,omitzero"`
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
	return once(ctx, e.Store, msg, now, Prefetch{Visit: mdtrtID}, func(ctx context.Context, tx Tx) (UploadAnswer, string, error) {
		v, err := openVisit(ctx, tx, msg.Institution, mdtrtID, psnNo, "no more lines")
		if err != nil {
			return UploadAnswer{}, "", err
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
		if _, err := openVisit(ctx, tx, msg.Institution, mdtrtID, psnNo, "lines are final"); err != nil {
			return "", err
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
