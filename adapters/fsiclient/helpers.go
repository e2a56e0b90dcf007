package fsiclient

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/rules"
)

// Typed helpers for the common flow of a counter. Each is one transaction;
// those that change money or a visit go through CallSettle, so a lost answer
// ends in a 2601 and an *UnknownOutcome rather than in doubt.
//
//	p, _ := c.Person(ctx, "03", cardNo)                       // 1101
//	v, _ := c.RegisterOutpatient(ctx, Registration{...})      // 2201 (Admit: 2401)
//	_, _ = c.UploadFees(ctx, v, "B1", fees)                   // 2204 (2301 for an admission)
//	pre, _ := c.PreSettle(ctx, v, SettleParams{...})          // 2206 (2303)
//	st, _ := c.Settle(ctx, v, SettleParams{...})              // 2207 (2304)
//	_, _ = c.Cancel(ctx, st)                                  // 2208 (2305, 2103)

// PersonInfo is the answer of 1101.
type PersonInfo struct {
	PsnNo         string
	Name          string
	Gend          string
	Brdy          string
	Age           int
	Certno        string
	Insutype      string // 310 employee, 390 resident
	PsnType       string
	InsuplcAdmdvs string      // the insured region
	Balc          rules.Money // personal account balance
	Idet          []string    // psn_idet_type of each identity (medical assistance)
}

// Person is 1101: who holds certificate certNo of certType (01 e-voucher
// psn_no, 02 ID number, 03 insurance card).
func (c *Client) Person(ctx context.Context, certType, certNo string) (*PersonInfo, error) {
	ans, err := c.Call(ctx, "1101", map[string]any{"data": map[string]string{
		"mdtrt_cert_type": certType, "mdtrt_cert_no": certNo, "psn_cert_type": "", "certno": "", "psn_name": ""}})
	if err != nil {
		return nil, err
	}
	var out struct {
		Baseinfo struct {
			PsnNo   string `json:"psn_no"`
			PsnName string `json:"psn_name"`
			Gend    string `json:"gend"`
			Brdy    string `json:"brdy"`
			Age     int    `json:"age"`
			Certno  string `json:"certno"`
		} `json:"baseinfo"`
		Insuinfo []struct {
			Balc          rules.Money `json:"balc"`
			Insutype      string      `json:"insutype"`
			PsnType       string      `json:"psn_type"`
			InsuplcAdmdvs string      `json:"insuplc_admdvs"`
		} `json:"insuinfo"`
		Idetinfo []struct {
			PsnIdetType string `json:"psn_idet_type"`
		} `json:"idetinfo"`
	}
	if err := ans.Decode(&out); err != nil {
		return nil, err
	}
	b := out.Baseinfo
	p := &PersonInfo{PsnNo: b.PsnNo, Name: b.PsnName, Gend: b.Gend, Brdy: b.Brdy, Age: b.Age, Certno: b.Certno}
	if len(out.Insuinfo) > 0 {
		i := out.Insuinfo[0]
		p.Insutype, p.PsnType, p.InsuplcAdmdvs, p.Balc = i.Insutype, i.PsnType, i.InsuplcAdmdvs, i.Balc
	}
	for _, d := range out.Idetinfo {
		p.Idet = append(p.Idet, d.PsnIdetType)
	}
	return p, nil
}

// Visit is an open visit (就诊): an outpatient visit or an admission.
type Visit struct {
	MdtrtID   string
	PsnNo     string
	IptOtpNo  string
	Inpatient bool
	Msgid     string // of the 2201/2401 that opened it
}

// Registration opens a visit (2201) or an admission (2401).
type Registration struct {
	PsnNo    string
	Insutype string
	CertType string    // mdtrt_cert_type used at the counter: 01, 02 or 03
	CertNo   string    // mdtrt_cert_no
	IptOtpNo string    // the HIS's outpatient or inpatient number
	Begin    time.Time // zero: now
	MedType  string    // outpatient: 11 or 14, or "" to give it at settlement; admission: 21
	DiseCodg string
	DiseName string
	DeptCode string
	DeptName string
	DrName   string
}

func (r Registration) data(c *Client) map[string]string {
	begin := r.Begin
	if begin.IsZero() {
		begin = c.now()
	}
	return map[string]string{"psn_no": r.PsnNo, "insutype": r.Insutype, "begntime": begin.In(CST).Format(TimeLayout),
		"mdtrt_cert_type": r.CertType, "mdtrt_cert_no": r.CertNo, "ipt_otp_no": r.IptOtpNo, "med_type": r.MedType,
		"dise_codg": r.DiseCodg, "dise_name": r.DiseName, "dept_code": r.DeptCode, "dept_name": r.DeptName,
		"dr_name": r.DrName, "atddr_no": "", "caty": r.DeptCode}
}

type visitOutput struct {
	MdtrtID  string `json:"mdtrt_id"`
	PsnNo    string `json:"psn_no"`
	IptOtpNo string `json:"ipt_otp_no"`
}

// RegisterOutpatient is 2201: it opens an outpatient visit.
func (c *Client) RegisterOutpatient(ctx context.Context, r Registration) (Visit, error) {
	ans, err := c.CallSettle(ctx, "2201", r.PsnNo, map[string]any{"data": r.data(c)})
	if err != nil {
		return Visit{}, err
	}
	var out struct {
		Data visitOutput `json:"data"`
	}
	if err := ans.Decode(&out); err != nil {
		return Visit{}, err
	}
	return Visit{MdtrtID: out.Data.MdtrtID, PsnNo: out.Data.PsnNo, IptOtpNo: out.Data.IptOtpNo, Msgid: ans.Msgid}, nil
}

// Admit is 2401: it opens an admission (med_type 21).
func (c *Client) Admit(ctx context.Context, r Registration) (Visit, error) {
	if r.MedType == "" {
		r.MedType = "21"
	}
	d := r.data(c)
	d["ipt_no"] = r.IptOtpNo
	in := map[string]any{"mdtrtinfo": d, "diseinfo": []map[string]string{}}
	if r.DiseCodg != "" {
		in["diseinfo"] = []map[string]string{{"diag_code": r.DiseCodg, "diag_name": r.DiseName, "diag_type": "1"}}
	}
	ans, err := c.CallSettle(ctx, "2401", r.PsnNo, in)
	if err != nil {
		return Visit{}, err
	}
	var out struct {
		Result visitOutput `json:"result"`
	}
	if err := ans.Decode(&out); err != nil {
		return Visit{}, err
	}
	return Visit{MdtrtID: out.Result.MdtrtID, PsnNo: out.Result.PsnNo, IptOtpNo: out.Result.IptOtpNo, Inpatient: true, Msgid: ans.Msgid}, nil
}

// Discharge is 2402: the admission ends at end (zero: now).
func (c *Client) Discharge(ctx context.Context, v Visit, end time.Time, diseCodg, diseName string) error {
	if end.IsZero() {
		end = c.now()
	}
	_, err := c.Call(ctx, "2402", map[string]any{"dscginfo": map[string]string{"mdtrt_id": v.MdtrtID, "psn_no": v.PsnNo,
		"endtime": end.In(CST).Format(TimeLayout), "dise_codg": diseCodg, "dise_name": diseName}})
	return err
}

// Fee is one fee line.
type Fee struct {
	SN       string // feedetl_sn, unique within the visit
	Code     string // med_list_codg (national code)
	HospCode string // medins_list_codg (the institution's own code)
	Cnt      string // quantity, at most 4 decimals
	Pric     string // unit price, at most 4 decimals
	Amount   string // det_item_fee_sumamt; "" is computed as ROUND(cnt*pric, 2)
	Time     time.Time
}

// amount is the line total as sent.
func (f Fee) amount() (string, error) {
	if f.Amount != "" {
		return f.Amount, nil
	}
	cnt, err := decimal.NewFromString(f.Cnt)
	if err != nil {
		return "", fmt.Errorf("fsiclient: fee %s: cnt %q: %w", f.SN, f.Cnt, err)
	}
	pric, err := decimal.NewFromString(f.Pric)
	if err != nil {
		return "", fmt.Errorf("fsiclient: fee %s: pric %q: %w", f.SN, f.Pric, err)
	}
	return cnt.Mul(pric).Round(2).StringFixed(2), nil
}

// Total is the sum of the fees' amounts: the medfee_sumamt to settle them.
func Total(fees []Fee) (rules.Money, error) {
	var sum rules.Money
	for _, f := range fees {
		a, err := f.amount()
		if err != nil {
			return 0, err
		}
		m, err := rules.ParseMoney(a)
		if err != nil {
			return 0, fmt.Errorf("fsiclient: fee %s: amount %q: %w", f.SN, a, err)
		}
		sum += m
	}
	return sum, nil
}

func (c *Client) feedetail(fees []Fee, mdtrtID, psnNo, bchno string) ([]map[string]string, error) {
	out := make([]map[string]string, len(fees))
	for i, f := range fees {
		amt, err := f.amount()
		if err != nil {
			return nil, err
		}
		t := f.Time
		if t.IsZero() {
			t = c.now()
		}
		out[i] = map[string]string{"feedetl_sn": f.SN, "mdtrt_id": mdtrtID, "psn_no": psnNo, "chrg_bchno": bchno,
			"med_list_codg": f.Code, "medins_list_codg": f.HospCode, "det_item_fee_sumamt": amt, "cnt": f.Cnt,
			"pric": f.Pric, "fee_ocur_time": t.In(CST).Format(TimeLayout)}
	}
	return out, nil
}

// PricedLine is how the platform classified an uploaded line.
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
	Level       string      `json:"chrgitm_lv"`
	ListType    string      `json:"med_chrgitm_type"`
}

// UploadFees is 2204 (2301 for an admission): it adds the fees to the visit
// as charge batch chrgBchno, and returns each line's classification.
func (c *Client) UploadFees(ctx context.Context, v Visit, chrgBchno string, fees []Fee) ([]PricedLine, error) {
	lines, err := c.feedetail(fees, v.MdtrtID, v.PsnNo, chrgBchno)
	if err != nil {
		return nil, err
	}
	infno := "2204"
	if v.Inpatient {
		infno = "2301"
	}
	ans, err := c.CallSettle(ctx, infno, v.PsnNo, map[string]any{"feedetail": lines})
	if err != nil {
		return nil, err
	}
	var out struct {
		Result []PricedLine `json:"result"`
	}
	return out.Result, ans.Decode(&out)
}

// SettleParams are the fields of 2206/2207 (2303/2304) beyond the visit.
type SettleParams struct {
	Insutype     string
	MedType      string      // 11 general, 14 chronic; "" is 11 for a visit, 21 for an admission
	MedfeeSumamt rules.Money // the HIS's total of the visit's lines: must match the platform's
	UseAccount   bool        // acct_used_flag: pay from the personal account
	CertType     string
	CertNo       string
}

func (p SettleParams) input(v Visit) map[string]any {
	if p.MedType == "" {
		p.MedType = "11"
		if v.Inpatient {
			p.MedType = "21"
		}
	}
	flag := "0"
	if p.UseAccount {
		flag = "1"
	}
	return map[string]any{"data": map[string]string{"psn_no": v.PsnNo, "mdtrt_id": v.MdtrtID, "mdtrt_cert_type": p.CertType,
		"mdtrt_cert_no": p.CertNo, "med_type": p.MedType, "medfee_sumamt": p.MedfeeSumamt.String(), "psn_setlway": "01",
		"chrg_bchno": "", "insutype": p.Insutype, "acct_used_flag": flag, "mid_setl_flag": "0"}}
}

// SetlInfo is the national setlinfo: the identifiers and, embedded, the split
// of the claim as rules.Setlinfo (so it compares with rules.Price directly).
type SetlInfo struct {
	MdtrtID  string `json:"mdtrt_id"`
	SetlID   string `json:"setl_id"`
	PsnNo    string `json:"psn_no"`
	SetlTime string `json:"setl_time"`
	MedType  string `json:"med_type"`
	Insutype string `json:"insutype"`
	rules.Setlinfo
	CvlservPay   rules.Money `json:"cvlserv_pay"`
	HifesPay     rules.Money `json:"hifes_pay"`
	OthPay       rules.Money `json:"oth_pay"`
	HospPartAmt  rules.Money `json:"hosp_part_amt"`
	MedinsSetlID string      `json:"medins_setl_id"`
	ClrOptins    string      `json:"clr_optins"`
	ClrWay       string      `json:"clr_way"`
	ClrType      string      `json:"clr_type"`
}

// Settlement is a settlement (or a cancellation's reversal, amounts negated).
type Settlement struct {
	Info   SetlInfo            `json:"setlinfo"`
	Detail []rules.FundPayment `json:"setldetail"`
	Msgid  string              `json:"-"` // of the message that made it
}

func settlementOf(ans *Answer) (*Settlement, error) {
	var s Settlement
	if err := ans.Decode(&s); err != nil {
		return nil, err
	}
	s.Msgid = ans.Msgid
	return &s, nil
}

// PreSettle is 2206 (2303 for an admission): the settlement as it would be; nothing is written.
func (c *Client) PreSettle(ctx context.Context, v Visit, p SettleParams) (*Settlement, error) {
	infno := "2206"
	if v.Inpatient {
		infno = "2303"
	}
	ans, err := c.Call(ctx, infno, p.input(v))
	if err != nil {
		return nil, err
	}
	return settlementOf(ans)
}

// Settle is 2207 (2304 for an admission): it settles the visit.
func (c *Client) Settle(ctx context.Context, v Visit, p SettleParams) (*Settlement, error) {
	infno := "2207"
	if v.Inpatient {
		infno = "2304"
	}
	ans, err := c.CallSettle(ctx, infno, v.PsnNo, p.input(v))
	if err != nil {
		return nil, err
	}
	return settlementOf(ans)
}

// Cancel is 2208 (2305 for an admission, 2103 for a pharmacy sale, by the
// settlement's med_type): it cancels settlement s and returns the reversal.
func (c *Client) Cancel(ctx context.Context, s *Settlement) (*Settlement, error) {
	infno := "2208"
	switch s.Info.MedType {
	case "21":
		infno = "2305"
	case "41":
		infno = "2103"
	}
	ans, err := c.Call(ctx, infno, map[string]any{"data": map[string]string{
		"setl_id": s.Info.SetlID, "mdtrt_id": s.Info.MdtrtID, "psn_no": s.Info.PsnNo}})
	if err != nil {
		return nil, err
	}
	return settlementOf(ans)
}

// Sale is a pharmacy sale (2102): the lines and the settlement in one message.
type Sale struct {
	PsnNo      string
	Insutype   string
	UseAccount bool
	CertType   string
	CertNo     string
	Fees       []Fee
}

// PharmacySettle is 2102: it settles a pharmacy sale (med_type 41).
func (c *Client) PharmacySettle(ctx context.Context, s Sale) (*Settlement, error) {
	total, err := Total(s.Fees)
	if err != nil {
		return nil, err
	}
	lines, err := c.feedetail(s.Fees, "", s.PsnNo, "")
	if err != nil {
		return nil, err
	}
	p := SettleParams{Insutype: s.Insutype, MedType: "41", MedfeeSumamt: total, UseAccount: s.UseAccount, CertType: s.CertType, CertNo: s.CertNo}
	in := p.input(Visit{PsnNo: s.PsnNo})
	in["feedetail"] = lines
	ans, err := c.CallSettle(ctx, "2102", s.PsnNo, in)
	if err != nil {
		return nil, err
	}
	return settlementOf(ans)
}

// ReverseResult is the answer of 2601.
type ReverseResult struct {
	// Outcome: "reversed" (what the message did is undone), "voided" (it never
	// arrived and will be refused if it does), "already_reversed".
	Outcome string
	// Setl is the reversal of the settlement the message made, if it made one.
	Setl *Settlement
}

type reverseOutput struct {
	Data struct {
		Omsgid string `json:"omsgid"`
		Oinfno string `json:"oinfno"`
		Rslt   string `json:"rslt"`
	} `json:"data"`
	Setlinfo   *SetlInfo           `json:"setlinfo"`
	Setldetail []rules.FundPayment `json:"setldetail"`
}

// Reverse is 2601 (冲正): it undoes message omsgid (of infno oinfno, for
// person psnNo) whatever its outcome was. Reversing twice is harmless.
func (c *Client) Reverse(ctx context.Context, psnNo, omsgid, oinfno string) (*ReverseResult, error) {
	ans, err := c.Call(ctx, "2601", reverseInput(psnNo, omsgid, oinfno))
	if err != nil {
		return nil, err
	}
	var out reverseOutput
	if err := ans.Decode(&out); err != nil {
		return nil, err
	}
	r := &ReverseResult{Outcome: out.Data.Rslt}
	if out.Setlinfo != nil {
		r.Setl = &Settlement{Info: *out.Setlinfo, Detail: out.Setldetail, Msgid: ans.Msgid}
	}
	return r, nil
}

// Totals are the HIS's sums of a period, for 3201.
type Totals struct {
	Insutype      string     // "" = all
	ClrType       string     // "" = all; 11, 14, 21 or 41
	From, To      rules.Date // settlement dates, inclusive
	MedfeeSumamt  rules.Money
	FundPaySumamt rules.Money
	AcctPay       rules.Money
	Count         int
}

// TotalsResult is the answer of 3201.
type TotalsResult struct {
	SetlOptins string `json:"setl_optins"`
	Result     string `json:"stmt_rslt"` // "0" match, "1" mismatch
	Dscr       string `json:"stmt_rslt_dscr"`
	Platform   struct {
		MedfeeSumamt  rules.Money `json:"medfee_sumamt"`
		FundPaySumamt rules.Money `json:"fund_pay_sumamt"`
		AcctPay       rules.Money `json:"acct_pay"`
		Count         int         `json:"fixmedins_setl_cnt"`
	} `json:"platform"`
}

// Match reports whether the platform's totals equal the HIS's.
func (r *TotalsResult) Match() bool { return r.Result == "0" }

// ReconcileTotals is 3201 (对总账): it compares the HIS's totals of a period
// with the platform's. An institution key reconciles its own institution; a
// bureau key any institution of its region (the client's fixmedins_code).
func (c *Client) ReconcileTotals(ctx context.Context, t Totals) (*TotalsResult, error) {
	ans, err := c.Call(ctx, "3201", map[string]any{"data": map[string]string{
		"insutype": t.Insutype, "clr_type": t.ClrType, "setl_optins": "", "stmt_begndate": t.From.String(),
		"stmt_enddate": t.To.String(), "medfee_sumamt": t.MedfeeSumamt.String(), "fund_pay_sumamt": t.FundPaySumamt.String(),
		"acct_pay": t.AcctPay.String(), "fixmedins_setl_cnt": fmt.Sprint(t.Count)}})
	if err != nil {
		return nil, err
	}
	var out struct {
		Stmtinfo TotalsResult `json:"stmtinfo"`
	}
	if err := ans.Decode(&out); err != nil {
		return nil, err
	}
	return &out.Stmtinfo, nil
}
