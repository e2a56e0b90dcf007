package httpapi

import (
	"strconv"
	"time"

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

type signInInput struct {
	SignIn struct {
		OpterNo string `json:"opter_no"`
		Mac     string `json:"mac"`
		IP      string `json:"ip"`
	} `json:"signIn"`
}

func signIn(s *Server, c *call) (any, error) {
	var in signInInput
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	if err := required("input.signIn.opter_no", in.SignIn.OpterNo); err != nil {
		return nil, err
	}
	now := time.Now().In(cst)
	// The key already authenticates every call; sign_no is issued for
	// integrations that send it back, and identifies the operator's session in logs.
	return map[string]any{"signinoutb": map[string]string{
		"sign_time": now.Format(timeLayout), "sign_no": c.env.FixmedinsCode + now.Format("20060102150405") + refmsgid(now)[14:]}}, nil
}

// --- 1101 ---

type personInput struct {
	Data struct {
		MdtrtCertType string `json:"mdtrt_cert_type"`
		MdtrtCertNo   string `json:"mdtrt_cert_no"`
		CardSn        string `json:"card_sn"`
		PsnCertType   string `json:"psn_cert_type"`
		Certno        string `json:"certno"`
		PsnName       string `json:"psn_name"`
	} `json:"data"`
}

func personInfo(s *Server, c *call) (any, error) {
	var in personInput
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	if err := required("input.data.mdtrt_cert_type", d.MdtrtCertType, "input.data.mdtrt_cert_no", d.MdtrtCertNo); err != nil {
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
		now := s.now().In(cst)
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
	idet := []map[string]string{}
	if p.Assistance != "" {
		idet = append(idet, map[string]string{"psn_idet_type": p.Assistance, "begntime": "", "endtime": ""})
	}
	return map[string]any{
		"baseinfo": map[string]any{"psn_no": p.PsnNo, "psn_name": p.Name, "gend": p.Gend, "brdy": brdy, "age": age, "certno": p.Certno},
		"insuinfo": []map[string]any{{"balc": pi.Counters.AcctBalc, "insutype": p.Insutype, "psn_type": psnType,
			"psn_insu_stas": "1", "cvlserv_flag": "0", "insuplc_admdvs": p.InsuredRegion}},
		"idetinfo": idet,
	}, nil
}

// --- 2201 / 2401 ---

type visitData struct {
	MdtrtID       string `json:"mdtrt_id"`
	PsnNo         string `json:"psn_no"`
	Insutype      string `json:"insutype"`
	Begntime      string `json:"begntime"`
	MdtrtCertType string `json:"mdtrt_cert_type"`
	MdtrtCertNo   string `json:"mdtrt_cert_no"`
	IptOtpNo      string `json:"ipt_otp_no"`
	IptNo         string `json:"ipt_no"`
	MedType       string `json:"med_type"`
	DiseCodg      string `json:"dise_codg"`
	DiseName      string `json:"dise_name"`
	AtddrNo       string `json:"atddr_no"`
	DrName        string `json:"dr_name"`
	DeptCode      string `json:"dept_code"`
	DeptName      string `json:"dept_name"`
	Caty          string `json:"caty"`
}

func registerVisit(kind settlement.VisitKind) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in struct {
			Data      visitData `json:"data"`
			Mdtrtinfo visitData `json:"mdtrtinfo"`
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
		if kind == settlement.VisitInpatient {
			return map[string]any{"result": a}, nil
		}
		return map[string]any{"data": a}, nil
	}
}

// --- 2202 / 2404 / 2405 ---

type visitRef struct {
	Data struct {
		PsnNo    string `json:"psn_no"`
		MdtrtID  string `json:"mdtrt_id"`
		IptOtpNo string `json:"ipt_otp_no"`
	} `json:"data"`
}

func cancelVisit(undischarge bool) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in visitRef
		if err := decodeInput(c.env.Input, &in); err != nil {
			return nil, err
		}
		if err := required("input.data.mdtrt_id", in.Data.MdtrtID, "input.data.psn_no", in.Data.PsnNo); err != nil {
			return nil, err
		}
		_, err := s.Engine.CancelVisit(c.ctx, c.msg, in.Data.MdtrtID, in.Data.PsnNo, undischarge)
		return map[string]any{}, err
	}
}

// --- 2203 ---

func updateVisit(s *Server, c *call) (any, error) {
	var in struct {
		Mdtrtinfo visitData `json:"mdtrtinfo"`
		Diseinfo  []struct {
			DiagCode string `json:"diag_code"`
			DiagName string `json:"diag_name"`
			DiagType string `json:"diag_type"`
		} `json:"diseinfo"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Mdtrtinfo
	if err := required("input.mdtrtinfo.mdtrt_id", d.MdtrtID, "input.mdtrtinfo.psn_no", d.PsnNo,
		"input.mdtrtinfo.med_type", d.MedType); err != nil {
		return nil, err
	}
	codg, name := d.DiseCodg, d.DiseName
	if codg == "" && len(in.Diseinfo) > 0 {
		codg, name = in.Diseinfo[0].DiagCode, in.Diseinfo[0].DiagName
	}
	_, err := s.Engine.UpdateVisit(c.ctx, c.msg, settlement.VisitUpdate{MdtrtID: d.MdtrtID, PsnNo: d.PsnNo,
		MedType: d.MedType, DiseCodg: codg, DiseName: name})
	return map[string]any{}, err
}

// --- 2402 ---

func discharge(s *Server, c *call) (any, error) {
	var in struct {
		Dscginfo struct {
			MdtrtID  string `json:"mdtrt_id"`
			PsnNo    string `json:"psn_no"`
			Endtime  string `json:"endtime"`
			DiseCodg string `json:"dise_codg"`
			DiseName string `json:"dise_name"`
		} `json:"dscginfo"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Dscginfo
	if err := required("input.dscginfo.mdtrt_id", d.MdtrtID, "input.dscginfo.psn_no", d.PsnNo, "input.dscginfo.endtime", d.Endtime); err != nil {
		return nil, err
	}
	end, err := parseTime("input.dscginfo.endtime", d.Endtime)
	if err != nil {
		return nil, err
	}
	_, err = s.Engine.UpdateVisit(c.ctx, c.msg, settlement.VisitUpdate{MdtrtID: d.MdtrtID, PsnNo: d.PsnNo,
		DiseCodg: d.DiseCodg, DiseName: d.DiseName, End: end})
	return map[string]any{}, err
}

// --- 2204 / 2301 ---

type feeLine struct {
	FeedetlSN        rules.Text `json:"feedetl_sn"`
	MdtrtID          string     `json:"mdtrt_id"`
	PsnNo            string     `json:"psn_no"`
	ChrgBchno        string     `json:"chrg_bchno"`
	MedListCodg      string     `json:"med_list_codg"`
	MedinsListCodg   string     `json:"medins_list_codg"`
	DetItemFeeSumamt rules.Text `json:"det_item_fee_sumamt"`
	Cnt              rules.Text `json:"cnt"`
	Pric             rules.Text `json:"pric"`
	FeeOcurTime      string     `json:"fee_ocur_time"`
}

// lineInputs checks each line's fields, naming the line by its index.
func lineInputs(lines []feeLine, mdtrtID, psnNo string) ([]settlement.LineInput, error) {
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
	var in struct {
		Feedetail []feeLine `json:"feedetail"`
	}
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
	return map[string]any{"result": a.Lines}, nil
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
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	if err := required("input.data.mdtrt_id", d.MdtrtID, "input.data.chrg_bchno", d.ChrgBchno, "input.data.psn_no", d.PsnNo); err != nil {
		return nil, err
	}
	_, err := s.Engine.WithdrawLines(c.ctx, c.msg, d.MdtrtID, d.PsnNo, d.ChrgBchno)
	return map[string]any{}, err
}

// --- 2206 / 2207 / 2303 / 2304 ---

type settleData struct {
	PsnNo         string     `json:"psn_no"`
	MdtrtCertType string     `json:"mdtrt_cert_type"`
	MdtrtCertNo   string     `json:"mdtrt_cert_no"`
	MedType       string     `json:"med_type"`
	MedfeeSumamt  rules.Text `json:"medfee_sumamt"`
	PsnSetlway    string     `json:"psn_setlway"`
	MdtrtID       string     `json:"mdtrt_id"`
	ChrgBchno     string     `json:"chrg_bchno"`
	Insutype      string     `json:"insutype"`
	AcctUsedFlag  string     `json:"acct_used_flag"`
	MidSetlFlag   string     `json:"mid_setl_flag"`
}

func acctFlag(path, v string) (bool, error) {
	switch v {
	case "1":
		return true, nil
	case "0", "":
		return false, nil
	}
	return false, refuse("%s %q: want 0 or 1", path, v)
}

func checkAmountText(path string, t rules.Text) error {
	if !t.Set {
		return refuse("%s is required", path)
	}
	if _, err := rules.ParseMoney(t.S); err != nil {
		return refuse("%s %q is not an amount with at most 2 decimals", path, t.S)
	}
	return nil
}

func settle(commit bool) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in struct {
			Data settleData `json:"data"`
		}
		if err := decodeInput(c.env.Input, &in); err != nil {
			return nil, err
		}
		d := in.Data
		if err := required("input.data.psn_no", d.PsnNo, "input.data.mdtrt_id", d.MdtrtID, "input.data.med_type", d.MedType,
			"input.data.insutype", d.Insutype); err != nil {
			return nil, err
		}
		if err := checkAmountText("input.data.medfee_sumamt", d.MedfeeSumamt); err != nil {
			return nil, err
		}
		if d.MidSetlFlag == "1" {
			return nil, refuse("input.data.mid_setl_flag 1: mid-stay settlement (中途结算) is not offered; settle at discharge")
		}
		useAcct, err := acctFlag("input.data.acct_used_flag", d.AcctUsedFlag)
		if err != nil {
			return nil, err
		}
		si := settlement.SettleInput{MdtrtID: d.MdtrtID, PsnNo: d.PsnNo, MedType: d.MedType, Insutype: d.Insutype,
			MedfeeSumamt: d.MedfeeSumamt.S, UseAccount: useAcct}
		var a settlement.SettleAnswer
		if commit {
			a, err = s.Engine.Settle(c.ctx, c.msg, si)
		} else {
			a, err = s.Engine.PreSettle(c.ctx, c.env.FixmedinsCode, si)
		}
		if err != nil {
			return nil, err
		}
		return settleOutput(a, c.env.Msgid), nil
	}
}

// Setlinfo is the national setlinfo object.
type Setlinfo struct {
	MdtrtID         string      `json:"mdtrt_id"`
	SetlID          string      `json:"setl_id"`
	PsnNo           string      `json:"psn_no"`
	SetlTime        string      `json:"setl_time"`
	MedType         string      `json:"med_type"`
	Insutype        string      `json:"insutype"`
	MedfeeSumamt    rules.Money `json:"medfee_sumamt"`
	FulamtOwnpayAmt rules.Money `json:"fulamt_ownpay_amt"`
	OverlmtSelfpay  rules.Money `json:"overlmt_selfpay"`
	PreselfpayAmt   rules.Money `json:"preselfpay_amt"`
	InscpScpAmt     rules.Money `json:"inscp_scp_amt"`
	ActPayDedc      rules.Money `json:"act_pay_dedc"`
	HifpPay         rules.Money `json:"hifp_pay"`
	PoolPropSelfpay rules.Ratio `json:"pool_prop_selfpay"`
	CvlservPay      rules.Money `json:"cvlserv_pay"`
	HifesPay        rules.Money `json:"hifes_pay"`
	HifmiPay        rules.Money `json:"hifmi_pay"`
	HifobPay        rules.Money `json:"hifob_pay"`
	MafPay          rules.Money `json:"maf_pay"`
	OthPay          rules.Money `json:"oth_pay"`
	FundPaySumamt   rules.Money `json:"fund_pay_sumamt"`
	PsnPartAmt      rules.Money `json:"psn_part_amt"`
	AcctPay         rules.Money `json:"acct_pay"`
	PsnCashPay      rules.Money `json:"psn_cash_pay"`
	HospPartAmt     rules.Money `json:"hosp_part_amt"`
	Balc            rules.Money `json:"balc"`
	MedinsSetlID    string      `json:"medins_setl_id"`
	ClrOptins       string      `json:"clr_optins"`
	ClrWay          string      `json:"clr_way"`
	ClrType         string      `json:"clr_type"`
}

// SettleOutput is the output of a settlement transaction.
type SettleOutput struct {
	Setlinfo   Setlinfo            `json:"setlinfo"`
	Setldetail []rules.FundPayment `json:"setldetail"`
}

func settleOutput(a settlement.SettleAnswer, msgid string) SettleOutput {
	i := a.Info
	clrType := "11"
	switch a.MedType {
	case "21":
		clrType = "21"
	case "14":
		clrType = "14"
	case "41":
		clrType = "41"
	}
	detail := a.Detail
	if detail == nil {
		detail = []rules.FundPayment{}
	}
	setlTime := ""
	if !a.SetlTime.IsZero() {
		setlTime = a.SetlTime.In(cst).Format(timeLayout)
	}
	return SettleOutput{Setlinfo: Setlinfo{MdtrtID: a.MdtrtID, SetlID: a.SetlID, PsnNo: a.PsnNo, SetlTime: setlTime,
		MedType: a.MedType, Insutype: a.Insutype, MedfeeSumamt: i.MedfeeSumamt, FulamtOwnpayAmt: i.FulamtOwnpayAmt,
		OverlmtSelfpay: i.OverlmtSelfpay, PreselfpayAmt: i.PreselfpayAmt, InscpScpAmt: i.InscpScpAmt,
		ActPayDedc: i.ActPayDedc, HifpPay: i.HifpPay, PoolPropSelfpay: i.PoolPropSelfpay, HifmiPay: i.HifmiPay,
		HifobPay: i.HifobPay, MafPay: i.MafPay, FundPaySumamt: i.FundPaySumamt, PsnPartAmt: i.PsnPartAmt,
		AcctPay: i.AcctPay, PsnCashPay: i.PsnCashPay, Balc: i.Balc, MedinsSetlID: msgid, ClrOptins: a.ClrOptins,
		ClrWay: "1", ClrType: clrType}, Setldetail: detail}
}

// --- 2208 / 2305 / 2103 ---

// cancelsMedTypes is what each cancel transaction may undo.
var cancelsMedTypes = map[string][]string{"2208": {"11", "14"}, "2305": {"21"}, "2103": {"41"}}

func cancelSettlement(s *Server, c *call) (any, error) {
	var in struct {
		Data struct {
			SetlID  string `json:"setl_id"`
			MdtrtID string `json:"mdtrt_id"`
			PsnNo   string `json:"psn_no"`
		} `json:"data"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	if err := required("input.data.setl_id", d.SetlID, "input.data.psn_no", d.PsnNo); err != nil {
		return nil, err
	}
	if c.env.Infno != "2103" {
		if err := required("input.data.mdtrt_id", d.MdtrtID); err != nil {
			return nil, err
		}
	}
	a, err := s.Engine.Cancel(c.ctx, c.msg, settlement.CancelInput{SetlID: d.SetlID, MdtrtID: d.MdtrtID, PsnNo: d.PsnNo,
		MedTypes: cancelsMedTypes[c.env.Infno]})
	if err != nil {
		return nil, err
	}
	return settleOutput(a, c.env.Msgid), nil
}

// --- 2101 / 2102 ---

func pharmacy(commit bool) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in struct {
			Data      settleData `json:"data"`
			Feedetail []feeLine  `json:"feedetail"`
		}
		if err := decodeInput(c.env.Input, &in); err != nil {
			return nil, err
		}
		d := in.Data
		if err := required("input.data.psn_no", d.PsnNo, "input.data.insutype", d.Insutype); err != nil {
			return nil, err
		}
		if d.MedType != "" && d.MedType != "41" {
			return nil, refuse("input.data.med_type %q: a pharmacy sale is med_type 41", d.MedType)
		}
		if err := checkAmountText("input.data.medfee_sumamt", d.MedfeeSumamt); err != nil {
			return nil, err
		}
		useAcct, err := acctFlag("input.data.acct_used_flag", d.AcctUsedFlag)
		if err != nil {
			return nil, err
		}
		lines, err := lineInputs(in.Feedetail, "", "")
		if err != nil {
			return nil, err
		}
		pi := settlement.PharmacyInput{PsnNo: d.PsnNo, Insutype: d.Insutype, MedfeeSumamt: d.MedfeeSumamt.S,
			UseAccount: useAcct, Lines: lines}
		var a settlement.SettleAnswer
		if commit {
			a, err = s.Engine.PharmacySettle(c.ctx, c.msg, pi)
		} else {
			a, err = s.Engine.PharmacyPreSettle(c.ctx, c.env.FixmedinsCode, pi)
		}
		if err != nil {
			return nil, err
		}
		return settleOutput(a, c.env.Msgid), nil
	}
}

// --- 2601 ---

func reverse(s *Server, c *call) (any, error) {
	var in struct {
		Data struct {
			PsnNo  string `json:"psn_no"`
			Omsgid string `json:"omsgid"`
			Oinfno string `json:"oinfno"`
		} `json:"data"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	if err := required("input.data.psn_no", d.PsnNo, "input.data.omsgid", d.Omsgid, "input.data.oinfno", d.Oinfno); err != nil {
		return nil, err
	}
	if err := checkMsgid(d.Omsgid, c.env.FixmedinsCode); err != nil {
		return nil, refuse("input.data.omsgid: %v", err)
	}
	a, err := s.Engine.Reverse(c.ctx, c.msg, d.Omsgid, d.Oinfno, d.PsnNo)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"data": map[string]string{"omsgid": a.Omsgid, "oinfno": d.Oinfno, "rslt": a.Outcome}}
	if a.Setl != nil {
		so := settleOutput(*a.Setl, c.env.Msgid)
		out["setlinfo"], out["setldetail"] = so.Setlinfo, so.Setldetail
	}
	return out, nil
}

// --- 3201 / 3202 ---

type stmtData struct {
	Insutype         string     `json:"insutype"`
	ClrType          string     `json:"clr_type"`
	SetlOptins       string     `json:"setl_optins"`
	StmtBegndate     string     `json:"stmt_begndate"`
	StmtEnddate      string     `json:"stmt_enddate"`
	MedfeeSumamt     rules.Text `json:"medfee_sumamt"`
	FundPaySumamt    rules.Text `json:"fund_pay_sumamt"`
	AcctPay          rules.Text `json:"acct_pay"`
	FixmedinsSetlCnt rules.Text `json:"fixmedins_setl_cnt"`
}

func periodOf(c *call, d stmtData) (settlement.PeriodQuery, error) {
	q := settlement.PeriodQuery{Institution: c.env.FixmedinsCode, Insutype: d.Insutype, ClrType: d.ClrType}
	var err error
	if err := required("input.data.stmt_begndate", d.StmtBegndate, "input.data.stmt_enddate", d.StmtEnddate); err != nil {
		return q, err
	}
	if q.From, err = rules.ParseDate(d.StmtBegndate); err != nil {
		return q, refuse("input.data.stmt_begndate: %v", err)
	}
	if q.To, err = rules.ParseDate(d.StmtEnddate); err != nil {
		return q, refuse("input.data.stmt_enddate: %v", err)
	}
	if q.To < q.From {
		return q, refuse("input.data.stmt_enddate %s is before stmt_begndate %s", q.To, q.From)
	}
	switch q.ClrType {
	case "", "11", "14", "21", "41":
	default:
		return q, refuse("input.data.clr_type %q: want 11, 14, 21 or 41", q.ClrType)
	}
	return q, nil
}

func reconcileTotals(s *Server, c *call) (any, error) {
	var in struct {
		Data stmtData `json:"data"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	q, err := periodOf(c, d)
	if err != nil {
		return nil, err
	}
	var his settlement.Totals
	for _, f := range []struct {
		path string
		t    rules.Text
		dst  *rules.Money
	}{{"input.data.medfee_sumamt", d.MedfeeSumamt, &his.MedfeeSumamt}, {"input.data.fund_pay_sumamt", d.FundPaySumamt, &his.FundPaySumamt},
		{"input.data.acct_pay", d.AcctPay, &his.AcctPay}} {
		if err := checkAmountText(f.path, f.t); err != nil {
			return nil, err
		}
		*f.dst, _ = rules.ParseMoney(f.t.S)
	}
	n, err := strconv.Atoi(d.FixmedinsSetlCnt.S)
	if err != nil || n < 0 {
		return nil, refuse("input.data.fixmedins_setl_cnt %q is not a count", d.FixmedinsSetlCnt.S)
	}
	his.Count = n
	r, err := s.Engine.ReconcileTotals(c.ctx, q, his)
	if err != nil {
		return nil, err
	}
	return map[string]any{"stmtinfo": r}, nil
}

func reconcileDetails(s *Server, c *call) (any, error) {
	var in struct {
		Data   stmtData `json:"data"`
		Detail []struct {
			SetlID        string     `json:"setl_id"`
			MdtrtID       string     `json:"mdtrt_id"`
			PsnNo         string     `json:"psn_no"`
			MedfeeSumamt  rules.Text `json:"medfee_sumamt"`
			FundPaySumamt rules.Text `json:"fund_pay_sumamt"`
			AcctPay       rules.Text `json:"acct_pay"`
			RefdSetlFlag  string     `json:"refd_setl_flag"`
		} `json:"detail"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	q, err := periodOf(c, in.Data)
	if err != nil {
		return nil, err
	}
	rows := make([]settlement.DetailRow, len(in.Detail))
	for i, d := range in.Detail {
		p := "input.detail[" + strconv.Itoa(i) + "]."
		if err := required(p+"setl_id", d.SetlID); err != nil {
			return nil, err
		}
		if d.RefdSetlFlag != "" && d.RefdSetlFlag != "0" && d.RefdSetlFlag != "1" {
			return nil, refuse("%srefd_setl_flag %q: want 0 or 1", p, d.RefdSetlFlag)
		}
		r := settlement.DetailRow{SetlID: d.SetlID, MdtrtID: d.MdtrtID, PsnNo: d.PsnNo, RefdSetlFlag: d.RefdSetlFlag}
		for _, f := range []struct {
			name string
			t    rules.Text
			dst  *rules.Money
		}{{"medfee_sumamt", d.MedfeeSumamt, &r.MedfeeSumamt}, {"fund_pay_sumamt", d.FundPaySumamt, &r.FundPaySumamt}, {"acct_pay", d.AcctPay, &r.AcctPay}} {
			if err := checkAmountText(p+f.name, f.t); err != nil {
				return nil, err
			}
			*f.dst, _ = rules.ParseMoney(f.t.S)
		}
		rows[i] = r
	}
	diffs, err := s.Engine.ReconcileDetails(c.ctx, q, rows)
	if err != nil {
		return nil, err
	}
	if diffs == nil {
		diffs = []settlement.Difference{}
	}
	return map[string]any{"result": diffs}, nil
}

// --- 5206 ---

func cumulative(s *Server, c *call) (any, error) {
	var in struct {
		Data struct {
			PsnNo string `json:"psn_no"`
			CumYm string `json:"cum_ym"`
		} `json:"data"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	if err := required("input.data.psn_no", d.PsnNo); err != nil {
		return nil, err
	}
	year := s.now().In(cst).Year()
	if d.CumYm != "" {
		t, err := time.Parse("200601", d.CumYm)
		if err != nil {
			return nil, refuse("input.data.cum_ym %q is not yyyyMM", d.CumYm)
		}
		year = t.Year()
	}
	if c.who.IsBureau() {
		pi, err := s.Engine.FindPerson(c.ctx, "01", d.PsnNo)
		if err != nil {
			return nil, err
		}
		if pi.Person.InsuredRegion != c.who.Region {
			return nil, refuse("input.data.psn_no %s is not insured in region %s", d.PsnNo, c.who.Region)
		}
	}
	cnt, err := s.Engine.YearCountersOf(c.ctx, d.PsnNo, year)
	if err != nil {
		return nil, err
	}
	return map[string]any{"cuminfo": map[string]any{"psn_no": d.PsnNo, "year": year, "counters": cnt}}, nil
}
