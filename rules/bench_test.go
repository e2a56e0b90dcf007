package rules_test

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

// tenLines is a realistic inpatient claim of an employee retiree on 低保 in
// Hohhot: drugs, services, capped materials priced over their cap, a 乙类
// share, a 丙类 bed, an item outside the catalog; counters far enough into the
// year that the supplementary insurance and the account pay too. Its inputs
// are decimal.Decimal, as a Go caller (the settlement engine) gives them.
func tenLines() *rules.Claim {
	d := decimal.RequireFromString
	line := func(sn, code, cnt, pric, amt string) rules.Line {
		return rules.Line{SN: sn, Code: code, Cnt: d(cnt), Pric: d(pric), Amount: d(amt)}
	}
	return &rules.Claim{
		InsuredRegion: "150100", Institution: "H15010000011", MedType: "21", SetlDate: 20260315,
		Insutype: "310", Retired: true, UseAccount: true, Assistance: "dibao",
		State: rules.Counters{BurdenYTD: 1_800_000, AcctBalc: 300_000, Admissions: 1, FundPaidInpatient: 1_200_000},
		Lines: []rules.Line{
			line("1", "XJ01DDA062B002010100345", "6", "35.5", "213.00"),
			line("2", "001102000010000", "7", "80", "560.00"),
			line("3", "002302000010000", "2", "382.4365", "764.87"),
			line("4", "C0303010000000001234", "1", "8900", "8900.00"),
			line("5", "001103000010000", "3", "200", "600.00"),
			line("6", "XL01XCR096B001010100789", "2", "2100.25", "4200.50"),
			line("7", "003311000010000", "1", "12000", "12000.00"),
			line("8", "ZA04BAA0123010101010", "4", "18.75", "75.00"),
			line("9", "NOTINCATALOG0001", "1", "99.99", "99.99"),
			line("10", "C0101020000000009012", "30", "6.5", "195.00"),
		},
	}
}

// tenLinesJSON is the same claim as `medsettle price` reads it.
func tenLinesJSON(b testing.TB) []byte {
	c := tenLines()
	type wireLine struct {
		SN     string `json:"feedetl_sn"`
		Code   string `json:"med_list_codg"`
		Cnt    string `json:"cnt"`
		Pric   string `json:"pric"`
		Amount string `json:"det_item_fee_sumamt"`
	}
	req := map[string]any{
		"insuplc_admdvs": c.InsuredRegion, "mdtrtarea_admvs": "150100", "fixmedins_code": c.Institution,
		"med_type": c.MedType, "setl_date": "2026-03-15", "insutype": c.Insutype, "retired": true,
		"registered": false, "assistance": c.Assistance, "acct_used_flag": "1",
		"state": map[string]any{"burden_ytd": c.State.BurdenYTD.String(), "acct_balc": c.State.AcctBalc.String(),
			"fund_paid_inpatient": c.State.FundPaidInpatient.String(), "admissions": c.State.Admissions},
	}
	var lines []wireLine
	for _, l := range c.Lines {
		lines = append(lines, wireLine{l.SN, l.Code, l.Cnt.String(), l.Pric.String(), l.Amount.StringFixed(2)})
	}
	req["feedetail"] = lines
	raw, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// checkTenLines fails a benchmark whose claim stopped exercising what makes
// it realistic (a data change could make it price trivially).
func checkTenLines(b testing.TB, res *rules.Result) {
	s := res.Setlinfo
	if s.OverlmtSelfpay == 0 || s.PreselfpayAmt == 0 || s.FulamtOwnpayAmt == 0 || s.HifpPay == 0 ||
		s.HifobPay == 0 || s.MafPay == 0 || s.AcctPay == 0 {
		b.Fatalf("the benchmark claim no longer exercises every step: %+v", s)
	}
}

func claimsPerSecond(b *testing.B) float64 { return float64(b.N) / b.Elapsed().Seconds() }

// BenchmarkPrice10Lines is the pure pricing of one claim. The target is
// 200,000 claims/s on one core: run it with -cpu=1.
func BenchmarkPrice10Lines(b *testing.B) {
	rs := loadRules(b)
	c := tenLines()
	res, err := rs.Price(c)
	if err != nil {
		b.Fatal(err)
	}
	checkTenLines(b, res)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rs.Price(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(claimsPerSecond(b), "claims/s")
}

// BenchmarkPrice10LinesParallel shows that one RuleSet serves every core
// without contention: claims/s/core should stay near the serial figure.
func BenchmarkPrice10LinesParallel(b *testing.B) {
	rs := loadRules(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := tenLines() // a claim per goroutine, as the server has
		for pb.Next() {
			if _, err := rs.Price(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(claimsPerSecond(b), "claims/s")
	b.ReportMetric(claimsPerSecond(b)/float64(runtime.GOMAXPROCS(0)), "claims/s/core")
}

// BenchmarkPriceRequest adds decoding the JSON request and building the
// claim, as `medsettle price` and the counter interface do.
func BenchmarkPriceRequest(b *testing.B) {
	rs := loadRules(b)
	raw := tenLinesJSON(b)
	req, err := rules.DecodeRequest(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	res, err := rs.Price(req.Claim())
	if err != nil {
		b.Fatal(err)
	}
	checkTenLines(b, res)
	b.ReportAllocs()
	for b.Loop() {
		req, err := rules.DecodeRequest(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rs.Price(req.Claim()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(claimsPerSecond(b), "claims/s")
}

// The JSON entrance and the Decimal entrance price the benchmark claim alike.
func TestTenLinesSameThroughJSON(t *testing.T) {
	rs := loadRules(t)
	want, err := rs.Price(tenLines())
	require.NoError(t, err)
	checkTenLines(t, want)
	req, err := rules.DecodeRequest(bytes.NewReader(tenLinesJSON(t)))
	require.NoError(t, err)
	got, err := rs.Price(req.Claim())
	require.NoError(t, err)
	require.Equal(t, want.Setlinfo, got.Setlinfo)
	require.Equal(t, want.Lines, got.Lines)
	require.Equal(t, want.After, got.After)
}
