package client

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/adapters/fsi"
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
	InsuplcAdmdvs string    // the insured region
	Balc          fsi.Money // personal account balance
	Idet          []string  // psn_idet_type of each identity (medical assistance)
}

// Person is 1101: who holds certificate certNo of certType (01 e-voucher
// psn_no, 02 ID number, 03 insurance card).
func (c *Client) Person(ctx context.Context, certType, certNo string) (*PersonInfo, error) {
	ans, err := c.Call(ctx, "1101", fsi.PersonInput{Data: fsi.PersonQuery{MdtrtCertType: certType, MdtrtCertNo: certNo}})
	if err != nil {
		return nil, err
	}
	var out fsi.PersonOutput
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

func (c *Client) visitData(r Registration) fsi.VisitData {
	begin := r.Begin
	if begin.IsZero() {
		begin = c.now()
	}
	return fsi.VisitData{PsnNo: r.PsnNo, Insutype: r.Insutype, Begntime: begin.In(fsi.CST).Format(fsi.TimeLayout),
		MdtrtCertType: r.CertType, MdtrtCertNo: r.CertNo, IptOtpNo: r.IptOtpNo, MedType: r.MedType,
		DiseCodg: r.DiseCodg, DiseName: r.DiseName, DeptCode: r.DeptCode, DeptName: r.DeptName, DrName: r.DrName, Caty: r.DeptCode}
}

// RegisterOutpatient is 2201: it opens an outpatient visit.
func (c *Client) RegisterOutpatient(ctx context.Context, r Registration) (Visit, error) {
	ans, err := c.CallSettle(ctx, "2201", r.PsnNo, fsi.OutpatientInput{Data: c.visitData(r)})
	if err != nil {
		return Visit{}, err
	}
	var out fsi.OutpatientOutput
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
	in := fsi.MdtrtInput{Mdtrtinfo: c.visitData(r), Diseinfo: []fsi.Diseinfo{}}
	in.Mdtrtinfo.IptNo = r.IptOtpNo
	if r.DiseCodg != "" {
		in.Diseinfo = []fsi.Diseinfo{{DiagCode: r.DiseCodg, DiagName: r.DiseName, DiagType: "1"}}
	}
	ans, err := c.CallSettle(ctx, "2401", r.PsnNo, in)
	if err != nil {
		return Visit{}, err
	}
	var out fsi.AdmissionOutput
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
	_, err := c.Call(ctx, "2402", fsi.DischargeInput{Dscginfo: fsi.Dscginfo{MdtrtID: v.MdtrtID, PsnNo: v.PsnNo,
		Endtime: end.In(fsi.CST).Format(fsi.TimeLayout), DiseCodg: diseCodg, DiseName: diseName}})
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
		return "", fmt.Errorf("client: fee %s: cnt %q: %w", f.SN, f.Cnt, err)
	}
	pric, err := decimal.NewFromString(f.Pric)
	if err != nil {
		return "", fmt.Errorf("client: fee %s: pric %q: %w", f.SN, f.Pric, err)
	}
	return cnt.Mul(pric).Round(2).StringFixed(2), nil
}

// Total is the sum of the fees' amounts: the medfee_sumamt to settle them.
func Total(fees []Fee) (fsi.Money, error) {
	var sum fsi.Money
	for _, f := range fees {
		a, err := f.amount()
		if err != nil {
			return 0, err
		}
		m, err := fsi.ParseMoney(a)
		if err != nil {
			return 0, fmt.Errorf("client: fee %s: %w", f.SN, err)
		}
		sum += m
	}
	return sum, nil
}

func (c *Client) feedetail(fees []Fee, mdtrtID, psnNo, bchno string) ([]fsi.FeeLine, error) {
	out := make([]fsi.FeeLine, len(fees))
	for i, f := range fees {
		amt, err := f.amount()
		if err != nil {
			return nil, err
		}
		t := f.Time
		if t.IsZero() {
			t = c.now()
		}
		out[i] = fsi.FeeLine{FeedetlSN: fsi.T(f.SN), MdtrtID: mdtrtID, PsnNo: psnNo, ChrgBchno: bchno,
			MedListCodg: f.Code, MedinsListCodg: f.HospCode, DetItemFeeSumamt: fsi.T(amt), Cnt: fsi.T(f.Cnt),
			Pric: fsi.T(f.Pric), FeeOcurTime: t.In(fsi.CST).Format(fsi.TimeLayout)}
	}
	return out, nil
}

// UploadFees is 2204 (2301 for an admission): it adds the fees to the visit
// as charge batch chrgBchno, and returns each line's classification.
func (c *Client) UploadFees(ctx context.Context, v Visit, chrgBchno string, fees []Fee) ([]fsi.PricedLine, error) {
	lines, err := c.feedetail(fees, v.MdtrtID, v.PsnNo, chrgBchno)
	if err != nil {
		return nil, err
	}
	infno := "2204"
	if v.Inpatient {
		infno = "2301"
	}
	ans, err := c.CallSettle(ctx, infno, v.PsnNo, fsi.FeeInput{Feedetail: lines})
	if err != nil {
		return nil, err
	}
	var out fsi.FeeOutput
	return out.Result, ans.Decode(&out)
}

// SettleParams are the fields of 2206/2207 (2303/2304) beyond the visit.
type SettleParams struct {
	Insutype     string
	MedType      string    // 11 general, 14 chronic; "" is 11 for a visit, 21 for an admission
	MedfeeSumamt fsi.Money // the HIS's total of the visit's lines: must match the platform's
	UseAccount   bool      // acct_used_flag: pay from the personal account
	CertType     string
	CertNo       string
}

func (p SettleParams) data(v Visit) fsi.SettleData {
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
	return fsi.SettleData{PsnNo: v.PsnNo, MdtrtID: v.MdtrtID, MdtrtCertType: p.CertType, MdtrtCertNo: p.CertNo,
		MedType: p.MedType, MedfeeSumamt: fsi.T(p.MedfeeSumamt.String()), PsnSetlway: "01", Insutype: p.Insutype,
		AcctUsedFlag: flag, MidSetlFlag: "0"}
}

// Settlement is a settlement (or a cancellation's reversal, amounts negated).
type Settlement struct {
	fsi.SettleOutput
	Msgid string // of the message that made it
}

func settlementOf(ans *Answer) (*Settlement, error) {
	s := &Settlement{Msgid: ans.Msgid}
	if err := ans.Decode(&s.SettleOutput); err != nil {
		return nil, err
	}
	return s, nil
}

// PreSettle is 2206 (2303 for an admission): the settlement as it would be; nothing is written.
func (c *Client) PreSettle(ctx context.Context, v Visit, p SettleParams) (*Settlement, error) {
	infno := "2206"
	if v.Inpatient {
		infno = "2303"
	}
	ans, err := c.Call(ctx, infno, fsi.SettleInput{Data: p.data(v)})
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
	ans, err := c.CallSettle(ctx, infno, v.PsnNo, fsi.SettleInput{Data: p.data(v)})
	if err != nil {
		return nil, err
	}
	return settlementOf(ans)
}

// Cancel is 2208 (2305 for an admission, 2103 for a pharmacy sale, by the
// settlement's med_type): it cancels settlement s and returns the reversal.
func (c *Client) Cancel(ctx context.Context, s *Settlement) (*Settlement, error) {
	infno := "2208"
	switch s.Setlinfo.MedType {
	case "21":
		infno = "2305"
	case "41":
		infno = "2103"
	}
	i := s.Setlinfo
	ans, err := c.Call(ctx, infno, fsi.CancelInput{Data: fsi.SetlRef{SetlID: i.SetlID, MdtrtID: i.MdtrtID, PsnNo: i.PsnNo}})
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
	ans, err := c.CallSettle(ctx, "2102", s.PsnNo, fsi.PharmacyInput{Data: p.data(Visit{PsnNo: s.PsnNo}), Feedetail: lines})
	if err != nil {
		return nil, err
	}
	return settlementOf(ans)
}

// ReverseResult is the answer of 2601.
type ReverseResult struct {
	// Outcome: fsi.Reversed (what the message did is undone), fsi.Voided (it
	// never arrived and will be refused if it does), fsi.AlreadyReversed.
	Outcome string
	// Setl is the reversal of the settlement the message made, if it made one.
	Setl *Settlement
}

// Reverse is 2601 (冲正): it undoes message omsgid (of infno oinfno, for
// person psnNo) whatever its outcome was. Reversing twice is harmless.
func (c *Client) Reverse(ctx context.Context, psnNo, omsgid, oinfno string) (*ReverseResult, error) {
	ans, err := c.Call(ctx, "2601", reverseInput(psnNo, omsgid, oinfno))
	if err != nil {
		return nil, err
	}
	var out fsi.ReverseOutput
	if err := ans.Decode(&out); err != nil {
		return nil, err
	}
	r := &ReverseResult{Outcome: out.Data.Rslt}
	if rs := out.ReversedSettlement; rs != nil {
		r.Setl = &Settlement{SettleOutput: fsi.SettleOutput{Setlinfo: rs.Setlinfo, Setldetail: rs.Setldetail}, Msgid: ans.Msgid}
	}
	return r, nil
}

// Totals are the HIS's sums of a period, for 3201.
type Totals struct {
	Insutype      string    // "" = all
	ClrType       string    // "" = all; 11, 14, 21 or 41
	From, To      time.Time // settlement dates (their CST day), inclusive
	MedfeeSumamt  fsi.Money
	FundPaySumamt fsi.Money
	AcctPay       fsi.Money
	Count         int
}

// ReconcileTotals is 3201 (对总账): it compares the HIS's totals of a period
// with the platform's (Stmtinfo.Match). An institution key reconciles its own
// institution; a bureau key any institution of its region (the client's
// fixmedins_code).
func (c *Client) ReconcileTotals(ctx context.Context, t Totals) (*fsi.Stmtinfo, error) {
	ans, err := c.Call(ctx, "3201", fsi.TotalsInput{Data: fsi.StmtData{Insutype: t.Insutype, ClrType: t.ClrType,
		StmtBegndate: t.From.In(fsi.CST).Format(fsi.DateLayout), StmtEnddate: t.To.In(fsi.CST).Format(fsi.DateLayout),
		MedfeeSumamt: fsi.T(t.MedfeeSumamt.String()), FundPaySumamt: fsi.T(t.FundPaySumamt.String()),
		AcctPay: fsi.T(t.AcctPay.String()), FixmedinsSetlCnt: fsi.T(fmt.Sprint(t.Count))}})
	if err != nil {
		return nil, err
	}
	var out fsi.TotalsOutput
	if err := ans.Decode(&out); err != nil {
		return nil, err
	}
	return &out.Stmtinfo, nil
}
