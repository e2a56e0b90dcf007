package rules_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

// The engine prices in int64 fen and 10^-4 units with 128-bit intermediates.
// This file re-derives docs/pricing.md in shopspring/decimal, the plain way, so
// that a fixed-point slip (a scale, a rounding, an overflow) shows up as a
// disagreement. The catalog is re-read from the CSV text, not taken from the
// loader, so that a misread column would show up too.

// refRow is one catalog row as its CSV text says.
type refRow struct {
	code, level string
	prop        decimal.Decimal
	cap         *decimal.Decimal
	from, to    string // yyyy-mm-dd, compared as text; to "" is open
}

// refCatalogs reads every catalogs/*.csv of fsys, by province.
func refCatalogs(t testing.TB, fsys fs.FS) map[string][]refRow {
	t.Helper()
	names, err := fs.Glob(fsys, "catalogs/*.csv")
	require.NoError(t, err)
	out := map[string][]refRow{}
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		require.NoError(t, err)
		recs, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
		require.NoError(t, err, name)
		var rows []refRow
		for _, rec := range recs[1:] {
			row := refRow{code: rec[0], level: rec[3], prop: decimal.RequireFromString(rec[4]), from: rec[6], to: rec[7]}
			if rec[5] != "" {
				c := decimal.RequireFromString(rec[5])
				row.cap = &c
			}
			rows = append(rows, row)
		}
		out[strings.TrimSuffix(path.Base(name), ".csv")] = rows
	}
	return out
}

func refLookup(rows []refRow, code, day string) *refRow {
	for i := range rows {
		r := &rows[i]
		if r.code == code && r.from <= day && (r.to == "" || day <= r.to) {
			return r
		}
	}
	return nil
}

func dayText(d rules.Date) string {
	return fmt.Sprintf("%04d-%02d-%02d", int(d)/10000, int(d)/100%100, int(d)%100)
}

type refLineResult struct {
	amt, fulamt, over, pre, inscp decimal.Decimal
	level                         string
}

// refLine is step 1 for one line.
func refLine(rows []refRow, day string, ln rules.Line) refLineResult {
	res := refLineResult{amt: ln.Amount}
	row := refLookup(rows, ln.Code, day)
	switch {
	case row == nil:
		res.fulamt = res.amt
	case row.level == "03":
		res.level = row.level
		res.fulamt = res.amt
	default:
		res.level = row.level
		if row.cap != nil && ln.Pric.GreaterThan(*row.cap) {
			res.over = roundHalfUp(ln.Pric.Sub(*row.cap).Mul(ln.Cnt))
		}
		if row.level == "02" {
			res.pre = roundHalfUp(res.amt.Sub(res.over).Mul(row.prop))
		}
	}
	res.inscp = res.amt.Sub(res.fulamt).Sub(res.over).Sub(res.pre)
	return res
}

func requireMoney(t require.TestingT, want decimal.Decimal, got rules.Money, format string, args ...any) {
	require.True(t, want.Equal(got.Decimal()), "%s: reference %s, engine %s", fmt.Sprintf(format, args...), want.StringFixed(2), got)
}

func requireLine(t require.TestingT, want refLineResult, got rules.LineResult, ln rules.Line) {
	what := fmt.Sprintf("line %s %s cnt %s pric %s amount %s", ln.SN, ln.Code, ln.Cnt, ln.Pric, ln.Amount)
	requireMoney(t, want.amt, got.Amount, "%s amount", what)
	requireMoney(t, want.fulamt, got.Fulamt, "%s fulamt", what)
	requireMoney(t, want.over, got.Over, "%s over", what)
	requireMoney(t, want.pre, got.Pre, "%s pre", what)
	requireMoney(t, want.inscp, got.Inscp, "%s inscp", what)
	require.Equal(t, want.level, string(got.Level), what)
}

var categoryOfMedType = map[string]rules.Category{"11": rules.Outpatient, "41": rules.Outpatient, "14": rules.Chronic, "21": rules.Inpatient}

// refFigures are the reference's figures for one claim, steps 1 to 8.
type refFigures struct {
	medfee, fulamt, over, pre, inscp        decimal.Decimal
	dedc, ratio, hifp, burden, supp, maf    decimal.Decimal
	hifmi, hifob, fund, psnPart, acct, balc decimal.Decimal
}

// refClaimContext is what the steps of one claim look up in the rules.
type refClaimContext struct {
	level int
	cat   rules.Category
	v     *rules.PolicyVersion
	ip    *rules.InsutypePolicy
	b     rules.Benefit
	st    rules.Counters
	cross bool
}

// requireReference re-derives steps 1 to 9 for a priced claim and compares
// every figure. Policies are taken from rs: the golden cases pin their parsing.
func requireReference(t require.TestingT, rs *rules.RuleSet, catalogs map[string][]refRow, c *rules.Claim, res *rules.Result) {
	inst := rs.Institutions[c.Institution]
	rows := catalogs[rs.Regions[inst.Admdvs].Province]

	var f refFigures
	refLinesStep(t, rows, dayText(c.SetlDate), c, res, &f)

	cat := categoryOfMedType[c.MedType]
	v := rs.Regions[c.InsuredRegion].InForce(c.SetlDate)
	ip := v.Insutypes[c.Insutype]
	x := refClaimContext{level: inst.Level, cat: cat, v: v, ip: ip, b: ip.Benefits[cat], st: c.State,
		cross: c.InsuredRegion != inst.Admdvs}

	refDeductibleStep(x, &f)
	refRatioStep(c, x, &f)
	refBasicFundStep(x, &f)
	refSupplementaryStep(t, c, x, &f)
	refTotalsStep(c, x, &f)

	requireSetlinfo(t, f, res.Setlinfo)
	requireCountersAfter(t, x, f, res.After)
}

// refLinesStep is step 1: every line against the reference, and the sums.
func refLinesStep(t require.TestingT, rows []refRow, day string, c *rules.Claim, res *rules.Result, f *refFigures) {
	for i, ln := range c.Lines {
		require.True(t, roundHalfUp(ln.Cnt.Mul(ln.Pric)).Equal(ln.Amount), "the claim's amounts are ROUND(cnt*pric)")
		want := refLine(rows, day, ln)
		requireLine(t, want, res.Lines[i], ln)
		f.medfee, f.fulamt, f.over = f.medfee.Add(want.amt), f.fulamt.Add(want.fulamt), f.over.Add(want.over)
		f.pre, f.inscp = f.pre.Add(want.pre), f.inscp.Add(want.inscp)
	}
}

// refDeductibleStep is step 2.
func refDeductibleStep(x refClaimContext, f *refFigures) {
	zero := decimal.Zero
	b, st := x.b, x.st
	remaining := zero
	switch b.Deductible.Mode {
	case rules.DeductibleAnnual:
		used := st.DedcUsedOutpatient.Decimal()
		if x.cat == rules.Chronic {
			used = st.DedcUsedChronic.Decimal()
		}
		remaining = decimal.Max(zero, b.Deductible.ByLevel[x.level].Decimal().Sub(used))
	case rules.DeductiblePerAdmission:
		remaining = b.Deductible.ByLevel[x.level].Decimal()
		if st.Admissions >= 1 {
			remaining = roundHalfUp(remaining.Mul(b.Deductible.SubsequentFactor.Decimal()))
		}
	}
	f.dedc = decimal.Min(f.inscp, remaining)
}

// refRatioStep is step 3.
func refRatioStep(c *rules.Claim, x refClaimContext, f *refFigures) {
	r := x.b.Ratio[x.level].Decimal()
	if c.Insutype == "310" && c.Retired {
		r = decimal.Min(r.Add(x.b.RetireeBonus.Decimal()), x.b.MaxRatio.Decimal())
	}
	if x.cross && !c.Registered {
		r = decimal.Max(decimal.Zero, r.Sub(x.v.UnregisteredPenalty.Decimal()))
	}
	f.ratio = r
}

// refBasicFundStep is step 4.
func refBasicFundStep(x refClaimContext, f *refFigures) {
	fundPaid := x.st.FundPaidOutpatient.Decimal()
	if x.b.CapPool == rules.PoolInpatient {
		fundPaid = x.st.FundPaidInpatient.Decimal()
	}
	base := f.inscp.Sub(f.dedc)
	f.hifp = decimal.Min(roundHalfUp(base.Mul(f.ratio)), decimal.Max(decimal.Zero, x.ip.AnnualCap[x.b.CapPool].Decimal().Sub(fundPaid)))
}

// refSupplementaryStep is steps 5 (supplementary) and 6 (assistance).
func refSupplementaryStep(t require.TestingT, c *rules.Claim, x refClaimContext, f *refFigures) {
	zero := decimal.Zero
	d := func(m rules.Money) decimal.Decimal { return m.Decimal() }
	ip, st := x.ip, x.st
	f.burden, f.supp, f.maf = zero, zero, zero
	if x.cat != rules.Outpatient {
		f.burden = f.inscp.Sub(f.hifp)
		b0 := d(st.BurdenYTD)
		b1 := b0.Add(f.burden)
		sum := zero
		segs := ip.Supplementary.Segments
		for k, seg := range segs {
			lo, hi := decimal.Max(d(seg.From), b0), b1
			if k+1 < len(segs) {
				hi = decimal.Min(hi, d(segs[k+1].From))
			}
			if hi.GreaterThan(lo) {
				sum = sum.Add(hi.Sub(lo).Mul(seg.Ratio.Decimal()))
			}
		}
		f.supp = decimal.Min(roundHalfUp(sum), decimal.Max(zero, d(ip.Supplementary.AnnualCap).Sub(d(st.SuppPaidYTD))))
		if c.Assistance != "" {
			ratio, ok := x.v.Assistance.Ratios[c.Assistance]
			require.True(t, ok, "assistance %q", c.Assistance)
			f.maf = decimal.Min(roundHalfUp(f.burden.Sub(f.supp).Mul(ratio.Decimal())), decimal.Max(zero, d(x.v.Assistance.AnnualCap).Sub(d(st.MafPaidYTD))))
		}
	}
	f.hifmi, f.hifob = f.supp, zero
	if c.Insutype == "310" {
		f.hifmi, f.hifob = zero, f.supp
	}
}

// refTotalsStep is steps 7 (totals) and 8 (account).
func refTotalsStep(c *rules.Claim, x refClaimContext, f *refFigures) {
	zero := decimal.Zero
	ip := x.ip
	f.fund = f.hifp.Add(f.hifmi).Add(f.hifob).Add(f.maf)
	f.psnPart = f.medfee.Sub(f.fund)
	f.acct = zero
	if c.Insutype == "310" && c.UseAccount && ip.Account.Enabled && (!x.cross || ip.Account.CrossRegion) {
		payable := f.psnPart
		if !ip.Account.CoversFulamt {
			payable = payable.Sub(f.fulamt)
		}
		f.acct = decimal.Min(decimal.Max(zero, payable), x.st.AcctBalc.Decimal())
	}
	f.balc = x.st.AcctBalc.Decimal().Sub(f.acct)
}

// requireSetlinfo compares the settlement figures with the reference's.
func requireSetlinfo(t require.TestingT, f refFigures, s rules.Setlinfo) {
	for _, fld := range []struct {
		name string
		want decimal.Decimal
		got  rules.Money
	}{
		{"medfee_sumamt", f.medfee, s.MedfeeSumamt}, {"fulamt_ownpay_amt", f.fulamt, s.FulamtOwnpayAmt},
		{"overlmt_selfpay", f.over, s.OverlmtSelfpay}, {"preselfpay_amt", f.pre, s.PreselfpayAmt},
		{"inscp_scp_amt", f.inscp, s.InscpScpAmt}, {"act_pay_dedc", f.dedc, s.ActPayDedc}, {"hifp_pay", f.hifp, s.HifpPay},
		{"hifmi_pay", f.hifmi, s.HifmiPay}, {"hifob_pay", f.hifob, s.HifobPay}, {"maf_pay", f.maf, s.MafPay},
		{"fund_pay_sumamt", f.fund, s.FundPaySumamt}, {"psn_part_amt", f.psnPart, s.PsnPartAmt}, {"acct_pay", f.acct, s.AcctPay},
		{"psn_cash_pay", f.psnPart.Sub(f.acct), s.PsnCashPay}, {"balc", f.balc, s.Balc},
	} {
		requireMoney(t, fld.want, fld.got, "setlinfo.%s", fld.name)
	}
	require.True(t, f.ratio.Equal(s.PoolPropSelfpay.Decimal()), "pool_prop_selfpay: reference %s, engine %s", f.ratio, s.PoolPropSelfpay)
}

// requireCountersAfter is step 9: the counters after the claim.
func requireCountersAfter(t require.TestingT, x refClaimContext, f refFigures, a rules.Counters) {
	d := func(m rules.Money) decimal.Decimal { return m.Decimal() }
	st, b, cat := x.st, x.b, x.cat
	want := struct{ dedcOut, dedcChr, fundOut, fundIn, burden, supp, maf decimal.Decimal }{
		d(st.DedcUsedOutpatient), d(st.DedcUsedChronic), d(st.FundPaidOutpatient), d(st.FundPaidInpatient),
		d(st.BurdenYTD), d(st.SuppPaidYTD), d(st.MafPaidYTD).Add(f.maf),
	}
	if b.Deductible.Mode == rules.DeductibleAnnual {
		if cat == rules.Chronic {
			want.dedcChr = want.dedcChr.Add(f.dedc)
		} else {
			want.dedcOut = want.dedcOut.Add(f.dedc)
		}
	}
	if b.CapPool == rules.PoolInpatient {
		want.fundIn = want.fundIn.Add(f.hifp)
	} else {
		want.fundOut = want.fundOut.Add(f.hifp)
	}
	if cat != rules.Outpatient {
		want.burden, want.supp = want.burden.Add(f.burden), want.supp.Add(f.supp)
	}
	requireMoney(t, want.dedcOut, a.DedcUsedOutpatient, "state_after.dedc_used_outpatient")
	requireMoney(t, want.dedcChr, a.DedcUsedChronic, "state_after.dedc_used_chronic")
	requireMoney(t, want.fundOut, a.FundPaidOutpatient, "state_after.fund_paid_outpatient")
	requireMoney(t, want.fundIn, a.FundPaidInpatient, "state_after.fund_paid_inpatient")
	requireMoney(t, want.burden, a.BurdenYTD, "state_after.burden_ytd")
	requireMoney(t, want.supp, a.SuppPaidYTD, "state_after.supp_paid_ytd")
	requireMoney(t, want.maf, a.MafPaidYTD, "state_after.maf_paid_ytd")
	requireMoney(t, f.balc, a.AcctBalc, "state_after.acct_balc")
	admissions := st.Admissions
	if cat == rules.Inpatient {
		admissions++
	}
	require.Equal(t, admissions, a.Admissions, "state_after.admissions")
}

// randomCatalog writes a catalog CSV of n codes with what the real catalogs
// are too tame to have: ratios with four decimals, caps of 0.00 and with odd
// fen, codes with one to three validity windows and gaps between them.
func randomCatalog(r *rand.Rand, n int) (csvText string, codes []string) {
	var b strings.Builder
	b.WriteString("med_list_codg,name,list_type,chrgitm_lv,selfpay_prop,pric_uplmt_amt,valid_from,valid_to\n")
	for i := range n {
		code := fmt.Sprintf("SYN%06d", i)
		codes = append(codes, code)
		// Windows start on the first of a month so that boundary days are easy to draw.
		months := r.Perm(12)[:1+r.IntN(3)]
		sort.Ints(months)
		for w, m := range months {
			from := fmt.Sprintf("2026-%02d-01", m+1)
			to := ""
			switch {
			case w+1 < len(months) && r.IntN(2) == 0:
				to = fmt.Sprintf("2026-%02d-%02d", months[w+1], daysInMonth2026(months[w+1])) // the day before the next window
			case w+1 < len(months):
				to = fmt.Sprintf("2026-%02d-15", m+1) // a gap up to the next window
			case r.IntN(3) == 0:
				to = "2026-12-31"
			}
			level := []string{"01", "02", "03"}[r.IntN(3)]
			prop := decimal.New(r.Int64N(10_001), -4).String()
			cap := ""
			if r.IntN(2) == 0 {
				cap = decimal.New(r.Int64N(1_000_000), -2).StringFixed(2)
			}
			fmt.Fprintf(&b, "%s,synthetic %d,%s,%s,%s,%s,%s,%s\n", code, i, []string{"drug", "service", "material"}[r.IntN(3)],
				level, prop, cap, from, to)
		}
	}
	return b.String(), codes
}

// daysInMonth2026 is the last day of month m (1-based) of 2026; m 0 is taken as January.
func daysInMonth2026(m int) int {
	return [...]int{31, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
}

// Step 1 in fixed point against the decimal re-derivation, line by line,
// through both entrances: PriceLine (decimal text, as the counter interface
// sends it) and Price (decimal.Decimal, as a Go caller gives it). Over the
// real catalogs and over random ones loaded through Load.
func TestLineStepAgreesWithDecimal(t *testing.T) {
	t.Logf("seed %d", propertySeed+2)
	realFiles := realFS(t)
	rs := loadRules(t)
	g := newGen(t, rs, propertySeed+2)

	synth := realFS(t)
	text, codes := randomCatalog(g.r, 300)
	synth["catalogs/150000.csv"] = &fstest.MapFile{Data: []byte(text)}
	synthRS, err := rules.Load(synth)
	require.NoError(t, err, "the random catalog is valid")

	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	for _, set := range []struct {
		name  string
		rs    *rules.RuleSet
		ref   map[string][]refRow
		codes []string
	}{
		{"real catalogs", rs, refCatalogs(t, realFiles), g.codes},
		{"random catalog", synthRS, refCatalogs(t, synth), codes},
	} {
		t.Run(set.name, func(t *testing.T) {
			lg := *g
			lg.rs, lg.codes = set.rs, set.codes
			provinces := make([]string, 0, len(set.rs.Catalogs))
			for p := range set.rs.Catalogs {
				provinces = append(provinces, p)
			}
			sort.Strings(provinces)
			for i := range n {
				prov := provinces[i%len(provinces)]
				if set.name == "random catalog" {
					prov = "150000"
				}
				day := lg.day()
				if g.r.IntN(2) == 0 {
					// Window edges: the first and last day of a month.
					m := 1 + g.r.IntN(12)
					day = rules.Date(20260000 + m*100 + []int{1, daysInMonth2026(m)}[g.r.IntN(2)])
				}
				cat := set.rs.Catalogs[prov]
				ln := lg.line(fmt.Sprint(i+1), cat, day)
				want := refLine(set.ref[prov], dayText(day), ln)

				got, err := rules.PriceLine(cat, day, ln.SN, ln.Code, ln.Cnt.String(), ln.Pric.String(), ln.Amount.StringFixed(2))
				require.NoError(t, err)
				requireLine(t, want, got, ln)

				// One fen off either way is not ROUND(cnt*pric).
				for _, delta := range []int64{1, -1} {
					amt := ln.Amount.Add(decimal.New(delta, -2))
					if amt.IsNegative() {
						continue
					}
					_, err := rules.PriceLine(cat, day, ln.SN, ln.Code, ln.Cnt.String(), ln.Pric.String(), amt.StringFixed(2))
					var re *rules.Error
					require.ErrorAs(t, err, &re)
					require.Equal(t, rules.CodeAmountMismatch, re.Code, "%s x %s = %s", ln.Cnt, ln.Pric, amt)
				}
			}
		})
	}

	// Whole claims over the random catalog: the Decimal entrance and every
	// later step, against the reference.
	ref := refCatalogs(t, synth)
	cg := *g
	cg.rs, cg.codes = synthRS, codes
	var hospitals []*rules.Institution
	for _, in := range g.insts {
		if synthRS.Province(in.Admdvs) == "150000" {
			hospitals = append(hospitals, in)
		}
	}
	cg.insts = hospitals
	for i := range n / 4 {
		c := cg.claim()
		res, err := synthRS.Price(c)
		require.NoError(t, err, "claim %d", i)
		requireIdentities(t, c, res)
		requireReference(t, synthRS, ref, c, res)
	}
}

// The engine's own figures for the worked cases agree with the reference too,
// which ties the reference to the spec's answers.
func TestReferenceAgreesOnGoldenCases(t *testing.T) {
	rs := loadRules(t)
	ref := refCatalogs(t, realFS(t))
	priced := 0
	for _, g := range goldenCases(t) {
		if expectedCode(t, g) != "" {
			continue
		}
		req, err := rules.DecodeRequest(strings.NewReader(string(g.Request)))
		require.NoError(t, err)
		c := req.Claim()
		res, err := rs.Price(c)
		require.NoError(t, err, g.Name)
		requireReference(t, rs, ref, c, res)
		priced++
	}
	require.Equal(t, 35, priced)
}

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

// priceChecked prices c and checks the answer: a documented refusal (then it
// returns nil) or a result that requirePriced accepts.
func priceChecked(t *testing.T, rs *rules.RuleSet, c *rules.Claim) *rules.Result {
	res, err := rs.Price(c)
	if err != nil {
		requireRefusal(t, err)
		return nil
	}
	requirePriced(t, rs, c, res)
	return res
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
		if res := priceChecked(t, rs, c); res != nil {
			requireReference(t, rs, ref, c, res)
		}
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
			priceChecked(t, rs, req.Claim())
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
