package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/console"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

func TestMain(m *testing.M) { pgfixture.Main(m) }

var cst = rules.CST

const (
	hohhotHospital = "H15010000011"
	hohhotClinic   = "H15010000105"
	baotouHospital = "H15020000012"
	hohhotEmployee = "15010000000000000001"
	baotouResident = "15020000000000000023"

	bureauHohhot = "dev-bureau-150100-secret"
	bureauBaotou = "dev-bureau-150200-secret"
	bureauWuhan  = "dev-bureau-420100-secret"
	hospitalKey  = "dev-h15010000011-secret"
)

type clock = pgfixture.Clock

type env struct {
	store  *postgres.Store
	engine *settlement.Engine
	clock  *clock
	srv    *httptest.Server
	h      *console.Handler
	ids    map[string]string // name -> setl_id
	n      int
}

func at(t *testing.T, s string) time.Time {
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, cst)
	require.NoError(t, err)
	return tm
}

func (e *env) msg(inst, infno string) settlement.Msg {
	e.n++
	return settlement.Msg{ID: fmt.Sprintf("%s20260315100000%04d", inst, e.n), Infno: infno, Institution: inst, Digest: fmt.Sprint(e.n)}
}

func (e *env) settle(t *testing.T, name, inst, psn string, useAcct bool, lines ...settlement.LineInput) settlement.SettleAnswer {
	t.Helper()
	ctx := context.Background()
	v, err := e.engine.RegisterVisit(ctx, e.msg(inst, "2201"), settlement.VisitInput{PsnNo: psn, Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = e.engine.UploadLines(ctx, e.msg(inst, "2204"), v.MdtrtID, psn, lines)
	require.NoError(t, err)
	a, err := e.engine.Settle(ctx, e.msg(inst, "2207"), settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: psn, UseAccount: useAcct})
	require.NoError(t, err)
	e.ids[name] = a.SetlID
	return a
}

func line(sn, code, cnt, pric, amount string) settlement.LineInput {
	return settlement.LineInput{SN: sn, ChrgBchno: "B1", Code: code, Cnt: cnt, Pric: pric, Amount: amount}
}

// newEnv is a platform with a day of settlements in regions 150100 and
// 150200, and the console over it at /console/.
func newEnv(t *testing.T) *env {
	t.Helper()
	fx := pgfixture.NewEnv(t, at(t, "2026-03-15 09:00"))
	st, rs, c := fx.Store, fx.Rules, fx.Clock
	e := &env{store: st, engine: fx.Engine, clock: c, ids: map[string]string{}}
	e.settle(t, "hohhot-own", hohhotHospital, hohhotEmployee, true, line("1", "001101000010000", "1", "30.00", "30.00"),
		line("2", "XJ01DDA062B002010100345", "3", "1500.5", "4501.50"))
	e.settle(t, "baotou-in-hohhot", hohhotHospital, baotouResident, false, line("1", "002302000010000", "1", "350.00", "350.00"))
	c.Set(at(t, "2026-03-15 10:00"))
	e.settle(t, "baotou-own", baotouHospital, baotouResident, false, line("1", "001101000010000", "1", "30.00", "30.00"))
	a := e.settle(t, "clinic", hohhotClinic, "15010000000000000004", true, line("1", "002302000010000", "1", "420.00", "420.00"))
	r, err := e.engine.Cancel(context.Background(), e.msg(hohhotClinic, "2208"), settlement.CancelInput{SetlID: a.SetlID})
	require.NoError(t, err)
	e.ids["clinic-reversal"] = r.SetlID
	c.Set(at(t, "2026-03-15 17:00"))

	_, keys, _ := storetest.DevKeys(t)
	h, err := console.New(console.Config{Reader: st, Reconciler: e.engine, Keys: keys, Rules: rs, Province: "150000",
		Now: c.Now, Secret: bytes.Repeat([]byte("k"), 32), Log: pgfixture.Quiet()})
	require.NoError(t, err)
	e.h = h
	mux := http.NewServeMux()
	mux.Handle("/console/", h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// noFollow is a client that shows redirects instead of following them.
func noFollow() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(t *testing.T, c *http.Client, method, path, key string, form url.Values) resp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if c == nil {
		c = noFollow()
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{res.StatusCode, res.Header, string(b)}
}

// field returns the text of the element with id (the first one).
func field(t *testing.T, html, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(html)
	require.NotNil(t, m, "no element #%s", id)
	return strings.TrimSpace(m[1])
}

func plain(s string) string { return strings.ReplaceAll(s, ",", "") }

// sqlTotal is a direct SQL sum of the settlements where.
func (e *env) sqlTotal(t *testing.T, col, where string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, e.store.Pool().QueryRow(context.Background(),
		`SELECT COALESCE(sum(`+col+`), 0)::DECIMAL(18,2)::TEXT FROM settlements WHERE `+where, args...).Scan(&s))
	return s
}

var pages = []string{"/console/", "/console/settlements", "/console/reconcile", "/console/clearing", "/console/audit",
	"/console/statement?period=2026-03", "/console/alerts"}

func TestWithoutABureauKeyNothingIsShown(t *testing.T) {
	e := newEnv(t)
	detail := "/console/settlements/" + e.ids["hohhot-own"]
	for _, p := range append(pages, detail) {
		r := e.do(t, nil, "GET", p, "", nil)
		require.Equal(t, http.StatusSeeOther, r.status, p)
		require.True(t, strings.HasPrefix(r.header.Get("Location"), "/console/login?next="), p)
		require.NotContains(t, r.body, "4531.50")
		require.NotContains(t, r.body, "medfee")

		r = e.do(t, nil, "GET", p, "not-a-key-at-all-really", nil)
		require.Equal(t, http.StatusUnauthorized, r.status, p)
		require.NotContains(t, r.body, e.ids["hohhot-own"])
		require.NotContains(t, r.body, "4531.50")

		r = e.do(t, nil, "GET", p, hospitalKey, nil)
		require.Equal(t, http.StatusForbidden, r.status, "an institution key does not open the console: %s", p)
		require.NotContains(t, r.body, e.ids["hohhot-own"])
	}
	for _, p := range []string{"/console/audit", "/console/reconcile"} {
		r := e.do(t, nil, "POST", p, "", url.Values{"inst": {hohhotHospital}})
		require.Equal(t, http.StatusUnauthorized, r.status, p)
	}
	// A forged session cookie is no session.
	req, _ := http.NewRequest("GET", e.srv.URL+"/console/", nil)
	req.AddCookie(&http.Cookie{Name: "medsettle_console", Value: "djF8MTUwMTAwfDk5OTk5OTk5OTl8MDA.AAAA"})
	res, err := noFollow().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	// The login page itself is there, with no data.
	r := e.do(t, nil, "GET", "/console/login", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `name="key"`)
}

func TestDashboardTotalsEqualSQL(t *testing.T) {
	e := newEnv(t)
	from, to := at(t, "2026-03-15 00:00"), at(t, "2026-03-16 00:00")
	for _, region := range []string{"150100", "150200", "420100"} {
		key := map[string]string{"150100": bureauHohhot, "150200": bureauBaotou, "420100": bureauWuhan}[region]
		for _, q := range []string{"", "?day=2026-03-15", "?period=2026-03", "?from=2026-03-15&to=2026-03-15"} {
			r := e.do(t, nil, "GET", "/console/"+q, key, nil)
			require.Equal(t, http.StatusOK, r.status, r.body)
			require.Equal(t, region, field(t, r.body, "bureau-region"))
			if q == "?period=2026-03" {
				from, to = at(t, "2026-03-01 00:00"), at(t, "2026-04-01 00:00")
			} else {
				from, to = at(t, "2026-03-15 00:00"), at(t, "2026-03-16 00:00")
			}
			for _, c := range []struct{ id, col, scope string }{
				{"insured-medfee", "medfee_sumamt", "insuplc_admdvs"}, {"insured-fund", "fund_pay_sumamt", "insuplc_admdvs"},
				{"insured-acct", "acct_pay", "insuplc_admdvs"}, {"insured-cash", "psn_cash_pay", "insuplc_admdvs"},
				{"treated-medfee", "medfee_sumamt", "mdtrtarea_admvs"}, {"treated-fund", "fund_pay_sumamt", "mdtrtarea_admvs"},
				{"treated-acct", "acct_pay", "mdtrtarea_admvs"}, {"treated-cash", "psn_cash_pay", "mdtrtarea_admvs"},
			} {
				want := e.sqlTotal(t, c.col, c.scope+` = $1 AND setl_time >= $2 AND setl_time < $3`, region, from, to)
				require.Equal(t, want, plain(field(t, r.body, c.id)), "%s %s %s", region, q, c.id)
			}
			require.Contains(t, r.body, "<svg", "charts are server-rendered SVG")
			require.NotContains(t, strings.ToLower(r.body), "<script")
			require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'none'")
		}
	}
	r := e.do(t, nil, "GET", "/console/", bureauHohhot, nil)
	require.Equal(t, "1", field(t, r.body, "insured-count"), "the Hohhot employee; the cancelled clinic visit counts nothing")
	require.Equal(t, "2", field(t, r.body, "treated-count"))
	require.Equal(t, "4,881.50", field(t, r.body, "treated-medfee"))
	r = e.do(t, nil, "GET", "/console/?day=2026-03-14", bureauHohhot, nil)
	require.Equal(t, "0", field(t, r.body, "insured-count"))
}

func TestARegionSeesOnlyItsOwnSettlements(t *testing.T) {
	e := newEnv(t)
	mine := map[string][]string{
		"150100": {"hohhot-own", "baotou-in-hohhot", "clinic", "clinic-reversal"},
		"150200": {"baotou-in-hohhot", "baotou-own"},
		"420100": {},
	}
	keys := map[string]string{"150100": bureauHohhot, "150200": bureauBaotou, "420100": bureauWuhan}
	for region, names := range mine {
		r := e.do(t, nil, "GET", "/console/settlements", keys[region], nil)
		require.Equal(t, http.StatusOK, r.status)
		for name, id := range e.ids {
			own := false
			for _, n := range names {
				own = own || n == name
			}
			require.Equal(t, own, strings.Contains(r.body, id), "%s list, %s", region, name)
			d := e.do(t, nil, "GET", "/console/settlements/"+id, keys[region], nil)
			if own {
				require.Equal(t, http.StatusOK, d.status, "%s sees %s", region, name)
				require.Equal(t, id, field(t, d.body, "setl-id"))
			} else {
				require.Equal(t, http.StatusNotFound, d.status, "%s does not see %s", region, name)
				require.NotContains(t, d.body, "medfee_sumamt")
			}
		}
	}
	// Filters keep to the region too: another region's institution shows nothing.
	r := e.do(t, nil, "GET", "/console/settlements?inst="+baotouHospital, bureauHohhot, nil)
	require.NotContains(t, r.body, e.ids["baotou-own"])
	r = e.do(t, nil, "GET", "/console/settlements?inst="+hohhotHospital+"&scope=insured", bureauBaotou, nil)
	require.Contains(t, r.body, e.ids["baotou-in-hohhot"])
	require.NotContains(t, r.body, e.ids["hohhot-own"])
	// Reconciling another region's institution is refused.
	r = e.do(t, nil, "POST", "/console/reconcile", bureauBaotou, url.Values{"inst": {hohhotHospital}, "from": {"2026-03-15"}, "to": {"2026-03-15"}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.NotContains(t, r.body, "recon-result")
}

func TestSettlementPageShowsSplitAndLedger(t *testing.T) {
	e := newEnv(t)
	id := e.ids["hohhot-own"]
	r := e.do(t, nil, "GET", "/console/settlements/"+id, bureauHohhot, nil)
	require.Equal(t, http.StatusOK, r.status)
	var medfee, fund, acct, cash, txn, hash, prev string
	var seq int64
	require.NoError(t, e.store.Pool().QueryRow(context.Background(), `SELECT s.medfee_sumamt::TEXT, s.fund_pay_sumamt::TEXT,
		s.acct_pay::TEXT, s.psn_cash_pay::TEXT, t.txn_id, t.hash, t.prev_hash, t.seq FROM settlements s JOIN ledger_txns t ON t.txn_id = s.ledger_txn_id
		WHERE s.setl_id = $1`, id).Scan(&medfee, &fund, &acct, &cash, &txn, &hash, &prev, &seq))
	for _, v := range []string{medfee, fund, acct, cash} {
		require.Contains(t, plain(r.body), ">"+v+"<")
	}
	require.Equal(t, hash, field(t, r.body, "hash"))
	require.Equal(t, prev, field(t, r.body, "prev-hash"))
	require.Equal(t, fmt.Sprint(seq), field(t, r.body, "seq"))
	require.Equal(t, "psn:"+hohhotEmployee, field(t, r.body, "chain"))
	require.Contains(t, field(t, r.body, "hash-ok"), "yes")
	require.Contains(t, field(t, r.body, "link-ok"), "yes")
	require.Contains(t, r.body, `id="amounts-ok"`)
	rows, err := e.store.Pool().Query(context.Background(), `SELECT account, amount::TEXT FROM ledger_entries WHERE txn_id = $1`, txn)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var a, m string
		require.NoError(t, rows.Scan(&a, &m))
		require.Contains(t, r.body, "<td>"+a+"</td>")
		require.Contains(t, plain(r.body), ">"+m+"<")
		n++
	}
	require.NoError(t, rows.Err())
	require.Greater(t, n, 2)
	require.Contains(t, r.body, "XJ01DDA062B002010100345", "the visit's fee lines")

	// The cancelled settlement names its reversal; the reversal its original.
	r = e.do(t, nil, "GET", "/console/settlements/"+e.ids["clinic"], bureauHohhot, nil)
	require.Equal(t, "cancelled", field(t, r.body, "status"))
	require.Contains(t, r.body, e.ids["clinic-reversal"])
	r = e.do(t, nil, "GET", "/console/settlements/"+e.ids["clinic-reversal"], bureauHohhot, nil)
	require.Contains(t, r.body, "reversal of <a href=\"/console/settlements/"+e.ids["clinic"])
}

func TestReconciliationShowsEveryDifference(t *testing.T) {
	e := newEnv(t)
	own := e.ids["hohhot-own"]
	var mdtrt, medfee, fund, acct string
	require.NoError(t, e.store.Pool().QueryRow(context.Background(), `SELECT mdtrt_id, medfee_sumamt::TEXT, fund_pay_sumamt::TEXT, acct_pay::TEXT
		FROM settlements WHERE setl_id = $1`, own).Scan(&mdtrt, &medfee, &fund, &acct))
	var bMdtrt, bMedfee, bFund, bAcct string
	require.NoError(t, e.store.Pool().QueryRow(context.Background(), `SELECT mdtrt_id, medfee_sumamt::TEXT, fund_pay_sumamt::TEXT, acct_pay::TEXT
		FROM settlements WHERE setl_id = $1`, e.ids["baotou-in-hohhot"]).Scan(&bMdtrt, &bMedfee, &bFund, &bAcct))
	// The HIS recorded the first settlement with 1.00 more, missed the
	// second, and has one the platform never made.
	detail := "setl_id,mdtrt_id,psn_no,medfee_sumamt,fund_pay_sumamt,acct_pay,refd_setl_flag\n" +
		own + "," + mdtrt + "," + hohhotEmployee + ",4532.50," + fund + "," + acct + ",0\n" +
		"SHIS0001,MHIS0001," + hohhotEmployee + ",88.00,50.00,0,0\n"
	form := url.Values{"inst": {hohhotHospital}, "from": {"2026-03-15"}, "to": {"2026-03-15"},
		"medfee": {"4620.50"}, "fund": {fund}, "acct": {acct}, "count": {"2"}, "detail": {detail}}
	r := e.do(t, nil, "POST", "/console/reconcile", bureauHohhot, form)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "1 mismatch", field(t, r.body, "stmt-rslt"))
	require.Equal(t, "3", field(t, r.body, "diff-count"))
	require.Regexp(t, `data-setl="`+own+`" data-rslt="3"`, r.body)
	require.Regexp(t, `data-setl="SHIS0001" data-rslt="1"`, r.body)
	require.Regexp(t, `data-setl="`+e.ids["baotou-in-hohhot"]+`" data-rslt="2"`, r.body)
	require.Contains(t, r.body, "differs: platform medfee "+medfee+" fund "+fund+" acct "+acct+", HIS medfee 4532.50")
	require.Contains(t, r.body, "in the HIS only")
	require.Contains(t, r.body, "on the platform only")

	// The same totals as the platform's: a match.
	total := e.sqlTotal(t, "medfee_sumamt", `fixmedins_code = $1`, hohhotHospital)
	tf := e.sqlTotal(t, "fund_pay_sumamt", `fixmedins_code = $1`, hohhotHospital)
	ta := e.sqlTotal(t, "acct_pay", `fixmedins_code = $1`, hohhotHospital)
	r = e.do(t, nil, "POST", "/console/reconcile", bureauHohhot, url.Values{"inst": {hohhotHospital}, "from": {"2026-03-15"},
		"to": {"2026-03-15"}, "medfee": {total}, "fund": {tf}, "acct": {ta}, "count": {"2"}})
	require.Equal(t, "0 match", field(t, r.body, "stmt-rslt"), r.body)
}

func TestLoginSessionCookie(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// An institution's key, or a wrong one, does not sign in.
	for _, k := range []string{hospitalKey, "wrong-key-wrong-key"} {
		r := e.do(t, c, "POST", "/console/login", "", url.Values{"key": {k}})
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Empty(t, r.header.Values("Set-Cookie"))
	}
	r := e.do(t, c, "POST", "/console/login", "", url.Values{"key": {bureauHohhot}, "next": {"/console/settlements"}})
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, "/console/settlements", r.header.Get("Location"))
	sc := r.header.Get("Set-Cookie")
	require.Contains(t, sc, "HttpOnly")
	require.Contains(t, sc, "SameSite=Strict")
	require.NotContains(t, sc, bureauHohhot)
	require.NotContains(t, sc, "secret")

	r = e.do(t, c, "GET", "/console/settlements", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, e.ids["hohhot-own"])
	require.NotContains(t, r.body, e.ids["baotou-own"])

	// Forms need the session's token.
	form := url.Values{"inst": {hohhotHospital}, "from": {"2026-03-15"}, "to": {"2026-03-15"}, "medfee": {"1.00"}}
	r = e.do(t, c, "POST", "/console/reconcile", "", form)
	require.Equal(t, http.StatusForbidden, r.status)
	page := e.do(t, c, "GET", "/console/reconcile", "", nil)
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.body)
	require.NotNil(t, token)
	form.Set("csrf", token[1])
	r = e.do(t, c, "POST", "/console/reconcile", "", form)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "1 mismatch", field(t, r.body, "stmt-rslt"))

	// A post from another site is refused.
	req, _ := http.NewRequest("POST", e.srv.URL+"/console/reconcile", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	res, err := c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	// The session expires.
	e.clock.Set(e.clock.Now().Add(9 * time.Hour))
	r = e.do(t, c, "GET", "/console/settlements", "", nil)
	require.Equal(t, http.StatusSeeOther, r.status)
	e.clock.Set(e.clock.Now().Add(-9 * time.Hour))

	// Signing out ends it.
	r = e.do(t, c, "POST", "/console/logout", "", url.Values{})
	require.Equal(t, http.StatusSeeOther, r.status)
	r = e.do(t, c, "GET", "/console/", "", nil)
	require.Equal(t, http.StatusSeeOther, r.status)
}

func TestAuditButtonAndOtherPages(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, nil, "GET", "/console/audit", bureauWuhan, nil)
	require.Contains(t, r.body, `id="audit-none"`)
	r = e.do(t, nil, "POST", "/console/audit", bureauWuhan, url.Values{})
	require.Equal(t, http.StatusSeeOther, r.status)
	r = e.do(t, nil, "GET", "/console/audit", bureauWuhan, nil)
	require.Equal(t, "OK", field(t, r.body, "audit-status"), r.body)
	require.Contains(t, field(t, r.body, "audit-summary"), "audit OK")

	r = e.do(t, nil, "GET", "/console/clearing?period=2026-03", bureauHohhot, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, "no open cross-province items")
	require.Contains(t, r.body, `id="advances"`)
	r = e.do(t, nil, "GET", "/console/clearing?period=2026-03", bureauWuhan, nil)
	require.NotContains(t, r.body, `id="advances"`, "another province's advance funds are not shown")

	r = e.do(t, nil, "GET", "/console/statement?period=2026-03&format=csv", bureauHohhot, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, "fund_total,,persons insured in 150100,1,")
	require.Contains(t, r.body, "institution,"+hohhotHospital+",")
	require.NotContains(t, r.body, "institution,"+baotouHospital)
	r = e.do(t, nil, "GET", "/console/statement?period=2026-03", bureauHohhot, nil)
	require.Contains(t, r.body, "Monthly settlement statement")

	for _, p := range pages {
		r := e.do(t, nil, "GET", p, bureauHohhot, nil)
		require.Equal(t, http.StatusOK, r.status, p)
		require.NotContains(t, strings.ToLower(r.body), "<script", p)
		require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
	}
	// Bad input is refused, not rendered.
	for _, p := range []string{"/console/?day=yesterday", "/console/settlements?after=zzz", "/console/clearing?period=2026-13", "/console/settlements?scope=all-of-it"} {
		r := e.do(t, nil, "GET", p, bureauHohhot, nil)
		require.Equal(t, http.StatusBadRequest, r.status, p)
	}
	// Text is escaped.
	r = e.do(t, nil, "GET", "/console/settlements?inst=%3Cb%3Ex", bureauHohhot, nil)
	require.NotContains(t, r.body, "<b>x")
}

func TestSettlementListPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// 120 more settlements of the Hohhot employee's region: three pages.
	for i := 0; i < 60; i++ {
		e.clock.Set(at(t, "2026-03-16 08:00").Add(time.Duration(i) * time.Minute))
		e.settle(t, fmt.Sprint("p", i), hohhotClinic, "15010000000000000005", false, line("1", "001101000010000", "1", "30.00", "30.00"))
	}
	var total int
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE insuplc_admdvs = '150100' OR mdtrtarea_admvs = '150100'`).Scan(&total))
	seen := map[string]bool{}
	path := "/console/settlements"
	idRe := regexp.MustCompile(`<a href="/console/settlements/(S[0-9a-f]+)">`)
	nextRe := regexp.MustCompile(`<a href="\?([^"]+)" id="next">`)
	pagesSeen := 0
	for {
		r := e.do(t, nil, "GET", path, bureauHohhot, nil)
		require.Equal(t, http.StatusOK, r.status)
		for _, m := range idRe.FindAllStringSubmatch(r.body, -1) {
			require.False(t, seen[m[1]], "row %s on two pages", m[1])
			seen[m[1]] = true
		}
		pagesSeen++
		m := nextRe.FindStringSubmatch(r.body)
		if m == nil {
			break
		}
		path = "/console/settlements?" + strings.ReplaceAll(m[1], "&amp;", "&")
	}
	require.Equal(t, total, len(seen))
	require.Equal(t, 2, pagesSeen)
}

func TestAlertsAreScopedWithTheirEvidence(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var n int
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name IN ('alerts', 'alert_regions')`).Scan(&n))
	if n < 2 {
		r := e.do(t, nil, "GET", "/console/alerts", bureauHohhot, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, `id="no-monitor"`)
		return
	}
	raised := at(t, "2026-03-15 10:00")
	ev := `[{"setl_id":"` + e.ids["hohhot-own"] + `","mdtrt_id":"M1","fixmedins_code":"` + hohhotHospital + `","mdtrtarea_admvs":"150100","med_type":"11","setl_time":"2026-03-15T01:00:00Z","medfee_sumamt":"4531.50"},` +
		`{"setl_id":"<script>x","mdtrt_id":"M2","fixmedins_code":"` + baotouHospital + `","mdtrtarea_admvs":"150200","med_type":"11","setl_time":"2026-03-15T02:00:00Z","medfee_sumamt":"30.00"}]`
	_, err := e.store.Pool().Exec(ctx, `INSERT INTO alerts (alert_id, rule, psn_no, insuplc_admdvs, regions, evidence, detail, raised_at, event_id, created_at)
		VALUES ('A1', 'swipes_per_day', $1, '150100', '["150100","150200"]', $2, '6 settlements on 2026-03-15', $3, 'E1', $3)`, hohhotEmployee, ev, raised)
	require.NoError(t, err)
	for _, reg := range []string{"150100", "150200"} {
		_, err = e.store.Pool().Exec(ctx, `INSERT INTO alert_regions (admdvs, raised_at, alert_id) VALUES ($1, $2, 'A1')`, reg, raised)
		require.NoError(t, err)
	}
	for key, sees := range map[string]bool{bureauHohhot: true, bureauBaotou: true, bureauWuhan: false} {
		r := e.do(t, nil, "GET", "/console/alerts", key, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, sees, strings.Contains(r.body, `id="alert-A1"`), key)
		if sees {
			require.Contains(t, r.body, "6 settlements on 2026-03-15")
			require.Contains(t, r.body, `href="/console/settlements/`+e.ids["hohhot-own"]+`"`)
			require.Contains(t, r.body, "4,531.50")
			require.NotContains(t, r.body, "<script>x", "evidence is escaped")
		}
	}
	r := e.do(t, nil, "GET", "/console/alerts?period=2026-02", bureauHohhot, nil)
	require.Contains(t, r.body, `id="no-alerts"`)
}
