package rules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

var refusalCodes = map[string]bool{
	rules.CodeInvalidRequest: true, rules.CodeUnknownRegion: true, rules.CodeUnknownInstitution: true,
	rules.CodeRegionMismatch: true, rules.CodeInvalidMedType: true, rules.CodeNoPolicy: true,
	rules.CodeInvalidInsutype: true, rules.CodeEmptyClaim: true, rules.CodeDuplicateLine: true,
	rules.CodeInvalidAmount: true, rules.CodeAmountMismatch: true, rules.CodeInvalidAssistance: true,
}

// requireRefusal: whatever is wrong with a request, the answer is one of the
// documented codes with a message, never the opaque "internal".
func requireRefusal(t *testing.T, err error) {
	var re *rules.Error
	require.True(t, errors.As(err, &re), "not a refusal: %v", err)
	require.True(t, refusalCodes[re.Code], "undocumented code %q", re.Code)
	require.NotEmpty(t, re.Message)
}

// requirePriced is what any priced claim must satisfy, whatever the rules.
func requirePriced(t *testing.T, rs *rules.RuleSet, c *rules.Claim, res *rules.Result) {
	requireIdentities(t, c, res)
	requireCaps(t, rs, c, res)
	_, err := json.Marshal(rules.Answer{Setlinfo: res.Setlinfo, Lines: res.Lines, After: res.After})
	require.NoError(t, err)
}

// Any bytes on stdin: decoding and pricing never panic, a refusal is a
// documented one, and whatever prices keeps docs/pricing.md's identities and
// agrees with the decimal re-derivation.
func FuzzDecodeRequest(f *testing.F) {
	for _, g := range goldenCases(f) {
		f.Add([]byte(g.Request))
	}
	f.Add(tenLinesJSON(f))
	f.Add([]byte(`{"feedetail":[{"cnt":1e400}]}`))
	f.Add([]byte(`{"state":{"admissions":"-1"}}`))
	f.Add([]byte(`{"insuplc_admdvs":"150100","fixmedins_code":"H15010000011","med_type":"21","setl_date":"2026-03-15",` +
		`"insutype":"390","feedetail":[{"feedetl_sn":1,"med_list_codg":"C0101020000000009012","cnt":"9999999999.9999",` +
		`"pric":"92233720.3685","det_item_fee_sumamt":"922337203685.47"}]}`))
	rs := loadRules(f)
	ref := refCatalogs(f, realFS(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := rules.DecodeRequest(bytes.NewReader(data))
		if err != nil {
			requireRefusal(t, err)
			return
		}
		c := req.Claim()
		res, err := rs.Price(c)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		requirePriced(t, rs, c, res)
		requireReference(t, rs, ref, c, res)
	})
}

// provinceFS is the real rules cut down to one province: still a valid rules
// directory, and five times faster to load, which is what bounds how many
// inputs a load fuzzer tries.
func provinceFS(t testing.TB, province string) fstest.MapFS {
	t.Helper()
	m := realFS(t)
	keep := map[string]bool{}
	for name := range m {
		switch {
		case strings.HasPrefix(name, "regions/"):
			var r struct{ Admdvs, Province string }
			require.NoError(t, json.Unmarshal(m[name].Data, &r))
			if r.Province != province {
				delete(m, name)
			} else {
				keep[r.Admdvs] = true
			}
		case strings.HasPrefix(name, "catalogs/") && name != "catalogs/"+province+".csv":
			delete(m, name)
		}
	}
	var b strings.Builder
	for i, line := range strings.SplitAfter(string(m["institutions.csv"].Data), "\n") {
		if fields := strings.Split(line, ","); i == 0 || len(fields) > 2 && keep[fields[2]] {
			b.WriteString(line)
		}
	}
	m["institutions.csv"] = &fstest.MapFile{Data: []byte(b.String())}
	_, err := rules.Load(m)
	require.NoError(t, err)
	return m
}

// fuzzRulesFile replaces one file of a valid rules directory with the
// fuzzer's bytes. Load must refuse or accept without panicking; rules it
// accepts must price the worked cases without panicking and within the
// identities.
func fuzzRulesFile(f *testing.F, path string, seeds ...string) {
	base := provinceFS(f, "150000")
	f.Add(base[path].Data)
	for _, s := range append(seeds, "", "{}", `"`) {
		f.Add([]byte(s))
	}
	var claims []*rules.Request
	for _, raw := range append([][]byte{tenLinesJSON(f)}, goldenRequests(f)...) {
		req, err := rules.DecodeRequest(bytes.NewReader(raw))
		require.NoError(f, err)
		if code := req.FixmedinsCode; strings.HasPrefix(req.InsuplcAdmdvs, "15") && len(code) == 12 && code[1:3] == "15" {
			claims = append(claims, req) // the others would only be refused as unknown
		}
	}
	require.GreaterOrEqual(f, len(claims), 5)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fstest.MapFS{}
		for k, v := range base {
			m[k] = v
		}
		m[path] = &fstest.MapFile{Data: data}
		rs, err := rules.Load(m)
		if err != nil {
			var le *rules.LoadError
			require.True(t, errors.As(err, &le), "%v", err)
			require.NotEmpty(t, le.Problems)
			return
		}
		require.NotNil(t, rs)
		for _, req := range claims {
			c := req.Claim()
			res, err := rs.Price(c)
			if err != nil {
				requireRefusal(t, err)
				continue
			}
			requirePriced(t, rs, c, res)
		}
	})
}

func goldenRequests(t testing.TB) [][]byte {
	var out [][]byte
	for _, g := range goldenCases(t) {
		out = append(out, g.Request)
	}
	return out
}

// Any region file: the loader refuses or accepts, never panics.
func FuzzLoadRegion(f *testing.F) {
	fuzzRulesFile(f, "regions/150100.json", `{"admdvs":"150100","province":"150000","versions":[]}`)
}

// Any catalog file likewise.
func FuzzLoadCatalog(f *testing.F) {
	fuzzRulesFile(f, "catalogs/150000.csv",
		"med_list_codg,name,list_type,chrgitm_lv,selfpay_prop,pric_uplmt_amt,valid_from,valid_to\n"+
			"001102000010000,bed,service,02,0.3333,0.01,2026-01-01,\n")
}

// Any amount text: parsed exactly or refused; what parses means what
// shopspring/decimal reads in it, and prints back to the same value.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"0", "12.3", "-0.05", "999999999999999999.99", "92233720368547758.07", "1e3", "1.234",
		".5", "5.", "-", "--1", "0x10", " 1", "1_000", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := rules.ParseMoney(s)
		if err != nil {
			return
		}
		d, derr := decimal.NewFromString(s)
		require.NoError(t, derr, "ParseMoney took %q, which is not a decimal", s)
		require.True(t, d.Equal(m.Decimal()), "%q parsed as %s", s, m)
		back, err := rules.ParseMoney(m.String())
		require.NoError(t, err, "%q -> %s", s, m)
		require.Equal(t, m, back, "%q -> %s", s, m)
	})
}
