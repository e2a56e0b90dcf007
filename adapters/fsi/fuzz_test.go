package fsi_test

// Fuzz targets for what package fsi reads from outside: amounts and ratios
// (strings or bare numbers), Text, answer envelopes and their outputs, and
// msgids. `go test` runs the seeds; `go test -fuzz FuzzX` explores.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
)

// Amounts: ordinary, at the edges of int64 fen, beyond a float64's 2^53, and malformed.
var moneySeeds = []string{
	"0", "0.00", "12", "12.3", "12.30", "-0.05", "-0", "-0.00", "007.10", "1500.5", "4882.69",
	"92233720368547758.07", "-92233720368547758.07", "92233720368547758.08", "-92233720368547758.08",
	"90071992547409.93", "90071992547409.91", "0.1", "0.29", "1e2", "1E-2", "+1", " 1", "1 ", "1.", ".5",
	"-", "", "1.234", "1..2", "1,00", "０", "١٢", "0x10", "NaN", "Inf", "12.30\x00",
}

// exact is the value of the plain decimal s, or nil.
func exact(s string) *big.Rat {
	if !plain.MatchString(s) {
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}

var plain = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// decimals is how many digits follow the point of the plain decimal s.
func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// scaled is v / 10^places as a rational.
func scaled(v int64, places int) *big.Rat {
	return new(big.Rat).SetFrac(big.NewInt(v), pow10(places))
}

// fits reports whether the rational r is a count of 10^-places within
// ±MaxInt64 (the text of MinInt64 is refused: no amount comes near either).
func fits(r *big.Rat, places int) bool {
	n := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(places)))
	return n.IsInt() && new(big.Int).Abs(n.Num()).IsInt64()
}

// checkFixed checks one reading of text s as a count of 10^-places: accepted
// exactly when s is a plain decimal with at most places decimals that fits
// in int64, and then equal to it digit for digit (a float would lose the
// cents of large amounts); canonical is the value written back, which must
// read back to the same count.
func checkFixed(t *testing.T, s string, places int, v int64, err error, canonical string, reread func(string) (int64, error)) {
	t.Helper()
	want := exact(s)
	ok := want != nil && decimals(s) <= places && fits(want, places)
	if ok != (err == nil) {
		t.Fatalf("%q: accepted %v (err %v), want %v", s, err == nil, err, ok)
	}
	if err != nil {
		return
	}
	if got := scaled(v, places); got.Cmp(want) != 0 {
		t.Fatalf("%q read as %d (%s), want %s", s, v, got.FloatString(places), want.FloatString(places))
	}
	if !plain.MatchString(canonical) || decimals(canonical) < 2 || decimals(canonical) > places {
		t.Fatalf("%q written as %q", s, canonical)
	}
	back, err := reread(canonical)
	if err != nil || back != v {
		t.Fatalf("%q written as %q, read back as %d (%v), want %d", s, canonical, back, err, v)
	}
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range moneySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := fsi.ParseMoney(s)
		checkFixed(t, s, 2, int64(m), err, m.String(), func(c string) (int64, error) {
			m, err := fsi.ParseMoney(c)
			return int64(m), err
		})
		if err == nil {
			if d := m.Decimal().String(); exact(d).Cmp(scaled(int64(m), 2)) != 0 {
				t.Fatalf("%q: Decimal %s", s, d)
			}
		}
	})
}

// jsonText is the text a JSON value b holds: the string's contents, or the
// literal of a number; ok is false for anything else.
func jsonText(b []byte) (string, bool) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return "", false
		}
		return s, true
	}
	return string(b), true
}

func fuzzJSONFixed(f *testing.F, places int, unmarshal func([]byte) (int64, error), marshal func(int64) ([]byte, error)) {
	for _, s := range moneySeeds {
		f.Add([]byte(s))
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	for _, s := range []string{`null`, `true`, `"`, `""`, `"\u0031\u0032.30"`, `"12.30`, ` "1.25" `, `{}`, `[1]`, `"0.875"`, `0.8500`, `1.00001`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := unmarshal(b)
		text, isText := jsonText(b)
		if !isText {
			if err == nil {
				t.Fatalf("%q accepted as %d", b, v)
			}
			return
		}
		out, merr := marshal(v)
		if err == nil && merr != nil {
			t.Fatalf("%d: %v", v, merr)
		}
		var canonical string
		if err == nil {
			if json.Unmarshal(out, &canonical) != nil {
				t.Fatalf("%d written as %s, not a JSON string", v, out)
			}
		}
		checkFixed(t, text, places, v, err, canonical, func(string) (int64, error) { return unmarshal(out) })
	})
}

func FuzzMoneyJSON(f *testing.F) { fuzzJSONFixed(f, 2, unmarshalAs[fsi.Money], marshalAs[fsi.Money]) }

func FuzzRatioJSON(f *testing.F) { fuzzJSONFixed(f, 4, unmarshalAs[fsi.Ratio], marshalAs[fsi.Ratio]) }

// unmarshalAs reads b with T's UnmarshalJSON (T is Money or Ratio).
func unmarshalAs[T ~int64, P interface {
	*T
	json.Unmarshaler
}](b []byte) (int64, error) {
	var v T
	err := P(&v).UnmarshalJSON(b)
	return int64(v), err
}

// marshalAs writes v as a T.
func marshalAs[T ~int64](v int64) ([]byte, error) { return json.Marshal(T(v)) }

// Text keeps what the HIS wrote, string or number, and writes it back as a string.
func FuzzText(f *testing.F) {
	for _, s := range []string{`"12.30"`, `12.30`, `-0.5`, `1e400`, `null`, `""`, `"a\"b"`, `"\ud800"`, `true`, `{}`, `[]`, `1.0000000000000000000001`} {
		f.Add([]byte(`{"x":` + s + `}`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct{ X fsi.Text }
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if !v.X.Set && v.X.S != "" {
			t.Fatalf("%q: unset Text %q", b, v.X.S)
		}
		var raw struct{ X json.RawMessage }
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if v.X.Set {
			if want, _ := jsonText(raw.X); v.X.S != want {
				t.Fatalf("%q: Text %q, want %q as written", b, v.X.S, want)
			}
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var again struct{ X fsi.Text }
		if err := json.Unmarshal(out, &again); err != nil || again.X.S != v.X.S {
			t.Fatalf("%q written as %s, read back as %q (%v)", b, out, again.X.S, err)
		}
	})
}

// The outputs a client decodes from an answer.
var outputs = map[string]func() any{
	"9001": func() any { return new(fsi.SignInOutput) },
	"1101": func() any { return new(fsi.PersonOutput) },
	"2201": func() any { return new(fsi.OutpatientOutput) },
	"2401": func() any { return new(fsi.AdmissionOutput) },
	"2204": func() any { return new(fsi.FeeOutput) },
	"2207": func() any { return new(fsi.SettleOutput) },
	"2601": func() any { return new(fsi.ReverseOutput) },
	"3201": func() any { return new(fsi.TotalsOutput) },
}

// An answer envelope decodes, writes back as the national envelope (err_code
// only when set) and reads back the same; its output, when it decodes into an
// infno's type, writes back and reads back the same too.
func FuzzDecodeAnswer(f *testing.F) {
	seed := func(a fsi.Answer, out any) {
		if out != nil {
			a.Output, _ = json.Marshal(out)
		}
		b, _ := json.Marshal(a)
		f.Add(b)
	}
	setl := fsi.Setlinfo{MdtrtID: "M1", SetlID: "S1", PsnNo: "P1", SetlTime: "2026-03-15 10:00:00", MedType: "11",
		MedfeeSumamt: 12540, FundPaySumamt: 8778, PsnCashPay: 3762, PoolPropSelfpay: 1500, Balc: 488269}
	seed(fsi.Answer{InfRefmsgid: "r", Output: json.RawMessage(`{"x":1}`)}, nil)
	seed(fsi.Answer{}, fsi.SettleOutput{Setlinfo: setl, Setldetail: []fsi.FundPayment{{FundPayType: fsi.FundPayEmployeePool, FundPayamt: 8778, CrtPaybLmt: 1500000}}})
	seed(fsi.Answer{}, fsi.ReverseOutput{Data: fsi.ReverseData{Oinfno: "2207", Omsgid: "M", Rslt: fsi.Reversed},
		ReversedSettlement: &fsi.ReversedSettlement{Setlinfo: setl}})
	seed(fsi.Answer{}, fsi.ReverseOutput{Data: fsi.ReverseData{Rslt: fsi.Voided}})
	seed(fsi.Answer{}, fsi.FeeOutput{Result: []fsi.PricedLine{{FeedetlSN: "1", DetItemFeeSumamt: 450150, Cnt: "3", Pric: "1500.5"}}})
	seed(fsi.Answer{}, fsi.TotalsOutput{Stmtinfo: fsi.Stmtinfo{StmtRslt: "0", Platform: fsi.StmtTotals{MedfeeSumamt: 1, FixmedinsSetlCnt: 2}}})
	seed(fsi.Answer{Infcode: fsi.InfcodeRefused, ErrMsg: "input.data.psn_no is required"}, nil)
	seed(fsi.Answer{Infcode: fsi.InfcodeRefused, ErrMsg: "internal error", ErrCode: fsi.ErrCodeOutcomeUnknown}, nil)
	for _, s := range []string{
		`{"infcode": 0, "output": {"trunc`, `{"infcode":"0"}`, `{"infcode":1e0}`, `{"INFCODE":-1,"Err_Code":"outcome_unknown"}`,
		`{"infcode":0,"output":{"setlinfo":{"medfee_sumamt":125.4,"balc":"4882.69"}}}`, `{"output":{"setlinfo":{"medfee_sumamt":null}}}`,
		`{"output":{"data":{"rslt":"reversed"},"setlinfo":null}}`, `null`, `[]`, `{"err_msg":"\ud800\xff"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a fsi.Answer
		if json.Unmarshal(b, &a) != nil {
			return
		}
		if a.OutcomeUnknown() != (a.ErrCode == fsi.ErrCodeOutcomeUnknown) {
			t.Fatal("OutcomeUnknown disagrees with err_code")
		}
		out, err := json.Marshal(&a)
		if err != nil {
			t.Fatalf("%q decoded to %+v, which does not encode: %v", b, a, err)
		}
		if !bytes.HasPrefix(out, []byte(`{"infcode":`)) || bytes.Contains(out, []byte(`"err_code"`)) != (a.ErrCode != "") {
			t.Fatalf("%q written as %s", b, out)
		}
		var again fsi.Answer
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if a.Output == nil {
			a.Output = json.RawMessage("null") // written as null
		}
		if x, y := value(t, a.Output), value(t, again.Output); !reflect.DeepEqual(x, y) {
			t.Fatalf("%q: output %s written as %s, read back as %s", b, a.Output, out, again.Output)
		}
		ha, hb := a, again
		ha.Output, hb.Output = nil, nil
		if !reflect.DeepEqual(ha, hb) {
			t.Fatalf("%q read as %+v, written as %s, read back as %+v", b, a, out, again)
		}
		for infno, newOut := range outputs {
			v := newOut()
			if a.Decode(v) != nil {
				continue
			}
			w, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s output %s decoded to %+v, which does not encode: %v", infno, a.Output, v, err)
			}
			v2 := newOut()
			if err := json.Unmarshal(w, v2); err != nil || !reflect.DeepEqual(v, v2) {
				t.Fatalf("%s output %s read as %+v, written as %s, read back as %+v (%v)", infno, a.Output, v, w, v2, err)
			}
		}
	})
}

// value is the JSON value b, numbers kept as written.
func value(t *testing.T, b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("output %q: %v", b, err)
	}
	return v
}

func FuzzCheckMsgid(f *testing.F) {
	const inst = "H15010000011"
	f.Add(inst+"202603151000000001", inst, int64(1773540000), uint16(1))
	f.Add(inst+"20260315100000000", inst, int64(0), uint16(9999))
	f.Add("H15010000012202603151000000001", inst, int64(-62135596800), uint16(0))
	f.Add(inst+"20260230100000000a", inst, int64(253402300799), uint16(42))
	f.Add(inst+"2026031510000-0001", inst, int64(math.MaxInt64), uint16(65535))
	f.Add(inst+"+02603151000000001", inst, int64(math.MinInt64), uint16(7))
	f.Add(inst+"20260315246000 001", inst, int64(1), uint16(1))
	f.Add(inst+"2026031510000０001", "H1501000001", int64(1), uint16(1))
	f.Fuzz(func(t *testing.T, msgid, inst string, sec int64, seq uint16) {
		if err := fsi.CheckMsgid(msgid, inst); err == nil {
			if len(msgid) != 30 || msgid[:12] != inst {
				t.Fatalf("%q accepted for %q", msgid, inst)
			}
			stamp := msgid[12:26]
			when, err := time.Parse(fsi.MsgidStampLayout, stamp)
			if err != nil || when.Format(fsi.MsgidStampLayout) != stamp {
				t.Fatalf("%q accepted: stamp %q is %v (%v)", msgid, stamp, when, err)
			}
			for _, c := range []byte(msgid[12:]) {
				if c < '0' || c > '9' {
					t.Fatalf("%q accepted: not digits after fixmedins_code", msgid)
				}
			}
		}
		// Every msgid of the national shape is accepted.
		if len(inst) != 12 {
			return
		}
		at := time.Unix(sec, 0).In(fsi.CST)
		if at.Year() < 0 || at.Year() > 9999 {
			return
		}
		id := fmt.Sprintf("%s%s%04d", inst, at.Format(fsi.MsgidStampLayout), seq%10000)
		if err := fsi.CheckMsgid(id, inst); err != nil {
			t.Fatalf("%q refused: %v", id, err)
		}
	})
}
