package rules_test

import (
	"bytes"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/rules"
)

// tenLines is a realistic inpatient claim: drugs, services, a capped
// material, a self-paid bed, an item outside the catalog.
func tenLines() *rules.Claim {
	d := decimal.RequireFromString
	line := func(sn, code, cnt, pric, amt string) rules.Line {
		return rules.Line{SN: sn, Code: code, Cnt: d(cnt), Pric: d(pric), Amount: d(amt)}
	}
	return &rules.Claim{
		InsuredRegion: "150100", Institution: "H15010000011", MedType: "21", SetlDate: 20260315,
		Insutype: "310", Retired: true, UseAccount: true, Assistance: "dibao",
		State: rules.Counters{BurdenYTD: 1800000, AcctBalc: 300000, Admissions: 1, FundPaidInpatient: 1200000},
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

// BenchmarkPrice10Lines measures the pure pricing of a 10-line claim with
// decimal inputs, as a Go caller gives it. claims/s is per core with -cpu 1.
func BenchmarkPrice10Lines(b *testing.B) {
	rs := loadRules(b)
	c := tenLines()
	if _, err := rs.Price(c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rs.Price(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}

func BenchmarkPrice10LinesParallel(b *testing.B) {
	rs := loadRules(b)
	c := tenLines()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rs.Price(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}

// BenchmarkPriceRequest includes decoding the JSON request, as `medsettle price` does.
func BenchmarkPriceRequest(b *testing.B) {
	rs := loadRules(b)
	raw := goldenCases(b)["case-0004.json"].Request
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := rules.DecodeRequest(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rs.Price(req.Claim()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}
