package rules_test

import (
	"bytes"
	"testing"
	"testing/fstest"

	"github.com/medsettle/medsettle/rules"
)

// Any bytes on stdin: decoding and pricing never panic, and whatever prices
// keeps PRICING.md's identities.
func FuzzDecodeRequest(f *testing.F) {
	for _, g := range goldenCases(f) {
		f.Add([]byte(g.Request))
	}
	f.Add([]byte(`{"feedetail":[{"cnt":1e400}]}`))
	f.Add([]byte(`{"state":{"admissions":"-1"}}`))
	rs := loadRules(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := rules.DecodeRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		res, err := rs.Price(req.Claim())
		if err != nil {
			return
		}
		s := res.Setlinfo
		if s.MedfeeSumamt != s.FundPaySumamt+s.AcctPay+s.PsnCashPay ||
			s.MedfeeSumamt != s.FulamtOwnpayAmt+s.OverlmtSelfpay+s.PreselfpayAmt+s.InscpScpAmt {
			t.Fatalf("split does not add up: %+v", s)
		}
		for _, m := range []rules.Money{s.HifpPay, s.HifmiPay, s.HifobPay, s.MafPay, s.AcctPay, s.PsnCashPay, s.InscpScpAmt} {
			if m < 0 {
				t.Fatalf("negative amount: %+v", s)
			}
		}
	})
}

func fuzzRulesFile(f *testing.F, path string) {
	base := realFS(f)
	f.Add(base[path].Data)
	f.Add([]byte("{}"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fstest.MapFS{}
		for k, v := range base {
			m[k] = v
		}
		m[path] = &fstest.MapFile{Data: data}
		rs, err := rules.Load(m)
		if err == nil && rs == nil {
			t.Fatal("no rules and no error")
		}
	})
}

// Any region file: the loader refuses or accepts, never panics.
func FuzzLoadRegion(f *testing.F) { fuzzRulesFile(f, "regions/150100.json") }

// Any catalog file likewise.
func FuzzLoadCatalog(f *testing.F) { fuzzRulesFile(f, "catalogs/150000.csv") }

// Any amount text: parsed exactly or refused; what parses prints back the same value.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"0", "12.3", "-0.05", "999999999999999999.99", "1e3", "1.234", ".5", "5."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := rules.ParseMoney(s)
		if err != nil {
			return
		}
		back, err := rules.ParseMoney(m.String())
		if err != nil || back != m {
			t.Fatalf("%q -> %d -> %q -> %d (%v)", s, m, m.String(), back, err)
		}
	})
}
