package console

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Day returns midnight at the counter of a yyyy-mm-dd date.
func Day(s string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", s, rules.CST)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (yyyy-mm-dd)", s)
	}
	return t, nil
}

// PeriodBounds returns a month's [start, end) at the counter.
func PeriodBounds(p settlement.Period) (time.Time, time.Time) {
	end := p.End()
	return end.AddDate(0, -1, 0), end
}

// FormatMoney writes an amount with thousands separators: "-1,234,567.89".
func FormatMoney(m rules.Money) string {
	s := m.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// MedTypeNames name the med_types of the national interface.
var MedTypeNames = map[string]string{
	"11": "普通门诊 outpatient",
	"14": "门诊慢特病 chronic outpatient",
	"21": "住院 inpatient",
	"41": "定点药店购药 pharmacy",
}

func medTypeName(code string) string {
	if n := MedTypeNames[code]; n != "" {
		return n
	}
	return code
}

func (h *Handler) instName(code string) string { return instName(h.cfg.Rules, code) }

func instName(rs *rules.RuleSet, code string) string {
	if rs != nil {
		if in := rs.Institutions[code]; in != nil {
			return in.Name
		}
	}
	return ""
}

func regionName(rs *rules.RuleSet, code string) string {
	if rs != nil {
		if r := rs.Regions[code]; r != nil {
			return r.Name + " " + r.NameEn
		}
	}
	switch code {
	case "150000":
		return "内蒙古自治区 Inner Mongolia"
	case "420000":
		return "湖北省 Hubei"
	case "230000":
		return "黑龙江省 Heilongjiang"
	}
	return ""
}

func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"money":    FormatMoney,
		"medtype":  medTypeName,
		"inst":     h.instName,
		"region":   func(c string) string { return regionName(h.cfg.Rules, c) },
		"province": rules.ProvinceOf,
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(rules.CST).Format("2006-01-02 15:04:05")
		},
		"date": func(t time.Time) string { return t.In(rules.CST).Format("2006-01-02") },
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12] + "…"
			}
			return s
		},
		"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
		"add": func(a, b int) int { return a + b },
		"neg": func(m rules.Money) bool { return m < 0 },
	}
}

// Chart is a horizontal bar chart drawn as SVG by the template: no script,
// no image requests.
type Chart struct {
	Title  string
	Width  int
	Height int
	LabelX int // right edge of the labels
	BarX   int // left edge of the bars
	Bars   []Bar
}

// Bar is one bar of a chart, laid out.
type Bar struct {
	Label  string
	Value  string
	Y      int // top of the row
	W      int // bar length in px (0 for a non-positive value)
	TextY  int
	ValueX int // where the value is written, after the bar
}

const (
	chartLabelW = 330
	chartBarW   = 360
	chartRow    = 26
)

// NewChart lays out bars for values; negative values draw no bar.
func NewChart(title string, labels []string, values []rules.Money) Chart {
	c := Chart{Title: title, Width: chartLabelW + chartBarW + 130, Height: len(values)*chartRow + 8,
		LabelX: chartLabelW - 6, BarX: chartLabelW}
	var max rules.Money
	for _, v := range values {
		if v > max {
			max = v
		}
	}
	for i, v := range values {
		b := Bar{Label: labels[i], Value: FormatMoney(v), Y: 4 + i*chartRow, TextY: 4 + i*chartRow + 17}
		if v > 0 && max > 0 {
			b.W = int(int64(v) * chartBarW / int64(max))
			if b.W == 0 {
				b.W = 1
			}
		}
		b.ValueX = chartLabelW + b.W + 6
		c.Bars = append(c.Bars, b)
	}
	return c
}

// Group is a labelled row of sums.
type Group struct {
	Key   string
	Label string
	settlement.Sums
}

// groupBy rolls rows up by key, sorted by key.
func groupBy(rows []settlement.BureauTotalsRow, key func(settlement.BureauTotalsRow) string, label func(string) string) ([]Group, settlement.Sums) {
	by := map[string]*Group{}
	var total settlement.Sums
	for _, r := range rows {
		k := key(r)
		g := by[k]
		if g == nil {
			g = &Group{Key: k, Label: label(k)}
			by[k] = g
		}
		g.Add(r.Sums)
		total.Add(r.Sums)
	}
	out := make([]Group, 0, len(by))
	for _, g := range by {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, total
}

// FundLine is one fund's expenditure.
type FundLine struct {
	Key    string
	Label  string
	Amount rules.Money
}

// Funds splits sums into what each fund (and the account and cash) paid.
func Funds(s settlement.Sums) []FundLine {
	return []FundLine{
		{"basic", "统筹基金 basic pool (hifp_pay)", s.Hifp},
		{"hifmi", "大病保险 critical illness (hifmi_pay)", s.Hifmi},
		{"hifob", "大额补充 large-amount supplement (hifob_pay)", s.Hifob},
		{"maf", "医疗救助 medical assistance (maf_pay)", s.Maf},
		{"acct", "个人账户 personal account (acct_pay)", s.Acct},
		{"cash", "个人现金 cash at the counter (psn_cash_pay)", s.Cash},
	}
}

func fundChart(title string, s settlement.Sums) Chart {
	var labels []string
	var values []rules.Money
	for _, f := range Funds(s) {
		labels = append(labels, f.Label)
		values = append(values, f.Amount)
	}
	return NewChart(title, labels, values)
}

func groupChart(title string, gs []Group, value func(settlement.Sums) rules.Money, max int) Chart {
	gs = append([]Group(nil), gs...)
	sort.SliceStable(gs, func(i, j int) bool { return value(gs[i].Sums) > value(gs[j].Sums) })
	if len(gs) > max {
		gs = gs[:max]
	}
	var labels []string
	var values []rules.Money
	for _, g := range gs {
		l := g.Key
		if g.Label != "" {
			l = g.Key + " " + g.Label
		}
		if r := []rune(l); len(r) > 40 {
			l = string(r[:39]) + "…"
		}
		labels = append(labels, l)
		values = append(values, value(g.Sums))
	}
	return NewChart(title, labels, values)
}
