package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
)

// End-to-end over real HTTP: the national envelope into httpapi.Server, the
// engine and a real PostgreSQL, and back.

const (
	hohhotHospital = "H15010000011" // level 3, region 150100
	hohhotSecond   = "H15010000032" // level 2, region 150100
	hohhotPharmacy = "P15010000201"
	baotouHospital = "H15020000012" // region 150200
	wuhanHospital  = "H42010000001"
)

// Persons of the registry used below.
const (
	employee    = "15010000000000000001" // Hohhot employee, account 4882.69
	retiree     = "15010000000000000002" // Hohhot retired employee
	resident    = "15010000000000000011" // Hohhot resident (390), no account
	dibaoBaotou = "15020000000000000037" // Baotou resident on dibao, 备案 to Hohhot
	wuhanWorker = "42010000000000000051" // Wuhan employee, no 备案: cross-province, unregistered
	employee4   = "15010000000000000004"
	employee13  = "15010000000000000013"
)

var (
	consult   = fee{"1", "001101000010000", "1", "30.00", "30.00"}            // 甲类
	ceftriax  = fee{"2", "XJ01DDA062B002010100345", "3", "1500.5", "4501.50"} // 乙类 0.10
	ct        = fee{"3", "002302000010000", "1", "280", "280.00"}             // 乙类 0.10
	metformin = fee{"4", "XA10BAG046A001010100111", "2", "62.70", "125.40"}   // 甲类
	vipBed    = fee{"5", "001103000010000", "1", "200", "200.00"}             // 丙类
	offList   = fee{"6", "999999999999999", "1.5", "10.01", "15.02"}          // not in the catalog: 全自费
)

// personQuery is 1101 by card (03) or ID number (02); it checks the answer against the registry.
func (e *env) personQuery(inst, psnNo, certType string) {
	e.t.Helper()
	p := e.persons[psnNo]
	no := p.CardNo
	if certType == "02" {
		no = p.Certno
	}
	var out struct {
		Baseinfo struct {
			PsnNo   string `json:"psn_no"`
			PsnName string `json:"psn_name"`
			Certno  string `json:"certno"`
			Brdy    string `json:"brdy"`
		} `json:"baseinfo"`
		Insuinfo []struct {
			Balc          rules.Money `json:"balc"`
			Insutype      string      `json:"insutype"`
			InsuplcAdmdvs string      `json:"insuplc_admdvs"`
		} `json:"insuinfo"`
	}
	e.ok(inst, "1101", map[string]any{"data": map[string]string{"mdtrt_cert_type": certType, "mdtrt_cert_no": no,
		"card_sn": "", "psn_cert_type": "01", "certno": p.Certno, "psn_name": p.Name}}, &out)
	require.Equal(e.t, psnNo, out.Baseinfo.PsnNo)
	require.Equal(e.t, p.Name, out.Baseinfo.PsnName)
	require.Equal(e.t, p.Certno, out.Baseinfo.Certno)
	require.Len(e.t, out.Insuinfo, 1)
	require.Equal(e.t, p.Insutype, out.Insuinfo[0].Insutype)
	require.Equal(e.t, p.InsuredRegion, out.Insuinfo[0].InsuplcAdmdvs)
	require.Equal(e.t, e.counters(inst, psnNo).AcctBalc, out.Insuinfo[0].Balc)
}

// register is 2201; it returns the mdtrt_id.
func (e *env) register(inst, psnNo, certType string) string {
	e.t.Helper()
	p := e.persons[psnNo]
	var out struct {
		Data struct {
			MdtrtID  string `json:"mdtrt_id"`
			PsnNo    string `json:"psn_no"`
			IptOtpNo string `json:"ipt_otp_no"`
		} `json:"data"`
	}
	e.ok(inst, "2201", map[string]any{"data": map[string]string{"psn_no": psnNo, "insutype": p.Insutype,
		"begntime": "2026-03-15 09:00:00", "mdtrt_cert_type": certType, "mdtrt_cert_no": p.CardNo, "ipt_otp_no": "MZ" + psnNo[14:],
		"atddr_no": "D001", "dr_name": "王医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03"}}, &out)
	require.NotEmpty(e.t, out.Data.MdtrtID)
	require.Equal(e.t, psnNo, out.Data.PsnNo)
	return out.Data.MdtrtID
}

// upload is 2204 (or 2301) and checks each line's classification against the rules' line step.
func (e *env) upload(inst, infno, mdtrtID, psnNo, bchno string, fees ...fee) {
	e.t.Helper()
	var out struct {
		Result []fsi.PricedLine `json:"result"`
	}
	e.ok(inst, infno, feedetail(mdtrtID, psnNo, bchno, fees...), &out)
	require.Len(e.t, out.Result, len(fees))
	catalog := e.rules.Catalogs[e.rules.Province(e.rules.Institutions[inst].Admdvs)]
	for i, f := range fees {
		want, err := rules.PriceLine(catalog, 20260315, f.sn, f.code, f.cnt, f.pric, f.amt)
		require.NoError(e.t, err)
		got := out.Result[i]
		require.Equal(e.t, f.sn, got.FeedetlSN)
		require.Equal(e.t, []fsi.Money{fsi.Money(want.Amount), fsi.Money(want.Fulamt), fsi.Money(want.Over), fsi.Money(want.Pre), fsi.Money(want.Inscp)},
			[]fsi.Money{got.DetItemFeeSumamt, got.FulamtOwnpayAmt, got.OverlmtAmt, got.PreselfpayAmt, got.InscpScpAmt}, "line %s", f.sn)
		require.Equal(e.t, string(want.Level), got.ChrgitmLv)
	}
}

// settleChecked pre-settles (2206/2303) and settles (2207/2304) a visit and
// checks that the amounts are what rules.Price gives for the same claim
// with the person's counters before, and that the counters moved accordingly.
func (e *env) settleChecked(inst, preInfno, infno, mdtrtID, psnNo, medType string, useAcct bool, fees ...fee) setl {
	e.t.Helper()
	p := e.persons[psnNo]
	before := e.counters(inst, psnNo)
	want := e.expected(inst, psnNo, medType, useAcct, before, fees...)
	in := settleInput(mdtrtID, psnNo, medType, p.Insutype, total(fees...), useAcct)

	rows := e.rowCounts()
	var pre setl
	e.ok(inst, preInfno, in, &pre)
	require.Equal(e.t, rows, e.rowCounts(), "%s writes nothing", preInfno)
	require.Equal(e.t, want.Setlinfo, pre.Setlinfo.Setlinfo)

	var got setl
	a := e.ok(inst, infno, in, &got)
	require.Equal(e.t, want.Setlinfo, got.Setlinfo.Setlinfo, "the settlement is rules.Price of the same claim")
	require.Equal(e.t, want.Detail, got.Setldetail)
	require.Equal(e.t, got.Setlinfo.MedfeeSumamt, got.Setlinfo.FundPaySumamt+got.Setlinfo.AcctPay+got.Setlinfo.PsnCashPay)
	require.Equal(e.t, mdtrtID, got.Setlinfo.MdtrtID)
	require.Equal(e.t, psnNo, got.Setlinfo.PsnNo)
	require.Equal(e.t, medType, got.Setlinfo.MedType)
	require.Equal(e.t, p.InsuredRegion, got.Setlinfo.ClrOptins)
	require.Equal(e.t, "2026-03-15 10:00:00", got.Setlinfo.SetlTime)
	require.NotEmpty(e.t, got.Setlinfo.SetlID)
	require.NotEmpty(e.t, a.InfRefmsgid)
	require.Equal(e.t, want.After, e.counters(inst, psnNo), "counters after")
	require.Equal(e.t, 1, e.count(`SELECT count(*) FROM settlements WHERE setl_id = $1 AND status = 'settled'`, got.Setlinfo.SetlID))
	return got
}

func TestOutpatientDay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	visits := []struct {
		psn      string
		certType string
		useAcct  bool
		fees     []fee
	}{
		{employee, "03", true, []fee{consult, ceftriax, vipBed}},
		{retiree, "02", true, []fee{consult, ct, metformin}},
		{resident, "03", false, []fee{consult, ct, offList}},
		{dibaoBaotou, "02", false, []fee{consult, ceftriax}},
		{wuhanWorker, "03", true, []fee{consult, metformin, offList}},
		{employee, "02", true, []fee{consult, ct}}, // a second visit: the counters of the first count
	}
	settled := map[string]setl{}
	for i, v := range visits {
		t.Run(fmt.Sprintf("%d-%s", i, v.psn), func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			e.personQuery(hohhotHospital, v.psn, v.certType)
			mdtrt := e.register(hohhotHospital, v.psn, v.certType)
			// 2203: med_type and diagnosis come after registration, as at most HIS.
			e.ok(hohhotHospital, "2203", map[string]any{
				"mdtrtinfo": map[string]string{"mdtrt_id": mdtrt, "psn_no": v.psn, "med_type": "11", "begntime": "2026-03-15 09:00:00",
					"main_cond_dscr": "咳嗽三天", "dise_codg": "J06.900", "dise_name": "急性上呼吸道感染"},
				"diseinfo": []map[string]string{{"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}}}, nil)
			e.upload(hohhotHospital, "2204", mdtrt, v.psn, "B1", v.fees...)
			got := e.settleChecked(hohhotHospital, "2206", "2207", mdtrt, v.psn, "11", v.useAcct, v.fees...)
			require.Equal(t, "11", got.Setlinfo.ClrType)
			settled[got.Setlinfo.SetlID] = got
		})
	}
	e.t = t
	require.Len(t, settled, len(visits))
	require.Equal(t, len(visits), e.count(`SELECT count(*) FROM settlements`))
	require.Equal(t, len(visits), e.count(`SELECT count(*) FROM visits WHERE status = 'settled'`))
	e.auditOK()
}

func TestInpatientStay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.persons[employee4]
	e.clock.Set(time.Date(2026, 3, 12, 9, 0, 0, 0, rules.CST))
	var adm struct {
		Result struct {
			MdtrtID string `json:"mdtrt_id"`
		} `json:"result"`
	}
	e.ok(hohhotHospital, "2401", map[string]any{
		"mdtrtinfo": map[string]string{"psn_no": employee4, "insutype": p.Insutype, "begntime": "2026-03-12 09:00:00",
			"mdtrt_cert_type": "03", "mdtrt_cert_no": p.CardNo, "ipt_no": "ZY0001", "med_type": "21",
			"dise_codg": "I21.900", "dise_name": "急性心肌梗死", "dept_code": "A03", "dept_name": "心内科"},
		"diseinfo": []map[string]string{{"diag_type": "1", "diag_code": "I21.900", "diag_name": "急性心肌梗死"}}}, &adm)
	mdtrt := adm.Result.MdtrtID
	require.NotEmpty(t, mdtrt)

	// Three daily uploads during the stay.
	days := [][]fee{
		{{"d1-bed", "001102000010000", "1", "50", "50.00"}, {"d1-stent", "C0303010000000001234", "1", "950", "950.00"},
			{"d1-pci", "003311000010000", "1", "12000", "12000.00"}},
		{{"d2-bed", "001102000010000", "1", "50", "50.00"}, {"d2-drug", "XJ01DDA062B002010100345", "2", "150.05", "300.10"},
			{"d2-set", "C0101020000000009012", "3", "4.5", "13.50"}},
		{{"d3-bed", "001102000010000", "1", "65", "65.00"}, {"d3-mri", "002303000010000", "1", "600", "600.00"}},
	}
	var all []fee
	for i, fs := range days {
		e.clock.Set(time.Date(2026, 3, 12+i, 20, 0, 0, 0, rules.CST))
		e.upload(hohhotHospital, "2301", mdtrt, employee4, fmt.Sprintf("D%d", i+1), fs...)
		all = append(all, fs...)
	}
	require.Equal(t, len(all), e.count(`SELECT count(*) FROM fee_lines WHERE mdtrt_id = $1`, mdtrt))

	e.clock.Set(testDay)
	e.ok(hohhotHospital, "2402", map[string]any{"dscginfo": map[string]string{"mdtrt_id": mdtrt, "psn_no": employee4,
		"endtime": "2026-03-15 09:00:00", "dise_codg": "I21.900", "dise_name": "急性心肌梗死"}}, nil)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM visits WHERE mdtrt_id = $1 AND endtime IS NOT NULL`, mdtrt))

	got := e.settleChecked(hohhotHospital, "2303", "2304", mdtrt, employee4, "21", true, all...)
	require.Equal(t, "21", got.Setlinfo.ClrType)
	require.Equal(t, 1, e.counters(hohhotHospital, employee4).Admissions)
	e.auditOK()
}

func TestPharmacySale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.persons[employee]
	fees := []fee{{"1", "XA10BAG046A001010100111", "2", "62.70", "125.40"}, {"2", "ZA04BAA0123010101010", "3", "18.8", "56.40"}}
	before := e.counters(hohhotPharmacy, employee)
	want := e.expected(hohhotPharmacy, employee, "41", true, before, fees...)
	in := map[string]any{
		"data": map[string]string{"psn_no": employee, "mdtrt_cert_type": "03", "mdtrt_cert_no": p.CardNo, "med_type": "41",
			"medfee_sumamt": total(fees...).String(), "psn_setlway": "01", "insutype": p.Insutype, "acct_used_flag": "1"},
		"feedetail": feedetail("", employee, "", fees...)["feedetail"]}

	rows := e.rowCounts()
	var pre setl
	e.ok(hohhotPharmacy, "2101", in, &pre)
	require.Equal(t, rows, e.rowCounts(), "2101 writes nothing")
	require.Equal(t, want.Setlinfo, pre.Setlinfo.Setlinfo)

	var got setl
	e.ok(hohhotPharmacy, "2102", in, &got)
	require.Equal(t, want.Setlinfo, got.Setlinfo.Setlinfo)
	require.Equal(t, want.Detail, got.Setldetail)
	require.Equal(t, "41", got.Setlinfo.ClrType)
	require.Equal(t, want.After, e.counters(hohhotPharmacy, employee))

	// A pharmacy sale at a hospital is refused.
	a := e.send(hohhotHospital, "2102", in)
	require.Equal(t, -1, a.Infcode)
	require.Contains(t, a.ErrMsg, "med_type")
	e.auditOK()
}

// outpatient runs 2201 (with med_type), 2204 and 2207 and returns the settlement and the 2207 msgid.
func (e *env) outpatient(inst, psnNo string, useAcct bool, fees ...fee) (setl, string, string) {
	e.t.Helper()
	mdtrt := e.register(inst, psnNo, "03")
	e.upload(inst, "2204", mdtrt, psnNo, "B1", fees...)
	id := msgid(inst)
	a := e.post(e.keys[inst], envelope(inst, "2207", id,
		settleInput(mdtrt, psnNo, "11", e.persons[psnNo].Insutype, total(fees...), useAcct)))
	require.Equal(e.t, 0, a.Infcode, a.ErrMsg)
	var s setl
	require.NoError(e.t, json.Unmarshal(a.Output, &s))
	return s, id, mdtrt
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.counters(hohhotHospital, employee)
	s, _, mdtrt := e.outpatient(hohhotHospital, employee, true, consult, ceftriax)
	require.NotEqual(t, before, e.counters(hohhotHospital, employee))

	cancel := map[string]any{"data": map[string]string{"setl_id": s.Setlinfo.SetlID, "mdtrt_id": mdtrt, "psn_no": employee}}
	var rev setl
	e.ok(hohhotHospital, "2208", cancel, &rev)
	require.NotEqual(t, s.Setlinfo.SetlID, rev.Setlinfo.SetlID)
	require.Equal(t, -s.Setlinfo.MedfeeSumamt, rev.Setlinfo.MedfeeSumamt)
	require.Equal(t, -s.Setlinfo.FundPaySumamt, rev.Setlinfo.FundPaySumamt)
	require.Equal(t, -s.Setlinfo.AcctPay, rev.Setlinfo.AcctPay)
	require.Equal(t, -s.Setlinfo.PsnCashPay, rev.Setlinfo.PsnCashPay)
	require.Equal(t, before, e.counters(hohhotHospital, employee), "counters restored")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements WHERE setl_id = $1 AND status = 'cancelled'`, s.Setlinfo.SetlID))

	// Cancelled once only; another institution cannot cancel it.
	a := e.send(hohhotHospital, "2208", cancel)
	require.Equal(t, -1, a.Infcode)
	require.Contains(t, a.ErrMsg, "already cancelled")
	a = e.send(hohhotSecond, "2208", cancel)
	require.Equal(t, -1, a.Infcode)
	require.Contains(t, a.ErrMsg, "setl_id")

	// The visit is open again and settles to the same amounts.
	var again setl
	e.ok(hohhotHospital, "2207", settleInput(mdtrt, employee, "11", "310", total(consult, ceftriax), true), &again)
	require.Equal(t, s.Setlinfo.Setlinfo, again.Setlinfo.Setlinfo)
	e.auditOK()
}

func TestReverseLostSettlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.counters(hohhotHospital, employee)
	// The HIS sent 2207 and never saw the answer.
	s, lost, mdtrt := e.outpatient(hohhotHospital, employee, true, consult, ct)

	var out struct {
		Data struct {
			Omsgid string `json:"omsgid"`
			Oinfno string `json:"oinfno"`
			Rslt   string `json:"rslt"`
		} `json:"data"`
		setl
	}
	reverse := map[string]any{"data": map[string]string{"psn_no": employee, "omsgid": lost, "oinfno": "2207"}}
	e.ok(hohhotHospital, "2601", reverse, &out)
	require.Equal(t, "reversed", out.Data.Rslt)
	require.Equal(t, lost, out.Data.Omsgid)
	require.Equal(t, -s.Setlinfo.MedfeeSumamt, out.Setlinfo.MedfeeSumamt)
	require.Equal(t, before, e.counters(hohhotHospital, employee), "counters restored")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements WHERE setl_id = $1 AND status = 'cancelled'`, s.Setlinfo.SetlID))

	// The lost message, arriving again, is refused and changes nothing.
	rows := e.rowCounts()
	a := e.post(e.keys[hohhotHospital], envelope(hohhotHospital, "2207", lost,
		settleInput(mdtrt, employee, "11", "310", total(consult, ct), true)))
	require.Equal(t, -1, a.Infcode)
	require.Contains(t, a.ErrMsg, "reversed")
	require.Equal(t, rows, e.rowCounts())

	// Reversing again is harmless.
	e.ok(hohhotHospital, "2601", reverse, &out)
	require.Equal(t, "already_reversed", out.Data.Rslt)

	// A message that never arrived: recorded as never to happen.
	never := msgid(hohhotHospital)
	e.ok(hohhotHospital, "2601", map[string]any{"data": map[string]string{"psn_no": employee, "omsgid": never, "oinfno": "2207"}}, &out)
	require.Equal(t, "voided", out.Data.Rslt)
	rows = e.rowCounts()
	a = e.post(e.keys[hohhotHospital], envelope(hohhotHospital, "2207", never,
		settleInput(mdtrt, employee, "11", "310", total(consult, ct), true)))
	require.Equal(t, -1, a.Infcode)
	require.Contains(t, a.ErrMsg, "reversed")
	require.Equal(t, rows, e.rowCounts())
	e.auditOK()
}

func TestSameMsgidConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mdtrt := e.register(hohhotHospital, employee, "03")
	e.upload(hohhotHospital, "2204", mdtrt, employee, "B1", consult, ct)
	body := envelope(hohhotHospital, "2207", msgid(hohhotHospital), settleInput(mdtrt, employee, "11", "310", total(consult, ct), true))
	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/fsi/api/rsfComIfsService/callService", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+e.keys[hohhotHospital])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(raw, &answers[i])
		})
	}
	wg.Wait()
	for i := range n {
		require.Equal(t, 0, answers[i].Infcode, answers[i].ErrMsg)
		require.JSONEq(t, string(answers[0].Output), string(answers[i].Output), "every repeat gets the first answer")
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements`))
	e.auditOK()
}

func stmt(insutype, clrType string, medfee, fund, acct rules.Money, n int) map[string]any {
	return map[string]any{"data": map[string]string{"insutype": insutype, "clr_type": clrType, "setl_optins": "150100",
		"stmt_begndate": "2026-03-01", "stmt_enddate": "2026-03-31", "medfee_sumamt": medfee.String(),
		"fund_pay_sumamt": fund.String(), "acct_pay": acct.String(), "fixmedins_setl_cnt": fmt.Sprint(n)}}
}

type stmtinfo struct {
	Stmtinfo struct {
		SetlOptins string `json:"setl_optins"`
		Result     string `json:"stmt_rslt"`
		Dscr       string `json:"stmt_rslt_dscr"`
	} `json:"stmtinfo"`
}

func TestReconcileTotals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var medfee, fund, acct rules.Money
	for _, psn := range []string{employee, retiree, employee13} {
		s, _, _ := e.outpatient(hohhotHospital, psn, true, consult, ct, metformin)
		medfee += s.Setlinfo.MedfeeSumamt
		fund += s.Setlinfo.FundPaySumamt
		acct += s.Setlinfo.AcctPay
	}
	// A cancelled settlement counts in neither side.
	s, _, mdtrt := e.outpatient(hohhotHospital, employee4, true, consult)
	e.ok(hohhotHospital, "2208", map[string]any{"data": map[string]string{"setl_id": s.Setlinfo.SetlID, "mdtrt_id": mdtrt, "psn_no": employee4}}, nil)

	rows := e.rowCounts()
	var out stmtinfo
	e.ok(hohhotHospital, "3201", stmt("", "", medfee, fund, acct, 3), &out)
	require.Equal(t, "0", out.Stmtinfo.Result, out.Stmtinfo.Dscr)
	require.Equal(t, hohhotHospital, out.Stmtinfo.SetlOptins)
	e.ok(hohhotHospital, "3201", stmt("310", "11", medfee, fund, acct, 3), &out)
	require.Equal(t, "0", out.Stmtinfo.Result, out.Stmtinfo.Dscr)

	e.ok(hohhotHospital, "3201", stmt("", "", medfee+1, fund, acct, 3), &out)
	require.Equal(t, "1", out.Stmtinfo.Result)
	require.Contains(t, out.Stmtinfo.Dscr, "mismatch")
	e.ok(hohhotHospital, "3201", stmt("", "", medfee, fund, acct, 4), &out)
	require.Equal(t, "1", out.Stmtinfo.Result)
	e.ok(hohhotHospital, "3201", stmt("", "21", medfee, fund, acct, 3), &out)
	require.Equal(t, "1", out.Stmtinfo.Result, "no inpatient settlements")

	// The bureau of the institution's region may reconcile it; another region's may not.
	a := e.post(e.keys["bureau:150100"], envelope(hohhotHospital, "3201", msgid(hohhotHospital), stmt("", "", medfee, fund, acct, 3)))
	require.Equal(t, 0, a.Infcode, a.ErrMsg)
	require.NoError(t, json.Unmarshal(a.Output, &out))
	require.Equal(t, "0", out.Stmtinfo.Result)
	a = e.post(e.keys["bureau:420100"], envelope(hohhotHospital, "3201", msgid(hohhotHospital), stmt("", "", medfee, fund, acct, 3)))
	require.Equal(t, -1, a.Infcode)
	require.Contains(t, a.ErrMsg, "is not an institution of region 420100")
	require.Equal(t, rows, e.rowCounts(), "reconciliation writes nothing")
}

func TestReconcileDetails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ss []setl
	for _, psn := range []string{employee, retiree, employee13} {
		s, _, _ := e.outpatient(hohhotHospital, psn, true, consult, ct)
		ss = append(ss, s)
	}
	row := func(s setl) map[string]string {
		return map[string]string{"setl_id": s.Setlinfo.SetlID, "mdtrt_id": s.Setlinfo.MdtrtID, "psn_no": s.Setlinfo.PsnNo,
			"medfee_sumamt": s.Setlinfo.MedfeeSumamt.String(), "fund_pay_sumamt": s.Setlinfo.FundPaySumamt.String(),
			"acct_pay": s.Setlinfo.AcctPay.String(), "refd_setl_flag": "0"}
	}
	differs := row(ss[1])
	differs["medfee_sumamt"] = (ss[1].Setlinfo.MedfeeSumamt + 100).String()
	hisOnly := row(ss[0])
	hisOnly["setl_id"] = "S-HIS-ONLY-0001"
	// ss[0] matches, ss[1] differs in amount, ss[2] is on the platform only, and one row is the HIS's only.
	in := stmt("", "", 0, 0, 0, 0)
	in["detail"] = []map[string]string{row(ss[0]), differs, hisOnly}
	var out struct {
		Result []struct {
			SetlID string `json:"setl_id"`
			Result string `json:"stmt_rslt"`
			Memo   string `json:"memo"`
		} `json:"result"`
	}
	rows := e.rowCounts()
	e.ok(hohhotHospital, "3202", in, &out)
	require.Equal(t, rows, e.rowCounts())
	got := map[string]string{}
	for _, d := range out.Result {
		got[d.SetlID] = d.Result
		require.NotEmpty(t, d.Memo)
	}
	require.Equal(t, map[string]string{ss[1].Setlinfo.SetlID: "3", ss[2].Setlinfo.SetlID: "2", "S-HIS-ONLY-0001": "1"}, got)

	// All rows reported exactly: nothing differs.
	in["detail"] = []map[string]string{row(ss[0]), row(ss[1]), row(ss[2])}
	e.ok(hohhotHospital, "3202", in, &out)
	require.Empty(t, out.Result)
}

func TestRefusalsWriteNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mdtrt := e.register(hohhotHospital, employee, "03")
	e.upload(hohhotHospital, "2204", mdtrt, employee, "B1", consult)
	regID := msgid(hohhotHospital)
	regInput := map[string]any{"data": map[string]string{"psn_no": employee4, "insutype": "310", "begntime": "2026-03-15 09:00:00",
		"mdtrt_cert_type": "03", "mdtrt_cert_no": "x", "ipt_otp_no": "MZ1"}}
	// A message whose msgid the reuse cases below send again.
	require.Equal(t, 0, e.post(e.keys[hohhotHospital], envelope(hohhotHospital, "2201", regID, regInput)).Infcode)

	hosp := e.keys[hohhotHospital]
	settle := func(sum string) map[string]any {
		in := settleInput(mdtrt, employee, "11", "310", 0, true)
		in["data"].(map[string]any)["medfee_sumamt"] = sum
		return in
	}
	line := func(f fee) map[string]any { return feedetail(mdtrt, employee, "B2", f) }
	withField := func(infno string, input any, field string, v any) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(envelope(hohhotHospital, infno, msgid(hohhotHospital), input), &m))
		if v == nil {
			delete(m, field)
		} else {
			m[field] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	std := func(infno string, input any) []byte {
		return envelope(hohhotHospital, infno, msgid(hohhotHospital), input)
	}

	cases := []struct {
		name   string
		key    string
		body   []byte
		status int
		msg    string
	}{
		{"wrong key", "not-a-key-of-anyone-at-all", std("2207", settle("30.00")), 401, "Authorization: a valid Bearer API key is required"},
		{"no key", "", std("2207", settle("30.00")), 401, "Authorization"},
		{"key of another institution", e.keys[hohhotSecond], std("2207", settle("30.00")), 200,
			"fixmedins_code H15010000011 is not the institution of this API key"},
		{"malformed JSON", hosp, []byte(`{"infno": "2207", "msgid": `), 200, "malformed JSON"},
		{"trailing data", hosp, append(std("2207", settle("30.00")), []byte(` {}`)...), 200, "trailing data"},
		{"unknown infno", hosp, std("9999", settle("30.00")), 200, `infno "9999" is not a transaction this platform serves`},
		{"missing infno", hosp, withField("2207", settle("30.00"), "infno", nil), 200, "infno is required"},
		{"msgid of 29 characters", hosp, withField("2207", settle("30.00"), "msgid", regID[:29]), 200, "msgid"},
		{"msgid of another institution", hosp, withField("2207", settle("30.00"), "msgid", msgid(hohhotSecond)), 200,
			"does not start with fixmedins_code H15010000011"},
		{"input not an object", hosp, withField("2207", settle("30.00"), "input", []int{1}), 200, "input must be a JSON object"},
		{"missing field", hosp, std("2201", map[string]any{"data": map[string]string{"insutype": "310", "begntime": "2026-03-15 09:00:00",
			"mdtrt_cert_type": "03", "ipt_otp_no": "MZ9"}}), 200, "input.data.psn_no is required"},
		{"missing medfee_sumamt", hosp, std("2207", map[string]any{"data": map[string]string{"psn_no": employee, "mdtrt_id": mdtrt,
			"med_type": "11", "insutype": "310"}}), 200, "input.data.medfee_sumamt is required"},
		{"field of the wrong type", hosp, std("2201", map[string]any{"data": map[string]any{"psn_no": 1501000000000001}}), 200,
			"input.data.psn_no: want a string"},
		{"bad begntime", hosp, std("2201", map[string]any{"data": map[string]string{"psn_no": employee, "insutype": "310",
			"begntime": "15/03/2026", "mdtrt_cert_type": "03", "ipt_otp_no": "MZ9"}}), 200, "input.data.begntime"},
		{"settlement amount with 3 decimals", hosp, std("2207", settle("30.001")), 200,
			`input.data.medfee_sumamt "30.001" is not an amount with at most 2 decimals`},
		{"line amount with 3 decimals", hosp, std("2204", line(fee{"9", "001101000010000", "1", "30.00", "30.001"})), 200,
			"det_item_fee_sumamt"},
		{"line cnt with 5 decimals", hosp, std("2204", line(fee{"9", "001101000010000", "1.00001", "30", "30.00"})), 200, "cnt"},
		{"line total is not cnt*pric", hosp, std("2204", line(fee{"9", "001101000010000", "2", "30.00", "30.00"})), 200,
			"det_item_fee_sumamt 30.00 is not ROUND(cnt*pric) = 60.00"},
		{"line already uploaded", hosp, std("2204", line(consult)), 200, "feedetl_sn"},
		{"medfee_sumamt differs from the lines", hosp, std("2207", settle("31.00")), 200, "medfee_sumamt 31.00 differs"},
		{"settling a visit of another institution", e.keys[hohhotSecond],
			envelope(hohhotSecond, "2207", msgid(hohhotSecond), settle("30.00")), 200, "no such visit at H15010000032"},
		{"uploading to a visit of another institution", e.keys[hohhotSecond],
			envelope(hohhotSecond, "2204", msgid(hohhotSecond), line(fee{"9", "001101000010000", "1", "30.00", "30.00"})), 200,
			"no such visit at H15010000032"},
		{"same msgid with another body", hosp, envelope(hohhotHospital, "2201", regID,
			map[string]any{"data": map[string]string{"psn_no": employee4, "insutype": "310", "begntime": "2026-03-15 09:00:00",
				"mdtrt_cert_type": "03", "mdtrt_cert_no": "x", "ipt_otp_no": "MZ2"}}), 200, "already used with a different request"},
		{"same msgid as another infno", hosp, envelope(hohhotHospital, "2207", regID, settle("30.00")), 200,
			"already used with a different request"},
		{"mid-stay settlement", hosp, std("2304", map[string]any{"data": map[string]string{"psn_no": employee, "mdtrt_id": mdtrt,
			"med_type": "21", "insutype": "310", "medfee_sumamt": "30.00", "mid_setl_flag": "1"}}), 200, "mid_setl_flag"},
		{"unknown person", hosp, std("1101", map[string]any{"data": map[string]string{"mdtrt_cert_type": "03", "mdtrt_cert_no": "000000000000"}}), 200,
			`mdtrt_cert_no "000000000000"`},
		{"bad ID check digit", hosp, std("1101", map[string]any{"data": map[string]string{"mdtrt_cert_type": "02", "mdtrt_cert_no": "150100200909167440"}}), 200,
			"check digit"},
		{"reversal of another institution's message", e.keys[hohhotSecond], envelope(hohhotSecond, "2601", msgid(hohhotSecond),
			map[string]any{"data": map[string]string{"psn_no": employee4, "omsgid": regID, "oinfno": "2201"}}), 200, "input.data.omsgid"},
		{"bureau key settling", e.keys["bureau:150100"], std("2207", settle("30.00")), 200, "infno 2207 is not open to a bureau key"},
		{"bureau of another region", e.keys["bureau:420100"], std("3201", stmt("", "", 0, 0, 0, 0)), 200,
			"fixmedins_code H15010000011 is not an institution of region 420100"},
		{"3201 period reversed", hosp, std("3201", map[string]any{"data": map[string]string{"stmt_begndate": "2026-03-31",
			"stmt_enddate": "2026-03-01", "medfee_sumamt": "0", "fund_pay_sumamt": "0", "acct_pay": "0", "fixmedins_setl_cnt": "0"}}), 200,
			"input.data.stmt_enddate 2026-03-01 is before stmt_begndate 2026-03-31"},
		{"body too large", hosp, std("2204", map[string]any{"pad": strings.Repeat("x", 200<<10)}), 413, "request body larger than 176384 bytes"},
		{"input too long", hosp, std("2204", map[string]any{"pad": strings.Repeat("x", 40001)}), 200, "more than the limit of 40000"},
		{"input too long in Chinese", hosp, std("2203", map[string]any{"mdtrtinfo": map[string]string{"main_cond_dscr": strings.Repeat("医", 40001)}}), 200,
			"input has 40036 characters, more than the limit of 40000"},
		// 30,000 characters (90 KB of UTF-8) are within the limit: refused for the missing fields, not for size.
		{"long Chinese input within the limit", hosp, std("2203", map[string]any{"mdtrtinfo": map[string]string{"main_cond_dscr": strings.Repeat("医", 30000)}}), 200,
			"input.mdtrtinfo.mdtrt_id is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			before := e.rowCounts()
			a := e.post(c.key, c.body)
			require.Equal(t, -1, a.Infcode)
			require.Equal(t, c.status, a.status)
			require.Contains(t, a.ErrMsg, c.msg)
			require.Equal(t, "null", string(a.Output), "no output on a refusal")
			require.Equal(t, before, e.rowCounts(), "a refusal writes nothing")
		})
	}
	e.t = t
	e.auditOK()
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(hohhotHospital, employee, "03")
	e.send(hohhotHospital, "9999", map[string]any{})
	get := func(path string) (int, string) {
		resp, err := http.Get(e.srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, 200, code)
	require.Equal(t, "ok\n", body)
	code, body = get("/readyz")
	require.Equal(t, 200, code)
	require.Equal(t, "ready\n", body)
	code, body = get("/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, `medsettle_requests_total{infcode="0",infno="2201"} 1`)
	require.Contains(t, body, `medsettle_requests_total{infcode="-1",infno="unknown"} 1`)
	require.Contains(t, body, `medsettle_request_duration_seconds_bucket{infno="2201"`)

	// The one endpoint takes POST only.
	code, _ = get("/fsi/api/rsfComIfsService/callService")
	require.Equal(t, http.StatusMethodNotAllowed, code)
}

// Dates the server derives follow the engine's clock, as the engine's own do.
func TestDatesFollowThePlatformClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var person struct {
		Baseinfo struct {
			Brdy string `json:"brdy"`
			Age  int    `json:"age"`
		} `json:"baseinfo"`
	}
	// Born 2009-09-16: 16 on 2026-03-15, 17 from 2026-09-16.
	e.ok(hohhotHospital, "1101", map[string]any{"data": map[string]string{"mdtrt_cert_type": "01", "mdtrt_cert_no": employee}}, &person)
	require.Equal(t, "2009-09-16", person.Baseinfo.Brdy)
	require.Equal(t, 16, person.Baseinfo.Age)

	// Born 2000-10-03 (a leap year): 26 on the birthday in 2026.
	e.clock.Set(time.Date(2026, 10, 3, 10, 0, 0, 0, rules.CST))
	e.ok(hohhotHospital, "1101", map[string]any{"data": map[string]string{"mdtrt_cert_type": "01", "mdtrt_cert_no": resident}}, &person)
	require.Equal(t, "2000-10-03", person.Baseinfo.Brdy)
	require.Equal(t, 26, person.Baseinfo.Age)
	e.clock.Set(time.Date(2026, 10, 2, 10, 0, 0, 0, rules.CST))
	e.ok(hohhotHospital, "1101", map[string]any{"data": map[string]string{"mdtrt_cert_type": "01", "mdtrt_cert_no": resident}}, &person)
	require.Equal(t, 25, person.Baseinfo.Age)

	e.clock.Set(time.Date(2027, 1, 5, 10, 0, 0, 0, rules.CST))
	var cum struct {
		Cuminfo struct {
			Year int `json:"year"`
		} `json:"cuminfo"`
	}
	e.ok(hohhotHospital, "5206", map[string]any{"data": map[string]string{"psn_no": employee}}, &cum)
	require.Equal(t, 2027, cum.Cuminfo.Year, "5206 without cum_ym is the platform's current year")
}
