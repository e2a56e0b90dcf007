package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Fuzz targets for what the server does with bytes from the network before
// anything is stored. Run one with e.g.
//
//	go test -run '^$' -fuzz '^FuzzEnvelope$' -fuzztime 20s ./adapters/httpapi/

const fuzzInst = "H15010000011"

// seedEnvelope is a realistic request of the national interface.
func seedEnvelope(infno, input string) []byte {
	return []byte(`{"infno": "` + infno + `", "msgid": "H15010000011202603151000000001", "mdtrtarea_admvs": "150100",
 "insuplc_admdvs": "150100", "recer_sys_code": "MEDSETTLE", "dev_no": "", "dev_safe_info": "",
 "cainfo": "", "signtype": "", "infver": "V1.0", "opter_type": "1", "opter": "0001",
 "opter_name": "收费员", "inf_time": "2026-03-15 10:00:00", "fixmedins_code": "H15010000011",
 "fixmedins_name": "内蒙古自治区人民医院", "sign_no": "", "input": ` + input + `}`)
}

// seedInputs are realistic inputs of every infno, from the e2e scenarios.
var seedInputs = map[string]string{
	"9001": `{"signIn": {"opter_no": "0001", "mac": "00:1A:2B:3C:4D:5E", "ip": "10.0.0.8"}}`,
	"1101": `{"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "157213070278", "card_sn": "", "psn_cert_type": "01", "certno": "150100200909167449", "psn_name": "杨敏"}}`,
	"2201": `{"data": {"psn_no": "15010000000000000001", "insutype": "310", "begntime": "2026-03-15 09:00:00", "mdtrt_cert_type": "03", "mdtrt_cert_no": "157213070278", "ipt_otp_no": "MZ0001", "atddr_no": "D001", "dr_name": "王医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03"}}`,
	"2202": `{"data": {"psn_no": "15010000000000000001", "mdtrt_id": "M0123456789abcdef01234567", "ipt_otp_no": "MZ0001"}}`,
	"2203": `{"mdtrtinfo": {"mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000001", "med_type": "11", "begntime": "2026-03-15 09:00:00", "main_cond_dscr": "咳嗽", "dise_codg": "J06.900", "dise_name": "急性上呼吸道感染"}, "diseinfo": [{"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}]}`,
	"2204": `{"feedetail": [{"feedetl_sn": "1", "mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000001", "chrg_bchno": "B1", "med_list_codg": "001101000010000", "medins_list_codg": "H-1", "det_item_fee_sumamt": "30.00", "cnt": "1", "pric": "30.00", "fee_ocur_time": "2026-03-15 09:30:00"}, {"feedetl_sn": 2, "mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000001", "chrg_bchno": "B1", "med_list_codg": "XJ01DDA062B002010100345", "det_item_fee_sumamt": 4501.50, "cnt": 3, "pric": 1500.5, "fee_ocur_time": ""}]}`,
	"2205": `{"data": {"mdtrt_id": "M0123456789abcdef01234567", "chrg_bchno": "B1", "psn_no": "15010000000000000001"}}`,
	"2206": `{"data": {"psn_no": "15010000000000000001", "mdtrt_cert_type": "03", "mdtrt_cert_no": "157213070278", "med_type": "11", "medfee_sumamt": "4531.50", "psn_setlway": "01", "mdtrt_id": "M0123456789abcdef01234567", "chrg_bchno": "B1", "insutype": "310", "acct_used_flag": "1"}}`,
	"2207": `{"data": {"psn_no": "15010000000000000001", "mdtrt_cert_type": "03", "mdtrt_cert_no": "157213070278", "med_type": "11", "medfee_sumamt": 4531.5, "psn_setlway": "01", "mdtrt_id": "M0123456789abcdef01234567", "chrg_bchno": "B1", "insutype": "310", "acct_used_flag": "0"}}`,
	"2208": `{"data": {"setl_id": "S0123456789abcdef01234567", "mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000001"}}`,
	"2401": `{"mdtrtinfo": {"psn_no": "15010000000000000004", "insutype": "310", "begntime": "2026-03-12 09:00:00", "mdtrt_cert_type": "03", "mdtrt_cert_no": "159891542208", "ipt_no": "ZY0001", "med_type": "21", "dise_codg": "I21.900", "dise_name": "急性心肌梗死"}, "diseinfo": [{"diag_type": "1", "diag_code": "I21.900", "diag_name": "急性心肌梗死"}]}`,
	"2402": `{"dscginfo": {"mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000004", "endtime": "2026-03-15 09:00:00", "dise_codg": "I21.900", "dise_name": "急性心肌梗死"}}`,
	"2301": `{"feedetail": [{"feedetl_sn": "d1-bed", "mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000004", "chrg_bchno": "D1", "med_list_codg": "001102000010000", "det_item_fee_sumamt": "65.00", "cnt": "1", "pric": "65", "fee_ocur_time": "2026-03-12 20:00:00"}]}`,
	"2304": `{"data": {"psn_no": "15010000000000000004", "mdtrt_id": "M0123456789abcdef01234567", "med_type": "21", "medfee_sumamt": "13978.60", "insutype": "310", "acct_used_flag": "1", "mid_setl_flag": "0"}}`,
	"2102": `{"data": {"psn_no": "15010000000000000001", "mdtrt_cert_type": "03", "mdtrt_cert_no": "157213070278", "med_type": "41", "medfee_sumamt": "181.80", "psn_setlway": "01", "insutype": "310", "acct_used_flag": "1"}, "feedetail": [{"feedetl_sn": "1", "med_list_codg": "XA10BAG046A001010100111", "det_item_fee_sumamt": "125.40", "cnt": "2", "pric": "62.70"}, {"feedetl_sn": "2", "med_list_codg": "ZA04BAA0123010101010", "det_item_fee_sumamt": "56.40", "cnt": "3", "pric": "18.8"}]}`,
	"2601": `{"data": {"psn_no": "15010000000000000001", "omsgid": "H15010000011202603151000000007", "oinfno": "2207"}}`,
	"3201": `{"data": {"insutype": "310", "clr_type": "11", "setl_optins": "150100", "stmt_begndate": "2026-03-01", "stmt_enddate": "2026-03-31", "medfee_sumamt": "13593.30", "fund_pay_sumamt": "1234.56", "acct_pay": "300.00", "fixmedins_setl_cnt": "3"}}`,
	"3202": `{"data": {"stmt_begndate": "2026-03-01", "stmt_enddate": "2026-03-31"}, "detail": [{"setl_id": "S0123456789abcdef01234567", "mdtrt_id": "M0123456789abcdef01234567", "psn_no": "15010000000000000001", "medfee_sumamt": "310.00", "fund_pay_sumamt": "0.00", "acct_pay": "310.00", "refd_setl_flag": "0"}]}`,
	"5206": `{"data": {"psn_no": "15010000000000000001", "cum_ym": "202603"}}`,
}

func FuzzEnvelope(f *testing.F) {
	for infno, in := range seedInputs {
		f.Add(seedEnvelope(infno, in))
	}
	f.Add([]byte(`{"infno": "2207", "msgid": "H15010000011202613151000000001", "fixmedins_code": "H15010000011", "input": {}}`))
	f.Add([]byte(`{"infno": "2207", "msgid": 1, "input": {}}`))
	f.Add([]byte(`{"infno": "2207", "msgid": "H15010000011202603151000000001", "fixmedins_code": "H15010000011", "input": "{}"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeEnvelope(body)
		if err != nil {
			var rf *refusal
			if !errors.As(err, &rf) || rf.Msg == "" {
				t.Fatalf("decodeEnvelope error %v is not a refusal with a message", err)
			}
			return
		}
		if len(env.Msgid) != 30 || utf8.RuneCountInString(env.Msgid) != 30 {
			t.Fatalf("accepted msgid %q is not 30 characters", env.Msgid)
		}
		if env.Msgid[:12] != env.FixmedinsCode {
			t.Fatalf("accepted msgid %q of another institution than %q", env.Msgid, env.FixmedinsCode)
		}
		for _, c := range env.Msgid[12:] {
			if c < '0' || c > '9' {
				t.Fatalf("accepted msgid %q has a non-digit after the institution", env.Msgid)
			}
		}
		if env.Infno == "" {
			t.Fatal("accepted an empty infno")
		}
		in := bytes.TrimSpace(env.Input)
		if len(in) == 0 || in[0] != '{' || !json.Valid(in) {
			t.Fatalf("accepted input %q that is not a JSON object", in)
		}
		// The idempotency digest ignores the input's whitespace and nothing else.
		var indented bytes.Buffer
		if err := json.Indent(&indented, env.Input, "", "  "); err != nil {
			t.Fatalf("indenting accepted input: %v", err)
		}
		env2 := *env
		env2.Input = indented.Bytes()
		if digest(env) != digest(&env2) {
			t.Fatal("the digest changes with the input's whitespace")
		}
		env2.Infno += "x"
		if digest(env) == digest(&env2) {
			t.Fatal("the digest ignores infno")
		}
	})
}

// errStore is where a handler hands over to the engine's store: everything a
// handler checks itself happens before it.
var errStore = errors.New("store reached")

type noStore struct{}

func (noStore) Update(context.Context, func(context.Context, settlement.Tx) error) error {
	return errStore
}
func (noStore) View(context.Context, func(context.Context, settlement.Tx) error) error {
	return errStore
}

var fuzzRules = sync.OnceValue(func() *rules.RuleSet {
	rs, err := rules.Load(medsettle.Rules())
	if err != nil {
		panic(err)
	}
	return rs
})

// FuzzInputs runs every infno's handler on arbitrary input with an engine
// whose store refuses to be reached: decoding and validation must never
// panic, and every refusal must name the input field at fault.
func FuzzInputs(f *testing.F) {
	for infno, in := range seedInputs {
		f.Add(infno, []byte(in))
	}
	for infno := range handlers { // decodeRequired resolves all its paths: a misspelt one is no refusal
		f.Add(infno, []byte(`{}`))
	}
	f.Add("2204", []byte(`{"feedetail": []}`))
	f.Add("2204", []byte(`{"feedetail": [{"feedetl_sn": null, "cnt": true}]}`))
	f.Add("2207", []byte(`{"data": {"psn_no": "1", "mdtrt_id": "M", "med_type": "11", "insutype": "310", "medfee_sumamt": "1.001"}}`))
	f.Add("3201", []byte(`{"data": {"stmt_begndate": "2026-02-30", "stmt_enddate": "2026-03-01"}}`))
	f.Add("2601", []byte(`{"data": {"psn_no": "1", "omsgid": "H15010000011202603151000009999", "oinfno": "2208"}}`))
	f.Add("5206", []byte(`{"data": {"psn_no": "1", "cum_ym": "2026-03"}}`))
	f.Add("2201", []byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, infno string, input []byte) {
		h, ok := handlers[infno]
		if !ok {
			return
		}
		s := &Server{Engine: &settlement.Engine{Rules: fuzzRules(), Store: noStore{}}}
		env := &fsi.Envelope{Infno: infno, Msgid: "H15010000011202603151000000001", FixmedinsCode: fuzzInst, Input: input}
		c := &call{env: env, who: settlement.Principal{Institution: fuzzInst}, ctx: context.Background(),
			msg: settlement.Msg{ID: env.Msgid, Infno: infno, Institution: fuzzInst, Digest: "d"}}
		out, err := h.fn(s, c)
		switch {
		case err == nil:
			if infno != "9001" {
				t.Fatalf("%s succeeded without the store: %v", infno, out)
			}
		case errors.Is(err, errStore):
		default:
			var rf *refusal
			if !errors.As(err, &rf) {
				t.Fatalf("%s: error %v (%T) is neither a refusal nor the store's", infno, err, err)
			}
			if !strings.HasPrefix(rf.Msg, "input") {
				t.Fatalf("%s: refusal %q does not name the input field", infno, rf.Msg)
			}
		}
	})
}

// FuzzHelpers fuzzes the pure checks: checkMsgid, parseTime, lineInputs
// (through its field checks) and periodOf.
func FuzzHelpers(f *testing.F) {
	f.Add("H15010000011202603151000000001", "2026-03-15 10:00:00", "2026-03-01", "2026-03-31", "30.00", "11")
	f.Add("H15010000011202613151000000001", "2026-02-29 10:00:00", "2026-02-29", "2026-02-28", "30.001", "99")
	f.Add("H150100000112026031510000000x1", "2026-03-15 10:00:00.5", "", "2026-3-1", "-1", "")
	f.Add("H1501000001120260315100000000１", "2026-03-15T10:00:00", "2026-03-15", "2026-03-15", "1e3", "41")
	f.Fuzz(func(t *testing.T, msgid, ts, from, to, amount, clrType string) {
		if err := checkMsgid(msgid, fuzzInst); err == nil {
			if len(msgid) != 30 || msgid[:12] != fuzzInst {
				t.Fatalf("checkMsgid accepted %q", msgid)
			}
			for _, c := range msgid[12:] {
				if c < '0' || c > '9' {
					t.Fatalf("checkMsgid accepted %q with a non-digit", msgid)
				}
			}
		} else if !isRefusal(err) {
			t.Fatalf("checkMsgid: %v is not a refusal", err)
		}

		tm, err := parseTime("input.x", ts)
		switch {
		case err != nil:
			if !isRefusal(err) || !strings.Contains(err.Error(), "input.x") {
				t.Fatalf("parseTime error %v does not name the field", err)
			}
		case ts == "":
			if !tm.IsZero() {
				t.Fatal("parseTime of empty is not zero")
			}
		default:
			// Go's parser also takes fractional seconds; the time itself must be what was written.
			if got := tm.In(rules.CST).Format(timeLayout); len(ts) < 19 || got != ts[:19] {
				t.Fatalf("parseTime(%q) = %s", ts, got)
			}
		}

		lines := []fsi.FeeLine{{FeedetlSN: fsi.Text{S: "1", Set: true}, MdtrtID: "M1", PsnNo: "P1", MedListCodg: "001101000010000",
			Cnt: fsi.Text{S: amount, Set: true}, Pric: fsi.Text{S: amount, Set: true},
			DetItemFeeSumamt: fsi.Text{S: amount, Set: true}, FeeOcurTime: ts}}
		li, err := lineInputs(lines, "M1", "P1")
		if err != nil {
			if !isRefusal(err) || !strings.HasPrefix(err.Error(), "input.feedetail[0].") {
				t.Fatalf("lineInputs error %v does not name the line field", err)
			}
		} else if len(li) != 1 || li[0].Amount != amount || li[0].SN != "1" {
			t.Fatalf("lineInputs = %+v", li)
		}

		c := &call{env: &fsi.Envelope{FixmedinsCode: fuzzInst}}
		q, err := periodOf(c, fsi.StmtData{StmtBegndate: from, StmtEnddate: to, ClrType: clrType})
		if err != nil {
			if !isRefusal(err) || !strings.HasPrefix(err.Error(), "input.data.") {
				t.Fatalf("periodOf error %v does not name the field", err)
			}
			return
		}
		if q.From > q.To || q.From.String() != from || q.To.String() != to || q.Institution != fuzzInst {
			t.Fatalf("periodOf(%q, %q) = %+v", from, to, q)
		}
	})
}

func isRefusal(err error) bool {
	var rf *refusal
	return errors.As(err, &rf) && rf.Msg != ""
}
