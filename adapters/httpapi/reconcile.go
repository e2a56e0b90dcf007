package httpapi

import (
	"strconv"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// --- 3201 / 3202 ---

func periodOf(c *call, d fsi.StmtData) (settlement.PeriodQuery, error) {
	q := settlement.PeriodQuery{Institution: c.env.FixmedinsCode, Insutype: d.Insutype, ClrType: d.ClrType}
	var err error
	if err := required("input.data.stmt_begndate", d.StmtBegndate, "input.data.stmt_enddate", d.StmtEnddate); err != nil {
		return q, err
	}
	if q.From, err = rules.ParseDate(d.StmtBegndate); err != nil {
		return q, refuse("input.data.stmt_begndate: %v", err)
	}
	if q.To, err = rules.ParseDate(d.StmtEnddate); err != nil {
		return q, refuse("input.data.stmt_enddate: %v", err)
	}
	if q.To < q.From {
		return q, refuse("input.data.stmt_enddate %s is before stmt_begndate %s", q.To, q.From)
	}
	switch q.ClrType {
	case "", "11", "14", "21", "41":
	default:
		return q, refuse("input.data.clr_type %q: want 11, 14, 21 or 41", q.ClrType)
	}
	return q, nil
}

func reconcileTotals(s *Server, c *call) (any, error) {
	var in fsi.TotalsInput
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	d := in.Data
	q, err := periodOf(c, d)
	if err != nil {
		return nil, err
	}
	var his settlement.Totals
	for _, f := range []struct {
		path string
		t    fsi.Text
		dst  *rules.Money
	}{{"input.data.medfee_sumamt", d.MedfeeSumamt, &his.MedfeeSumamt}, {"input.data.fund_pay_sumamt", d.FundPaySumamt, &his.FundPaySumamt},
		{"input.data.acct_pay", d.AcctPay, &his.AcctPay}} {
		if err := checkAmountText(f.path, f.t); err != nil {
			return nil, err
		}
		*f.dst, _ = rules.ParseMoney(f.t.S)
	}
	n, err := strconv.Atoi(d.FixmedinsSetlCnt.S)
	if err != nil || n < 0 {
		return nil, refuse("input.data.fixmedins_setl_cnt %q is not a count", d.FixmedinsSetlCnt.S)
	}
	his.Count = n
	r, err := s.Engine.ReconcileTotals(c.ctx, q, his)
	if err != nil {
		return nil, err
	}
	p := r.Platform
	return fsi.TotalsOutput{Stmtinfo: fsi.Stmtinfo{SetlOptins: r.SetlOptins, StmtRslt: r.Result, StmtRsltDscr: r.Dscr,
		Platform: fsi.StmtTotals{MedfeeSumamt: fsi.Money(p.MedfeeSumamt), FundPaySumamt: fsi.Money(p.FundPaySumamt),
			AcctPay: fsi.Money(p.AcctPay), FixmedinsSetlCnt: p.Count}}}, nil
}

func reconcileDetails(s *Server, c *call) (any, error) {
	var in struct {
		Data   fsi.StmtData `json:"data"`
		Detail []struct {
			SetlID        string   `json:"setl_id"`
			MdtrtID       string   `json:"mdtrt_id"`
			PsnNo         string   `json:"psn_no"`
			MedfeeSumamt  fsi.Text `json:"medfee_sumamt"`
			FundPaySumamt fsi.Text `json:"fund_pay_sumamt"`
			AcctPay       fsi.Text `json:"acct_pay"`
			RefdSetlFlag  string   `json:"refd_setl_flag"`
		} `json:"detail"`
	}
	if err := decodeInput(c.env.Input, &in); err != nil {
		return nil, err
	}
	q, err := periodOf(c, in.Data)
	if err != nil {
		return nil, err
	}
	rows := make([]settlement.DetailRow, len(in.Detail))
	for i, d := range in.Detail {
		p := "input.detail[" + strconv.Itoa(i) + "]."
		if err := required(p+"setl_id", d.SetlID); err != nil {
			return nil, err
		}
		if d.RefdSetlFlag != "" && d.RefdSetlFlag != "0" && d.RefdSetlFlag != "1" {
			return nil, refuse("%srefd_setl_flag %q: want 0 or 1", p, d.RefdSetlFlag)
		}
		r := settlement.DetailRow{SetlID: d.SetlID, MdtrtID: d.MdtrtID, PsnNo: d.PsnNo, RefdSetlFlag: d.RefdSetlFlag}
		for _, f := range []struct {
			name string
			t    fsi.Text
			dst  *rules.Money
		}{{"medfee_sumamt", d.MedfeeSumamt, &r.MedfeeSumamt}, {"fund_pay_sumamt", d.FundPaySumamt, &r.FundPaySumamt}, {"acct_pay", d.AcctPay, &r.AcctPay}} {
			if err := checkAmountText(p+f.name, f.t); err != nil {
				return nil, err
			}
			*f.dst, _ = rules.ParseMoney(f.t.S)
		}
		rows[i] = r
	}
	diffs, err := s.Engine.ReconcileDetails(c.ctx, q, rows)
	if err != nil {
		return nil, err
	}
	if diffs == nil {
		diffs = []settlement.Difference{}
	}
	return map[string]any{"result": diffs}, nil
}

// --- 5206 ---

func cumulative(s *Server, c *call) (any, error) {
	var in struct {
		Data struct {
			PsnNo string `json:"psn_no"`
			CumYm string `json:"cum_ym"`
		} `json:"data"`
	}
	d := &in.Data
	if err := decodeRequired(c, &in, need{"input.data.psn_no", &d.PsnNo}); err != nil {
		return nil, err
	}
	year := s.now().In(rules.CST).Year()
	if d.CumYm != "" {
		t, err := time.Parse("200601", d.CumYm)
		if err != nil {
			return nil, refuse("input.data.cum_ym %q is not yyyyMM", d.CumYm)
		}
		year = t.Year()
	}
	if c.who.IsBureau() {
		pi, err := s.Engine.FindPerson(c.ctx, "01", d.PsnNo)
		if err != nil {
			return nil, err
		}
		if pi.Person.InsuredRegion != c.who.Region {
			return nil, refuse("input.data.psn_no %s is not insured in region %s", d.PsnNo, c.who.Region)
		}
	}
	cnt, err := s.Engine.YearCountersOf(c.ctx, d.PsnNo, year)
	if err != nil {
		return nil, err
	}
	return map[string]any{"cuminfo": map[string]any{"psn_no": d.PsnNo, "year": year, "counters": cnt}}, nil
}
