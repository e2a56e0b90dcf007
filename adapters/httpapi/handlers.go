package httpapi

import (
	"strconv"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// handler serves one infno.
type handler struct {
	fn         func(s *Server, c *call) (any, error)
	bureau     bool // a bureau key may call it
	bureauOnly bool // only a bureau key may call it
	person     bool // scoped by the person's insured region rather than the institution
}

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"9001": {fn: signIn},
		"1101": {fn: personInfo},
		"2201": {fn: registerVisit(settlement.VisitOutpatient)},
		"2202": {fn: cancelVisit(false)},
		"2203": {fn: updateVisit},
		"2204": {fn: uploadLines},
		"2205": {fn: withdrawLines},
		"2206": {fn: settle(false)},
		"2207": {fn: settle(true)},
		"2208": {fn: cancelSettlement},
		"2401": {fn: registerVisit(settlement.VisitInpatient)},
		"2402": {fn: discharge},
		"2404": {fn: cancelVisit(false)},
		"2405": {fn: cancelVisit(true)},
		"2301": {fn: uploadLines},
		"2302": {fn: withdrawLines},
		"2303": {fn: settle(false)},
		"2304": {fn: settle(true)},
		"2305": {fn: cancelSettlement},
		"2101": {fn: pharmacy(false)},
		"2102": {fn: pharmacy(true)},
		"2103": {fn: cancelSettlement},
		"2601": {fn: reverse},
		"3201": {fn: reconcileTotals, bureau: true},
		"3202": {fn: reconcileDetails, bureau: true},
		"5206": {fn: cumulative, bureau: true, person: true},
	}
}

// Infnos lists the transactions served, for documentation and tests.
func Infnos() []string {
	out := make([]string, 0, len(handlers))
	for k := range handlers {
		out = append(out, k)
	}
	return out
}

// --- 9001 ---

func signIn(s *Server, c *call) (any, error) {
	var in fsi.SignInInput
	if err := decodeRequired(c, &in, need{"input.signIn.opter_no", &in.SignIn.OpterNo}); err != nil {
		return nil, err
	}
	now := time.Now().In(rules.CST)
	// The key already authenticates every call; sign_no is issued for
	// integrations that send it back, and identifies the operator's session in logs.
	var out fsi.SignInOutput
	out.Signinoutb.SignTime = now.Format(timeLayout)
	out.Signinoutb.SignNo = c.env.FixmedinsCode + now.Format("20060102150405") + refmsgid(now)[14:]
	return out, nil
}

// --- 1101 ---

func personInfo(s *Server, c *call) (any, error) {
	var in fsi.PersonInput
	d := &in.Data
	if err := decodeRequired(c, &in, need{"input.data.mdtrt_cert_type", &d.MdtrtCertType},
		need{"input.data.mdtrt_cert_no", &d.MdtrtCertNo}); err != nil {
		return nil, err
	}
	if d.MdtrtCertType != "02" && d.MdtrtCertType != "03" && d.MdtrtCertType != "01" {
		return nil, refuse("input.data.mdtrt_cert_type %q: want 01 (e-voucher psn_no), 02 (ID number) or 03 (card)", d.MdtrtCertType)
	}
	if d.MdtrtCertType == "02" && !settlement.ValidCertno(d.MdtrtCertNo) {
		return nil, refuse("input.data.mdtrt_cert_no %q is not a valid ID number (GB 11643 check digit)", d.MdtrtCertNo)
	}
	pi, err := s.Engine.FindPerson(c.ctx, d.MdtrtCertType, d.MdtrtCertNo)
	if err != nil {
		return nil, err
	}
	p := pi.Person
	if d.PsnName != "" && d.PsnName != p.Name {
		return nil, refuse("input.data.psn_name %q does not match the card holder", d.PsnName)
	}
	brdy := p.Certno[6:10] + "-" + p.Certno[10:12] + "-" + p.Certno[12:14]
	age := 0
	if b, err := time.Parse("2006-01-02", brdy); err == nil {
		now := s.now().In(rules.CST)
		age = now.Year() - b.Year()
		if now.Month() < b.Month() || (now.Month() == b.Month() && now.Day() < b.Day()) {
			age-- // the birthday is still to come this year (YearDay would be off by one in leap years)
		}
	}
	psnType := "11" // 在职
	if p.Insutype == "390" {
		psnType = "15" // 城乡居民
	} else if p.Retired {
		psnType = "12" // 退休
	}
	idet := []fsi.Idetinfo{}
	if p.Assistance != "" {
		idet = append(idet, fsi.Idetinfo{PsnIdetType: p.Assistance})
	}
	return fsi.PersonOutput{
		Baseinfo: fsi.Baseinfo{PsnNo: p.PsnNo, PsnName: p.Name, Gend: p.Gend, Brdy: brdy, Age: age, Certno: p.Certno},
		Insuinfo: []fsi.Insuinfo{{Balc: fsi.Money(pi.Counters.AcctBalc), Insutype: p.Insutype, PsnType: psnType,
			PsnInsuStas: "1", CvlservFlag: "0", InsuplcAdmdvs: p.InsuredRegion}},
		Idetinfo: idet,
	}, nil
}

// --- 2201 / 2401 ---

func registerVisit(kind settlement.VisitKind) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in struct {
			Data      fsi.VisitData `json:"data"`
			Mdtrtinfo fsi.VisitData `json:"mdtrtinfo"`
		}
		if err := decodeInput(c.env.Input, &in); err != nil {
			return nil, err
		}
		d, obj := in.Data, "data"
		if kind == settlement.VisitInpatient {
			d, obj = in.Mdtrtinfo, "mdtrtinfo"
			if d.IptOtpNo == "" {
				d.IptOtpNo = d.IptNo
			}
			if d.MedType == "" {
				d.MedType = "21"
			}
		}
		p := "input." + obj + "."
		if err := required(p+"psn_no", d.PsnNo, p+"insutype", d.Insutype, p+"begntime", d.Begntime,
			p+"mdtrt_cert_type", d.MdtrtCertType, p+"ipt_otp_no", d.IptOtpNo); err != nil {
			return nil, err
		}
		if kind == settlement.VisitInpatient && d.MedType != "21" {
			return nil, refuse("%smed_type %q: an admission is med_type 21", p, d.MedType)
		}
		begin, err := parseTime(p+"begntime", d.Begntime)
		if err != nil {
			return nil, err
		}
		a, err := s.Engine.RegisterVisit(c.ctx, c.msg, settlement.VisitInput{PsnNo: d.PsnNo, Insutype: d.Insutype,
			Kind: kind, MedType: d.MedType, Begin: begin, IptOtpNo: d.IptOtpNo, DiseCodg: d.DiseCodg, DiseName: d.DiseName})
		if err != nil {
			return nil, err
		}
		v := fsi.VisitInfo{MdtrtID: a.MdtrtID, PsnNo: a.PsnNo, IptOtpNo: a.IptOtpNo}
		if kind == settlement.VisitInpatient {
			return fsi.AdmissionOutput{Result: v}, nil
		}
		return fsi.OutpatientOutput{Data: v}, nil
	}
}

// --- 2202 / 2404 / 2405 ---

func cancelVisit(undischarge bool) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in fsi.VisitRefInput
		if err := decodeRequired(c, &in, need{"input.data.mdtrt_id", &in.Data.MdtrtID},
			need{"input.data.psn_no", &in.Data.PsnNo}); err != nil {
			return nil, err
		}
		return empty(s.Engine.CancelVisit(c.ctx, c.msg, in.Data.MdtrtID, in.Data.PsnNo, undischarge))
	}
}

// --- 2203 ---

func updateVisit(s *Server, c *call) (any, error) {
	var in fsi.MdtrtInput
	d := &in.Mdtrtinfo
	if err := decodeRequired(c, &in, need{"input.mdtrtinfo.mdtrt_id", &d.MdtrtID},
		need{"input.mdtrtinfo.psn_no", &d.PsnNo}, need{"input.mdtrtinfo.med_type", &d.MedType}); err != nil {
		return nil, err
	}
	codg, name := d.DiseCodg, d.DiseName
	if codg == "" && len(in.Diseinfo) > 0 {
		codg, name = in.Diseinfo[0].DiagCode, in.Diseinfo[0].DiagName
	}
	return empty(s.Engine.UpdateVisit(c.ctx, c.msg, settlement.VisitUpdate{MdtrtID: d.MdtrtID, PsnNo: d.PsnNo,
		MedType: d.MedType, DiseCodg: codg, DiseName: name}))
}

// --- 2402 ---

func discharge(s *Server, c *call) (any, error) {
	var in fsi.DischargeInput
	d := &in.Dscginfo
	if err := decodeRequired(c, &in, need{"input.dscginfo.mdtrt_id", &d.MdtrtID},
		need{"input.dscginfo.psn_no", &d.PsnNo}, need{"input.dscginfo.endtime", &d.Endtime}); err != nil {
		return nil, err
	}
	end, err := parseTime("input.dscginfo.endtime", d.Endtime)
	if err != nil {
		return nil, err
	}
	return empty(s.Engine.UpdateVisit(c.ctx, c.msg, settlement.VisitUpdate{MdtrtID: d.MdtrtID, PsnNo: d.PsnNo,
		DiseCodg: d.DiseCodg, DiseName: d.DiseName, End: end}))
}

// --- 2204 / 2301 ---

// lineInputs checks each line's fields, naming the line by its index.
func lineInputs(lines []fsi.FeeLine, mdtrtID, psnNo string) ([]settlement.LineInput, error) {
	if len(lines) == 0 {
		return nil, refuse("input.feedetail is empty")
	}
	out := make([]settlement.LineInput, len(lines))
	for i, l := range lines {
		p := "input.feedetail[" + strconv.Itoa(i) + "]."
		if err := required(p+"feedetl_sn", l.FeedetlSN.S, p+"med_list_codg", l.MedListCodg,
			p+"cnt", l.Cnt.S, p+"pric", l.Pric.S, p+"det_item_fee_sumamt", l.DetItemFeeSumamt.S); err != nil {
			return nil, err
		}
		if mdtrtID != "" && l.MdtrtID != mdtrtID {
			return nil, refuse("%smdtrt_id %q differs from the first line's %q", p, l.MdtrtID, mdtrtID)
		}
		if psnNo != "" && l.PsnNo != psnNo {
			return nil, refuse("%spsn_no %q differs from the first line's %q", p, l.PsnNo, psnNo)
		}
		t, err := parseTime(p+"fee_ocur_time", l.FeeOcurTime)
		if err != nil {
			return nil, err
		}
		out[i] = settlement.LineInput{SN: l.FeedetlSN.S, ChrgBchno: l.ChrgBchno, Code: l.MedListCodg,
			HospCode: l.MedinsListCodg, Cnt: l.Cnt.S, Pric: l.Pric.S, Amount: l.DetItemFeeSumamt.S, FeeTime: t}
	}
	return out, nil
}

func uploadLines(s *Server, c *call) (any, error) {
	var in fsi.FeeInput
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	if len(in.Feedetail) == 0 {
		return nil, refuse("input.feedetail is empty")
	}
	first := in.Feedetail[0]
	if err := required("input.feedetail[0].mdtrt_id", first.MdtrtID, "input.feedetail[0].psn_no", first.PsnNo); err != nil {
		return nil, err
	}
	lines, err := lineInputs(in.Feedetail, first.MdtrtID, first.PsnNo)
	if err != nil {
		return nil, err
	}
	a, err := s.Engine.UploadLines(c.ctx, c.msg, first.MdtrtID, first.PsnNo, lines)
	if err != nil {
		return nil, err
	}
	out := fsi.FeeOutput{Result: make([]fsi.PricedLine, len(a.Lines))}
	for i, l := range a.Lines {
		out.Result[i] = fsi.PricedLine{FeedetlSN: l.SN, DetItemFeeSumamt: fsi.Money(l.Amount), Cnt: l.Cnt, Pric: l.Pric,
			PricUplmtAmt: l.PricUplmt, SelfpayProp: l.SelfpayProp, FulamtOwnpayAmt: fsi.Money(l.Fulamt), OverlmtAmt: fsi.Money(l.Over),
			PreselfpayAmt: fsi.Money(l.Pre), InscpScpAmt: fsi.Money(l.Inscp), ChrgitmLv: string(l.Level), MedChrgitmType: l.ListType}
	}
	return out, nil
}

// --- 2205 / 2302 ---

func withdrawLines(s *Server, c *call) (any, error) {
	var in struct {
		Data struct {
			MdtrtID   string `json:"mdtrt_id"`
			ChrgBchno string `json:"chrg_bchno"`
			PsnNo     string `json:"psn_no"`
		} `json:"data"`
	}
	d := &in.Data
	if err := decodeRequired(c, &in, need{"input.data.mdtrt_id", &d.MdtrtID}, need{"input.data.chrg_bchno", &d.ChrgBchno},
		need{"input.data.psn_no", &d.PsnNo}); err != nil {
		return nil, err
	}
	return empty(s.Engine.WithdrawLines(c.ctx, c.msg, d.MdtrtID, d.PsnNo, d.ChrgBchno))
}

// empty answers a call that returns nothing but success ({}), or the
// engine's refusal.
func empty[T any](_ T, err error) (any, error) { return fsi.Empty{}, err }
