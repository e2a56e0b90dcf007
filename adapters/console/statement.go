package console

import (
	"context"
	"embed"
	"encoding/csv"
	"html/template"
	"io"
	"strconv"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Statement is a bureau's monthly statement (月度结算报表): what the region's
// funds paid, by fund and med_type; what other provinces owe it and what it
// owes them for cross-province care; and what each of its institutions
// billed. Amounts are net of cancellations (a reversal counts in the month
// it was made), as in the ledger.
type Statement struct {
	Region     string
	RegionName string
	Period     settlement.Period
	From, To   time.Time
	Generated  time.Time

	// Insured: persons insured in the region, wherever treated.
	Insured   settlement.Sums
	ByMedType []Group
	Funds     []FundLine
	// Receivables: care at the region's institutions of persons insured in
	// another province (owed: funds + account). Payables: the reverse.
	Receivables, Payables []Group
	ReceivableTotal       settlement.Sums
	PayableTotal          settlement.Sums
	// Institutions: what the region's institutions billed, whoever the person.
	Institutions []Group
	Treated      settlement.Sums
}

// BuildStatement reads a region's month.
func BuildStatement(ctx context.Context, rd settlement.BureauReads, rs *rules.RuleSet, region string, period settlement.Period, now time.Time) (*Statement, error) {
	from, to := PeriodBounds(period)
	t, err := rd.ConsoleTotals(ctx, region, from, to, ClosedBefore(now))
	if err != nil {
		return nil, err
	}
	st := &Statement{Region: region, RegionName: regionName(rs, region), Period: period, From: from, To: to, Generated: now}
	st.ByMedType, st.Insured = groupBy(t.Insured, func(r settlement.BureauTotalsRow) string { return r.MedType }, medTypeName)
	st.Funds = Funds(st.Insured)
	st.Institutions, st.Treated = groupBy(t.Treated, func(r settlement.BureauTotalsRow) string { return r.Institution }, func(c string) string { return instName(rs, c) })
	own := rules.ProvinceOf(region)
	var rec, pay []settlement.BureauTotalsRow
	for _, r := range t.Treated {
		if rules.ProvinceOf(r.InsuredRegion) != own {
			rec = append(rec, r)
		}
	}
	for _, r := range t.Insured {
		if rules.ProvinceOf(r.TreatmentRegion) != own {
			pay = append(pay, r)
		}
	}
	label := func(c string) string { return regionName(rs, c) }
	st.Receivables, st.ReceivableTotal = groupBy(rec, func(r settlement.BureauTotalsRow) string { return rules.ProvinceOf(r.InsuredRegion) }, label)
	st.Payables, st.PayableTotal = groupBy(pay, func(r settlement.BureauTotalsRow) string { return rules.ProvinceOf(r.TreatmentRegion) }, label)
	return st, nil
}

// csvHeader are the statement's columns: one section per kind of row.
var csvHeader = []string{"section", "code", "name", "count", "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifmi_pay",
	"hifob_pay", "maf_pay", "acct_pay", "psn_cash_pay", "owed"}

func csvRow(section, code, name string, s settlement.Sums) []string {
	return []string{section, code, name, strconv.FormatInt(s.Count, 10), s.Medfee.String(), s.Fund.String(), s.Hifp.String(),
		s.Hifmi.String(), s.Hifob.String(), s.Maf.String(), s.Acct.String(), s.Cash.String(), s.Owed().String()}
}

// WriteCSV writes the statement as CSV (UTF-8, amounts as plain decimals).
func (st *Statement) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"# medsettle monthly statement", "region " + st.Region, st.RegionName, "period " + string(st.Period),
		"from " + st.From.Format(time.RFC3339), "to " + st.To.Format(time.RFC3339), "generated " + st.Generated.In(rules.CST).Format(time.RFC3339)})
	_ = cw.Write(csvHeader)
	for _, g := range st.ByMedType {
		_ = cw.Write(csvRow("fund_by_med_type", g.Key, g.Label, g.Sums))
	}
	_ = cw.Write(csvRow("fund_total", "", "persons insured in "+st.Region, st.Insured))
	for _, f := range st.Funds {
		_ = cw.Write([]string{"fund", f.Key, f.Label, "", "", "", "", "", "", "", "", "", f.Amount.String()})
	}
	for _, g := range st.Receivables {
		_ = cw.Write(csvRow("receivable", g.Key, g.Label, g.Sums))
	}
	_ = cw.Write(csvRow("receivable_total", "", "", st.ReceivableTotal))
	for _, g := range st.Payables {
		_ = cw.Write(csvRow("payable", g.Key, g.Label, g.Sums))
	}
	_ = cw.Write(csvRow("payable_total", "", "", st.PayableTotal))
	for _, g := range st.Institutions {
		_ = cw.Write(csvRow("institution", g.Key, g.Label, g.Sums))
	}
	_ = cw.Write(csvRow("institution_total", "", "institutions of "+st.Region, st.Treated))
	cw.Flush()
	return cw.Error()
}

//go:embed report/statement.html
var reportFS embed.FS

var statementTmpl = template.Must(template.New("statement.html").Funcs(template.FuncMap{
	"money":   FormatMoney,
	"medtype": medTypeName,
	"ts":      func(t time.Time) string { return t.In(rules.CST).Format("2006-01-02 15:04:05") },
	"date":    func(t time.Time) string { return t.In(rules.CST).Format("2006-01-02") },
	"lastday": func(t time.Time) string { return t.Add(-time.Second).In(rules.CST).Format("2006-01-02") },
}).ParseFS(reportFS, "report/statement.html"))

// WriteHTML writes the statement as a printable page (A4, print styles; a
// browser's "print to PDF" makes the PDF).
func (st *Statement) WriteHTML(w io.Writer) error {
	return statementTmpl.Execute(w, st)
}
