package settlement

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// Reconciliation (对账) compares what an institution's HIS recorded with the
// platform's settlements of a period. A settlement counts while it stands: a
// cancelled one (and its reversal) is left out of totals, and appears in the
// detail rows with refd_setl_flag "1".

// PeriodQuery selects an institution's settlements by settlement date (at the counter).
type PeriodQuery struct {
	Institution string
	From, To    rules.Date // inclusive
	Insutype    string     // "" = all
	ClrType     string     // "" = all; else the med_type category code: 11 outpatient, 14 chronic, 21 inpatient, 41 pharmacy
}

// Bounds returns the period as [start, end) instants.
func (q PeriodQuery) Bounds() (time.Time, time.Time) {
	start := time.Date(q.From.Year(), time.Month(int(q.From)/100%100), int(q.From)%100, 0, 0, 0, 0, rules.CST)
	end := time.Date(q.To.Year(), time.Month(int(q.To)/100%100), int(q.To)%100, 0, 0, 0, 0, rules.CST).AddDate(0, 0, 1)
	return start, end
}

func (q PeriodQuery) keep(s *Settlement) bool {
	return s.Reverses == "" && (q.Insutype == "" || q.Insutype == s.Insutype) && (q.ClrType == "" || q.ClrType == s.MedType)
}

// Totals are the sums 3201 compares.
type Totals struct {
	MedfeeSumamt  rules.Money `json:"medfee_sumamt"`
	FundPaySumamt rules.Money `json:"fund_pay_sumamt"`
	AcctPay       rules.Money `json:"acct_pay"`
	Count         int         `json:"fixmedins_setl_cnt"`
}

// TotalsResult is the answer of 3201.
type TotalsResult struct {
	SetlOptins string `json:"setl_optins"`
	Result     string `json:"stmt_rslt"` // "0" match, "1" mismatch
	Dscr       string `json:"stmt_rslt_dscr"`
	Platform   Totals `json:"platform"`
}

// ReconcileTotals compares an institution's claimed totals with the platform's.
// Any caller entitled to the institution may ask; nothing is written.
func (e *Engine) ReconcileTotals(ctx context.Context, q PeriodQuery, his Totals) (TotalsResult, error) {
	var out TotalsResult
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		ss, err := tx.SettlementsOf(ctx, q)
		if err != nil {
			return err
		}
		var p Totals
		for i := range ss {
			s := &ss[i]
			if !q.keep(s) || s.Status != Settled {
				continue
			}
			p.MedfeeSumamt += s.Info.MedfeeSumamt
			p.FundPaySumamt += s.Info.FundPaySumamt
			p.AcctPay += s.Info.AcctPay
			p.Count++
		}
		out = TotalsResult{SetlOptins: q.Institution, Platform: p, Result: "0", Dscr: "totals match"}
		if p != his {
			out.Result = "1"
			out.Dscr = fmt.Sprintf("mismatch: platform medfee_sumamt %s fund_pay_sumamt %s acct_pay %s count %d; HIS medfee_sumamt %s fund_pay_sumamt %s acct_pay %s count %d",
				p.MedfeeSumamt, p.FundPaySumamt, p.AcctPay, p.Count, his.MedfeeSumamt, his.FundPaySumamt, his.AcctPay, his.Count)
		}
		return nil
	})
	return out, err
}

// DetailRow is one settlement as the HIS or the platform has it (3202).
type DetailRow struct {
	SetlID        string      `json:"setl_id"`
	MdtrtID       string      `json:"mdtrt_id"`
	PsnNo         string      `json:"psn_no"`
	MedfeeSumamt  rules.Money `json:"medfee_sumamt"`
	FundPaySumamt rules.Money `json:"fund_pay_sumamt"`
	AcctPay       rules.Money `json:"acct_pay"`
	RefdSetlFlag  string      `json:"refd_setl_flag"` // "1": cancelled
}

// Difference is one row that differs, with its reason.
type Difference struct {
	DetailRow
	Result string `json:"stmt_rslt"` // "1" HIS only, "2" platform only, "3" amounts or status differ
	Memo   string `json:"memo"`
}

// Detail comparison results.
const (
	DiffHISOnly      = "1"
	DiffPlatformOnly = "2"
	DiffAmounts      = "3"
)

// ReconcileDetails compares an institution's rows with the platform's and
// returns every row that differs, in setl_id order.
func (e *Engine) ReconcileDetails(ctx context.Context, q PeriodQuery, his []DetailRow) ([]Difference, error) {
	var out []Difference
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		ss, err := tx.SettlementsOf(ctx, q)
		if err != nil {
			return err
		}
		platform := map[string]DetailRow{}
		for i := range ss {
			s := &ss[i]
			if !q.keep(s) {
				continue
			}
			flag := "0"
			if s.Status == Cancelled {
				flag = "1"
			}
			platform[s.SetlID] = DetailRow{SetlID: s.SetlID, MdtrtID: s.MdtrtID, PsnNo: s.PsnNo,
				MedfeeSumamt: s.Info.MedfeeSumamt, FundPaySumamt: s.Info.FundPaySumamt, AcctPay: s.Info.AcctPay, RefdSetlFlag: flag}
		}
		out = diffDetails(his, platform)
		return nil
	})
	return out, err
}

func diffDetails(his []DetailRow, platform map[string]DetailRow) []Difference {
	var out []Difference
	seen := map[string]bool{}
	for _, h := range his {
		if h.RefdSetlFlag == "" {
			h.RefdSetlFlag = "0"
		}
		seen[h.SetlID] = true
		p, ok := platform[h.SetlID]
		switch {
		case !ok:
			out = append(out, Difference{DetailRow: h, Result: DiffHISOnly, Memo: "in the HIS only: the platform has no such settlement in the period"})
		case p.RefdSetlFlag != h.RefdSetlFlag:
			out = append(out, Difference{DetailRow: p, Result: DiffAmounts, Memo: fmt.Sprintf("refd_setl_flag: platform %s, HIS %s", p.RefdSetlFlag, h.RefdSetlFlag)})
		case p.MedfeeSumamt != h.MedfeeSumamt || p.FundPaySumamt != h.FundPaySumamt || p.AcctPay != h.AcctPay || p.MdtrtID != h.MdtrtID || p.PsnNo != h.PsnNo:
			out = append(out, Difference{DetailRow: p, Result: DiffAmounts, Memo: fmt.Sprintf(
				"differs: platform medfee %s fund %s acct %s, HIS medfee %s fund %s acct %s",
				p.MedfeeSumamt, p.FundPaySumamt, p.AcctPay, h.MedfeeSumamt, h.FundPaySumamt, h.AcctPay)})
		}
	}
	for id, p := range platform {
		if !seen[id] {
			out = append(out, Difference{DetailRow: p, Result: DiffPlatformOnly, Memo: "on the platform only: the HIS did not report this settlement"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SetlID < out[j].SetlID })
	return out
}
