package rules_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

// gen draws random but valid claims over the real rules.
type gen struct {
	r     *rand.Rand
	rs    *rules.RuleSet
	insts []*rules.Institution
	codes []string
}

func newGen(t testing.TB, seed uint64) *gen {
	rs := loadRules(t)
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), rs: rs}
	for _, in := range rs.Institutions {
		g.insts = append(g.insts, in)
	}
	sort.Slice(g.insts, func(i, j int) bool { return g.insts[i].Code < g.insts[j].Code })
	seen := map[string]bool{}
	for _, c := range []string{"XA02BCA211A001010101234", "XJ01DDA062B002010100345", "XL01XCR096B001010100789",
		"001101000010000", "001102000010000", "002302000010000", "002303000010000", "003311000010000",
		"001103000010000", "C0303010000000001234", "C1001020000000005678", "C0101020000000009012",
		"ZB01BAA0456010101010", "XN05CFZ031B001010100333", "UNKNOWN0000001"} {
		if !seen[c] {
			g.codes = append(g.codes, c)
			seen[c] = true
		}
	}
	return g
}

func (g *gen) money(max int64) rules.Money { return rules.Money(g.r.Int64N(max)) }

func (g *gen) claim() *rules.Claim {
	in := g.insts[g.r.IntN(len(g.insts))]
	regions := []string{"150100", "150200", "420100", "420500", "230100", "230200"}
	medType := "41"
	if in.Kind == rules.KindHospital {
		medType = []string{"11", "14", "21"}[g.r.IntN(3)]
	}
	c := &rules.Claim{
		InsuredRegion: regions[g.r.IntN(len(regions))], Institution: in.Code, MedType: medType,
		SetlDate: rules.Date(20260100 + (1+g.r.IntN(12))*100 + 1 + g.r.IntN(28)), Insutype: []string{"310", "390"}[g.r.IntN(2)],
		Retired: g.r.IntN(2) == 0, Registered: g.r.IntN(2) == 0, Assistance: []string{"", "", "dibao", "tekun"}[g.r.IntN(4)],
		UseAccount: g.r.IntN(3) > 0,
	}
	// Counters, some of them at or near their caps.
	near := func(limit int64) rules.Money {
		switch g.r.IntN(3) {
		case 0:
			return 0
		case 1:
			return rules.Money(g.r.Int64N(limit * 100))
		}
		return rules.Money(limit*100 - g.r.Int64N(50000))
	}
	c.State = rules.Counters{DedcUsedOutpatient: near(1000), DedcUsedChronic: near(500), FundPaidOutpatient: near(5000),
		FundPaidInpatient: near(300000), BurdenYTD: near(150000), SuppPaidYTD: near(400000), MafPaidYTD: near(50000),
		AcctBalc: g.money(1000000), Admissions: g.r.IntN(3)}
	for _, p := range []*rules.Money{&c.State.DedcUsedOutpatient, &c.State.DedcUsedChronic, &c.State.FundPaidOutpatient,
		&c.State.FundPaidInpatient, &c.State.BurdenYTD, &c.State.SuppPaidYTD, &c.State.MafPaidYTD} {
		if *p < 0 {
			*p = 0
		}
	}
	n := 1 + g.r.IntN(15)
	for i := 0; i < n; i++ {
		c.Lines = append(c.Lines, g.line(fmt.Sprint(i+1)))
	}
	return c
}

// line draws cnt and pric with up to 4 decimals and the amount that matches.
func (g *gen) line(sn string) rules.Line {
	cnt := decimal.New(1+g.r.Int64N(200000), -int32(g.r.IntN(5)))
	pric := decimal.New(g.r.Int64N(5000000), -int32(g.r.IntN(5)))
	amt := cnt.Mul(pric).Round(2)
	return rules.Line{SN: sn, Code: g.codes[g.r.IntN(len(g.codes))], Cnt: cnt, Pric: pric, Amount: amt}
}

// capsOf returns the caps a claim's counters must respect.
func capsOf(t *testing.T, rs *rules.RuleSet, c *rules.Claim) (fund [2]rules.Money, supp, maf rules.Money) {
	v := rs.Regions[c.InsuredRegion].InForce(c.SetlDate)
	ip := v.Insutypes[c.Insutype]
	return ip.AnnualCap, ip.Supplementary.AnnualCap, v.Assistance.AnnualCap
}

// PRICING.md's invariants hold for every claim: amounts never negative, the
// split adds up, caps are never passed, the same claim prices the same.
func TestPricingInvariants(t *testing.T) {
	seed := uint64(20261122)
	t.Logf("seed %d", seed)
	g := newGen(t, seed)
	priced := 0
	for i := 0; i < 20000; i++ {
		c := g.claim()
		res, err := g.rs.Price(c)
		if err != nil {
			var re *rules.Error
			require.ErrorAs(t, err, &re)
			require.Contains(t, []string{rules.CodeNoPolicy, rules.CodeInvalidMedType, rules.CodeInvalidAmount}, re.Code, re.Message)
			continue
		}
		priced++
		s := res.Setlinfo
		for _, m := range []rules.Money{s.MedfeeSumamt, s.FulamtOwnpayAmt, s.OverlmtSelfpay, s.PreselfpayAmt, s.InscpScpAmt,
			s.ActPayDedc, s.HifpPay, s.HifmiPay, s.HifobPay, s.MafPay, s.FundPaySumamt, s.PsnPartAmt, s.AcctPay, s.PsnCashPay, s.Balc} {
			require.GreaterOrEqual(t, m, rules.Money(0), "claim %d: %+v", i, s)
		}
		require.Equal(t, s.MedfeeSumamt, s.FulamtOwnpayAmt+s.OverlmtSelfpay+s.PreselfpayAmt+s.InscpScpAmt)
		require.Equal(t, s.MedfeeSumamt, s.FundPaySumamt+s.AcctPay+s.PsnCashPay)
		require.Equal(t, s.FundPaySumamt, s.HifpPay+s.HifmiPay+s.HifobPay+s.MafPay)
		for _, l := range res.Lines {
			require.Equal(t, l.Amount, l.Fulamt+l.Over+l.Pre+l.Inscp)
			require.GreaterOrEqual(t, l.Inscp, rules.Money(0))
		}
		fund, supp, maf := capsOf(t, g.rs, c)
		a, b := c.State, res.After
		for p, before := range []rules.Money{a.FundPaidOutpatient, a.FundPaidInpatient} {
			after := []rules.Money{b.FundPaidOutpatient, b.FundPaidInpatient}[p]
			if before <= fund[p] {
				require.LessOrEqual(t, after, fund[p], "fund cap")
			} else {
				require.Equal(t, before, after, "a cap already passed pays nothing more")
			}
		}
		if a.SuppPaidYTD <= supp {
			require.LessOrEqual(t, b.SuppPaidYTD, supp, "supplementary cap")
		}
		if a.MafPaidYTD <= maf {
			require.LessOrEqual(t, b.MafPaidYTD, maf, "assistance cap")
		}
		require.Equal(t, a.AcctBalc-s.AcctPay, b.AcctBalc)
		require.GreaterOrEqual(t, b.AcctBalc, rules.Money(0))

		again, err := g.rs.Price(c)
		require.NoError(t, err)
		require.Equal(t, res, again, "pricing is a function of the claim")

		// Totals do not depend on the order of the lines.
		sh := *c
		sh.Lines = append([]rules.Line(nil), c.Lines...)
		g.r.Shuffle(len(sh.Lines), func(i, j int) { sh.Lines[i], sh.Lines[j] = sh.Lines[j], sh.Lines[i] })
		shuffled, err := g.rs.Price(&sh)
		require.NoError(t, err)
		require.Equal(t, res.Setlinfo, shuffled.Setlinfo)
		require.Equal(t, res.After, shuffled.After)
	}
	require.Greater(t, priced, 10000)
}

// A person's year, claim after claim, each claim's counters after feeding
// the next: no cap is ever passed and the account never goes negative.
func TestAYearOfClaimsNeverPassesACap(t *testing.T) {
	g := newGen(t, 7)
	for person := 0; person < 200; person++ {
		c := g.claim()
		c.State = rules.Counters{AcctBalc: g.money(800000)}
		for day := 1; day <= 60; day++ {
			next := g.claim()
			next.InsuredRegion, next.Insutype, next.Retired, next.Assistance = c.InsuredRegion, c.Insutype, c.Retired, c.Assistance
			next.SetlDate = rules.Date(20260101 + (day/28)*100 + day%28)
			next.State = c.State
			res, err := g.rs.Price(next)
			if err != nil {
				continue
			}
			fund, supp, maf := capsOf(t, g.rs, next)
			require.LessOrEqual(t, res.After.FundPaidOutpatient, fund[0])
			require.LessOrEqual(t, res.After.FundPaidInpatient, fund[1])
			require.LessOrEqual(t, res.After.SuppPaidYTD, supp)
			require.LessOrEqual(t, res.After.MafPaidYTD, maf)
			require.GreaterOrEqual(t, res.After.AcctBalc, rules.Money(0))
			c.State = res.After
		}
	}
}

// The fixed-point line step agrees with a plain re-derivation in
// shopspring/decimal, line by line (ROUND = half up to the fen).
func TestLineStepAgreesWithDecimal(t *testing.T) {
	g := newGen(t, 11)
	cat := g.rs.Catalogs["150000"]
	round := func(d decimal.Decimal) rules.Money {
		m, err := rules.MoneyFromDecimal(d.Round(2))
		require.NoError(t, err)
		return m
	}
	for i := 0; i < 50000; i++ {
		l := g.line("1")
		got, err := rules.PriceLine(cat, 20260315, "1", l.Code, l.Cnt.String(), l.Pric.String(), l.Amount.StringFixed(2))
		require.NoError(t, err)
		amt := l.Amount
		var fulamt, over, pre decimal.Decimal
		it := cat.Lookup(l.Code, 20260315)
		switch {
		case it == nil || it.Level == rules.LevelC:
			fulamt = amt
		default:
			if it.HasCap && l.Pric.GreaterThan(it.PriceCap.Decimal()) {
				over = l.Pric.Sub(it.PriceCap.Decimal()).Mul(l.Cnt).Round(2)
			}
			if it.Level == rules.LevelB {
				pre = amt.Sub(over).Mul(it.SelfpayProp.Decimal()).Round(2)
			}
		}
		inscp := amt.Sub(fulamt).Sub(over).Sub(pre)
		require.Equal(t, round(fulamt), got.Fulamt, "line %+v", l)
		require.Equal(t, round(over), got.Over, "line %+v", l)
		require.Equal(t, round(pre), got.Pre, "line %+v", l)
		require.Equal(t, round(inscp), got.Inscp, "line %+v", l)
	}
}
