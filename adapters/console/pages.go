package console

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// pageTimeout bounds the database work of one page view.
const pageTimeout = 10 * time.Second

// dateRange is a [From, To) range of days at the counter, from a query:
// day=yyyy-mm-dd, period=yyyy-mm, or from=…&to=… (inclusive days);
// default today.
type dateRange struct {
	From, To time.Time
	Label    string
	// Form values.
	FromDay, ToDay, Period string
}

func (h *Handler) today() time.Time {
	y, m, d := h.cfg.Now().In(rules.CST).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, rules.CST)
}

// closedBefore is the start of yesterday: days before it are over (with a
// day's margin for what is settled around midnight).
func (h *Handler) closedBefore() time.Time { return ClosedBefore(h.cfg.Now()) }

// ClosedBefore is the start of the day before now's (rules.CST): the days
// before it no longer change.
func ClosedBefore(now time.Time) time.Time {
	y, m, d := now.In(rules.CST).Date()
	return time.Date(y, m, d-1, 0, 0, 0, 0, rules.CST)
}

func (h *Handler) parseRange(q url.Values, defaultMonth bool) (dateRange, error) {
	var r dateRange
	switch {
	case q.Get("period") != "":
		p, err := settlement.ParsePeriod(q.Get("period"))
		if err != nil {
			return r, errors.New(settlement.ErrorMessage(err))
		}
		r.From, r.To = PeriodBounds(p)
		r.Period, r.Label = string(p), "month "+string(p)
	case q.Get("day") != "":
		d, err := Day(q.Get("day"))
		if err != nil {
			return r, err
		}
		r.From, r.To = d, d.AddDate(0, 0, 1)
	case q.Get("from") != "" || q.Get("to") != "":
		from, to := q.Get("from"), q.Get("to")
		if from == "" {
			from = to
		}
		if to == "" {
			to = from
		}
		f, err := Day(from)
		if err != nil {
			return r, err
		}
		t, err := Day(to)
		if err != nil {
			return r, err
		}
		if t.Before(f) {
			return r, errors.New("the range ends before it starts")
		}
		if t.Sub(f) > 366*24*time.Hour {
			return r, errors.New("choose a range of at most a year")
		}
		r.From, r.To = f, t.AddDate(0, 0, 1)
	case defaultMonth:
		today := h.today()
		r.From = time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, rules.CST)
		r.To = r.From.AddDate(0, 1, 0)
		r.Period, r.Label = r.From.Format("2006-01"), "month "+r.From.Format("2006-01")
	default:
		r.From = h.today()
		r.To = r.From.AddDate(0, 0, 1)
	}
	r.FromDay, r.ToDay = r.From.Format("2006-01-02"), r.To.AddDate(0, 0, -1).Format("2006-01-02")
	if r.Label == "" {
		if r.FromDay == r.ToDay {
			r.Label = r.FromDay
			if r.From.Equal(h.today()) {
				r.Label += " (today)"
			}
		} else {
			r.Label = r.FromDay + " to " + r.ToDay
		}
	}
	return r, nil
}

type dashboardData struct {
	Range                          dateRange
	Insured, Treated               settlement.Sums
	Funds                          []FundLine
	FundChart                      Chart
	ByMedType, ByInstitution       []Group
	MedTypeChart, InstitutionChart Chart
	TreatedBy                      []Group
	TreatedChart                   Chart
	Today, ThisMonth, LastMonth    string
	Elapsed                        time.Duration
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request, v viewer) {
	start := time.Now()
	rg, err := h.parseRange(r.URL.Query(), false)
	if err != nil {
		h.render(w, r, v, http.StatusBadRequest, "error", "Dashboard", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	t, err := h.cfg.Reader.ConsoleTotals(ctx, v.Region, rg.From, rg.To, h.closedBefore())
	if err != nil {
		h.fail(w, r, err, http.StatusInternalServerError, "the totals could not be read")
		return
	}
	d := dashboardData{Range: rg}
	d.ByMedType, d.Insured = groupBy(t.Insured, func(r settlement.BureauTotalsRow) string { return r.MedType }, medTypeName)
	d.ByInstitution, _ = groupBy(t.Insured, func(r settlement.BureauTotalsRow) string { return r.Institution }, h.instName)
	d.TreatedBy, d.Treated = groupBy(t.Treated, func(r settlement.BureauTotalsRow) string { return r.Institution }, h.instName)
	d.Funds = Funds(d.Insured)
	d.FundChart = fundChart("What the region's funds, accounts and insured persons paid", d.Insured)
	d.MedTypeChart = groupChart("Fund payments by med_type", d.ByMedType, func(s settlement.Sums) rules.Money { return s.Fund }, 10)
	d.InstitutionChart = groupChart("Fund payments by institution (top 10)", d.ByInstitution, func(s settlement.Sums) rules.Money { return s.Fund }, 10)
	d.TreatedChart = groupChart("Billed by the region's institutions (top 10)", d.TreatedBy, func(s settlement.Sums) rules.Money { return s.Medfee }, 10)
	today := h.today()
	d.Today = "day=" + today.Format("2006-01-02")
	d.ThisMonth = "period=" + today.Format("2006-01")
	d.LastMonth = "period=" + time.Date(today.Year(), today.Month()-1, 1, 0, 0, 0, 0, rules.CST).Format("2006-01")
	d.Elapsed = time.Since(start)
	h.render(w, r, v, http.StatusOK, "dashboard", "Dashboard", d)
}

const pageSize = 50

type listData struct {
	Range             dateRange
	Scope             string
	Institution       string
	MedType           string
	Rows              []settlement.BureauListRow
	Next, Prev, First string
	Institutions      []instOption
	MedTypes          []instOption
	Elapsed           time.Duration
}

type instOption struct{ Code, Name string }

func encodeCursor(c settlement.BureauCursor) string {
	return strconv.FormatInt(c.Time.UnixMicro(), 10) + "." + c.ID
}

func decodeCursor(s string) (*settlement.BureauCursor, error) {
	if s == "" {
		return nil, nil
	}
	us, id, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 64 {
		return nil, errors.New("the page cursor is not valid")
	}
	return &settlement.BureauCursor{Time: time.UnixMicro(n).UTC(), ID: id}, nil
}

func (h *Handler) regionInstitutions(region string) []instOption {
	var out []instOption
	if h.cfg.Rules != nil {
		for code, in := range h.cfg.Rules.Institutions {
			if in.Admdvs == region {
				out = append(out, instOption{code, in.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b instOption) int { return strings.Compare(a.Code, b.Code) })
	return out
}

func (h *Handler) settlements(w http.ResponseWriter, r *http.Request, v viewer) {
	start := time.Now()
	qv := r.URL.Query()
	d := listData{Scope: qv.Get("scope"), Institution: strings.TrimSpace(qv.Get("inst")), MedType: strings.TrimSpace(qv.Get("med_type"))}
	lq := settlement.BureauListQuery{Region: v.Region, Institution: d.Institution, MedType: d.MedType, Limit: pageSize + 1}
	switch settlement.BureauScope(d.Scope) {
	case settlement.BureauScopeAll, settlement.BureauScopeInsured, settlement.BureauScopeTreated:
		lq.Scope = settlement.BureauScope(d.Scope)
	default:
		h.render(w, r, v, http.StatusBadRequest, "error", "Settlements", "scope must be insured, treated or empty")
		return
	}
	if len(d.Institution) > 32 || len(d.MedType) > 8 {
		h.render(w, r, v, http.StatusBadRequest, "error", "Settlements", "filter value too long")
		return
	}
	if qv.Get("from") != "" || qv.Get("to") != "" || qv.Get("day") != "" || qv.Get("period") != "" {
		rg, err := h.parseRange(qv, false)
		if err != nil {
			h.render(w, r, v, http.StatusBadRequest, "error", "Settlements", err.Error())
			return
		}
		d.Range, lq.From, lq.To = rg, rg.From, rg.To
	}
	var err error
	if lq.After, err = decodeCursor(qv.Get("after")); err == nil {
		lq.Before, err = decodeCursor(qv.Get("before"))
	}
	if err != nil {
		h.render(w, r, v, http.StatusBadRequest, "error", "Settlements", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	rows, err := h.cfg.Reader.ConsoleSettlements(ctx, lq)
	if err != nil {
		h.fail(w, r, err, http.StatusInternalServerError, "the settlements could not be read")
		return
	}
	// One row more than a page was asked for: it says whether there is more.
	more := len(rows) > pageSize
	if more {
		if lq.Before != nil {
			rows = rows[1:]
		} else {
			rows = rows[:pageSize]
		}
	}
	d.Rows = rows
	base := url.Values{}
	for _, k := range []string{"scope", "inst", "med_type", "from", "to", "day", "period"} {
		if x := qv.Get(k); x != "" {
			base.Set(k, x)
		}
	}
	link := func(k string, c settlement.BureauCursor) string {
		u := url.Values{}
		for kk, vv := range base {
			u[kk] = vv
		}
		u.Set(k, encodeCursor(c))
		return "?" + u.Encode()
	}
	if len(rows) > 0 {
		if (lq.Before == nil && more) || lq.Before != nil {
			d.Next = link("after", rows[len(rows)-1].Cursor())
		}
		if lq.After != nil || (lq.Before != nil && more) {
			d.Prev = link("before", rows[0].Cursor())
		}
	}
	if lq.After != nil || lq.Before != nil {
		d.First = "?" + base.Encode()
	}
	d.Institutions = h.regionInstitutions(v.Region)
	for _, k := range []string{"11", "14", "21", "41"} {
		d.MedTypes = append(d.MedTypes, instOption{k, MedTypeNames[k]})
	}
	d.Elapsed = time.Since(start)
	h.render(w, r, v, http.StatusOK, "settlements", "Settlements", d)
}

type detailData struct {
	*settlement.BureauDetail
	Funds        []FundLine
	HashOK       bool
	LinkOK       bool
	Problems     []string
	Position     string
	Elapsed      time.Duration
	LinesTotal   rules.Money
	LinesPresent bool
}

func (h *Handler) settlement(w http.ResponseWriter, r *http.Request, v viewer) {
	start := time.Now()
	id := r.PathValue("id")
	if id == "" || len(id) > 64 {
		h.render(w, r, v, http.StatusNotFound, "error", "Settlement", "no such settlement")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	det, err := h.cfg.Reader.ConsoleSettlement(ctx, v.Region, id)
	if err != nil {
		h.fail(w, r, err, http.StatusInternalServerError, "the settlement could not be read")
		return
	}
	if det == nil {
		// Another region's settlement is as absent as one that never was.
		h.render(w, r, v, http.StatusNotFound, "error", "Settlement", "no settlement "+id+" in region "+v.Region)
		return
	}
	d := detailData{BureauDetail: det, Funds: Funds(settlement.Sums{Hifp: det.Settlement.Info.HifpPay, Hifmi: det.Settlement.Info.HifmiPay,
		Hifob: det.Settlement.Info.HifobPay, Maf: det.Settlement.Info.MafPay, Acct: det.Settlement.Info.AcctPay,
		Cash: det.Settlement.Info.PsnCashPay})}
	if t := det.Txn; t != nil {
		d.HashOK = t.ComputeHash() == t.Hash
		d.LinkOK = (t.Seq == 1 && t.PrevHash == settlement.GenesisHash) || (t.Seq > 1 && t.PrevHash == det.PrevHash)
		d.Position = fmt.Sprintf("link %d of %d", t.Seq, det.Head.Seq)
	}
	d.Problems = settlement.CheckSettlement(&det.Settlement, det.Txn)
	for _, l := range det.Lines {
		if !l.Withdrawn {
			d.LinesTotal += l.Amount
			d.LinesPresent = true
		}
	}
	d.Elapsed = time.Since(start)
	h.render(w, r, v, http.StatusOK, "settlement", "Settlement "+id, d)
}

type reconcileData struct {
	Institutions []instOption
	Form         reconcileForm
	Error        string
	Ran          bool
	Totals       settlement.TotalsResult
	HIS          settlement.Totals
	Details      bool
	Differences  []settlement.Difference
	Elapsed      time.Duration
}

type reconcileForm struct {
	Institution, From, To     string
	Medfee, Fund, Acct, Count string
	Detail                    string
}

func (h *Handler) reconcileForm(w http.ResponseWriter, r *http.Request, v viewer) {
	today := h.today().Format("2006-01-02")
	d := reconcileData{Institutions: h.regionInstitutions(v.Region), Form: reconcileForm{From: today, To: today,
		Institution: r.URL.Query().Get("inst")}}
	if h.cfg.Reconciler == nil || h.cfg.Rules == nil {
		d.Error = "reconciliation is not available on this platform"
	}
	h.render(w, r, v, http.StatusOK, "reconcile", "Reconciliation", d)
}

// reconcile runs 3201 on the HIS totals and, when HIS rows are given, 3202.
func (h *Handler) reconcile(w http.ResponseWriter, r *http.Request, v viewer) {
	start := time.Now()
	f := reconcileForm{Institution: strings.TrimSpace(r.PostFormValue("inst")), From: r.PostFormValue("from"),
		To: r.PostFormValue("to"), Medfee: strings.TrimSpace(r.PostFormValue("medfee")), Fund: strings.TrimSpace(r.PostFormValue("fund")),
		Acct: strings.TrimSpace(r.PostFormValue("acct")), Count: strings.TrimSpace(r.PostFormValue("count")),
		Detail: r.PostFormValue("detail")}
	d := reconcileData{Institutions: h.regionInstitutions(v.Region), Form: f}
	bad := func(msg string) {
		d.Error = msg
		h.render(w, r, v, http.StatusBadRequest, "reconcile", "Reconciliation", d)
	}
	if h.cfg.Reconciler == nil || h.cfg.Rules == nil {
		bad("reconciliation is not available on this platform")
		return
	}
	in := h.cfg.Rules.Institutions[f.Institution]
	if in == nil || in.Admdvs != v.Region {
		bad("choose an institution of region " + v.Region)
		return
	}
	from, err1 := Day(f.From)
	to, err2 := Day(f.To)
	if err1 != nil || err2 != nil || to.Before(from) || to.Sub(from) > 92*24*time.Hour {
		bad("give a range of days (yyyy-mm-dd), at most three months")
		return
	}
	var his settlement.Totals
	for _, x := range []struct {
		name string
		s    string
		dst  *rules.Money
	}{{"medfee_sumamt", f.Medfee, &his.MedfeeSumamt}, {"fund_pay_sumamt", f.Fund, &his.FundPaySumamt}, {"acct_pay", f.Acct, &his.AcctPay}} {
		m, err := rules.ParseMoney(orZero(x.s))
		if err != nil {
			bad(x.name + ": " + err.Error())
			return
		}
		*x.dst = m
	}
	n, err := strconv.Atoi(orZero(f.Count))
	if err != nil || n < 0 {
		bad("fixmedins_setl_cnt must be a count")
		return
	}
	his.Count = n
	var rows []settlement.DetailRow
	if strings.TrimSpace(f.Detail) != "" {
		if rows, err = parseDetailRows(f.Detail); err != nil {
			bad(err.Error())
			return
		}
	}
	fd, td := settlement.DateOf(from), settlement.DateOf(to)
	q := settlement.PeriodQuery{Institution: f.Institution, From: fd, To: td}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if d.Totals, err = h.cfg.Reconciler.ReconcileTotals(ctx, q, his); err != nil {
		h.fail(w, r, err, http.StatusInternalServerError, "the reconciliation could not run")
		return
	}
	if rows != nil {
		if d.Differences, err = h.cfg.Reconciler.ReconcileDetails(ctx, q, rows); err != nil {
			h.fail(w, r, err, http.StatusInternalServerError, "the detail reconciliation could not run")
			return
		}
		d.Details = true
	}
	d.Ran, d.HIS = true, his
	d.Elapsed = time.Since(start)
	h.render(w, r, v, http.StatusOK, "reconcile", "Reconciliation", d)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// parseDetailRows reads HIS rows as CSV: setl_id, mdtrt_id, psn_no,
// medfee_sumamt, fund_pay_sumamt, acct_pay, refd_setl_flag (a header row
// naming setl_id is skipped).
func parseDetailRows(text string) ([]settlement.DetailRow, error) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var out []settlement.DetailRow
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("HIS rows: %v", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if strings.TrimSpace(rec[0]) == "setl_id" {
			continue
		}
		if len(rec) < 6 || len(rec) > 7 {
			return nil, fmt.Errorf("HIS row %d: want setl_id,mdtrt_id,psn_no,medfee_sumamt,fund_pay_sumamt,acct_pay[,refd_setl_flag]", line)
		}
		dr := settlement.DetailRow{SetlID: strings.TrimSpace(rec[0]), MdtrtID: strings.TrimSpace(rec[1]), PsnNo: strings.TrimSpace(rec[2])}
		for i, dst := range []*rules.Money{&dr.MedfeeSumamt, &dr.FundPaySumamt, &dr.AcctPay} {
			m, err := rules.ParseMoney(strings.TrimSpace(rec[3+i]))
			if err != nil {
				return nil, fmt.Errorf("HIS row %d column %d: %v", line, 4+i, err)
			}
			*dst = m
		}
		if len(rec) == 7 {
			dr.RefdSetlFlag = strings.TrimSpace(rec[6])
		}
		out = append(out, dr)
		if len(out) > 20000 {
			return nil, errors.New("HIS rows: at most 20,000 rows at a time")
		}
	}
	return out, nil
}

type clearingData struct {
	Period    string
	Province  string
	Own       bool
	C         *settlement.BureauClearing
	Disputed  []settlement.Verdict
	Confirmed int
	Elapsed   time.Duration
}

// provinces are the provinces of the rules other than this platform's.
func (h *Handler) otherProvinces() []string {
	seen := map[string]bool{}
	var out []string
	if h.cfg.Rules != nil {
		for _, r := range h.cfg.Rules.Regions {
			if r.Province != h.cfg.Province && !seen[r.Province] {
				seen[r.Province] = true
				out = append(out, r.Province)
			}
		}
	}
	slices.Sort(out)
	return out
}

// period is the page's ?period=YYYY-MM, this month by default; a period that
// is not one is answered 400 here, on the page titled title.
func (h *Handler) period(w http.ResponseWriter, r *http.Request, v viewer, title string) (settlement.Period, bool) {
	ps := r.URL.Query().Get("period")
	if ps == "" {
		ps = h.today().Format("2006-01")
	}
	p, err := settlement.ParsePeriod(ps)
	if err != nil {
		h.render(w, r, v, http.StatusBadRequest, "error", title, settlement.ErrorMessage(err))
		return p, false
	}
	return p, true
}

func (h *Handler) clearing(w http.ResponseWriter, r *http.Request, v viewer) {
	start := time.Now()
	p, ok := h.period(w, r, v, "Clearing")
	if !ok {
		return
	}
	// The province's advance funds are its bureaus' business only.
	own := h.cfg.Province != "" && rules.ProvinceOf(v.Region) == h.cfg.Province
	var provs []string
	if own {
		provs = h.otherProvinces()
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	c, err := h.cfg.Reader.ConsoleClearing(ctx, v.Region, p, provs)
	if err != nil {
		h.fail(w, r, err, http.StatusInternalServerError, "the clearing could not be read")
		return
	}
	d := clearingData{Period: string(p), Province: h.cfg.Province, Own: own, C: c}
	for _, po := range c.Postings {
		for _, it := range po.Items {
			if !it.Confirmed {
				d.Disputed = append(d.Disputed, it)
			}
		}
		d.Confirmed += po.NConfirmed
	}
	d.Elapsed = time.Since(start)
	h.render(w, r, v, http.StatusOK, "clearing", "Clearing "+string(p), d)
}

type auditData struct {
	Running  bool
	Started  time.Time
	Last     *auditResult
	Problems []string
	More     int
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, v viewer) {
	running, started, last := h.audit.state()
	d := auditData{Running: running, Started: started, Last: last}
	if last != nil && last.Report != nil {
		d.Problems = last.Report.Problems
		if len(d.Problems) > 200 {
			d.More = len(d.Problems) - 200
			d.Problems = d.Problems[:200]
		}
	}
	h.render(w, r, v, http.StatusOK, "audit", "Audit", d)
}

// auditRun starts `audit verify` (any bureau may: it reads every chain but
// shows no amounts) and waits a little for it, then shows the audit page.
func (h *Handler) auditRun(w http.ResponseWriter, r *http.Request, v viewer) {
	done := h.audit.start("bureau:" + v.Region)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	case <-r.Context().Done():
	}
	http.Redirect(w, r, h.cfg.Prefix+"/audit", http.StatusSeeOther)
}

// statement serves the monthly statement of `medsettle report` (csv or html).
func (h *Handler) statement(w http.ResponseWriter, r *http.Request, v viewer) {
	p, ok := h.period(w, r, v, "Statement")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	st, err := BuildStatement(ctx, h.cfg.Reader, h.cfg.Rules, v.Region, p, h.cfg.Now())
	if err != nil {
		h.fail(w, r, err, http.StatusInternalServerError, "the statement could not be built")
		return
	}
	name := "statement-" + v.Region + "-" + string(p)
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		_ = st.WriteCSV(w)
		return
	}
	// The printable page carries its own stylesheet.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := st.WriteHTML(w); err != nil {
		h.cfg.Log.Error("console: statement", "err", err)
	}
}

type alertsData struct {
	Range  dateRange
	Alerts []settlement.BureauAlertRow
	None   bool
	More   bool
}

const alertsShown = 200

// alerts shows the monitor's alerts concerning the region (default: this month).
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request, v viewer) {
	rg, err := h.parseRange(r.URL.Query(), true)
	if err != nil {
		h.render(w, r, v, http.StatusBadRequest, "error", "Alerts", err.Error())
		return
	}
	d := alertsData{Range: rg}
	ar, ok := h.cfg.Reader.(settlement.BureauAlertReads)
	if !ok {
		d.None = true
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
		defer cancel()
		d.Alerts, err = ar.ConsoleAlerts(ctx, v.Region, rg.From, rg.To, alertsShown+1)
		switch {
		case errors.Is(err, settlement.ErrNoAlerts):
			d.None = true
		case err != nil:
			h.fail(w, r, err, http.StatusInternalServerError, "the alerts could not be read")
			return
		}
		if len(d.Alerts) > alertsShown {
			d.Alerts, d.More = d.Alerts[:alertsShown], true
		}
	}
	h.render(w, r, v, http.StatusOK, "alerts", "Alerts", d)
}
