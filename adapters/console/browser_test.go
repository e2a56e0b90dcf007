package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

// TestBrowserAgainstDev runs `medsettle dev`, drives the scripted counter
// day of `medsettle demo` through it, and then uses the console of the
// Inner Mongolia platform in headless Chromium as a bureau would: the
// dashboard's totals against SQL, a settlement's split and ledger entries,
// a reconciliation with a seeded difference, and the access rules.
// Screenshots go to $MEDSETTLE_ARTIFACTS/browser (default: the test's
// temporary directory).
//
// It needs Chromium (Debian: apt-get install chromium); without it the test
// is skipped unless MEDSETTLE_BROWSER_TESTS is set, which makes it fail.
func TestBrowserAgainstDev(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv("MEDSETTLE_BROWSER_TESTS") == "" {
			t.Skip("no chromium (apt-get install chromium); set MEDSETTLE_BROWSER_TESTS=1 to require it")
		}
		t.Fatal("MEDSETTLE_BROWSER_TESTS is set but no chromium binary was found (set MEDSETTLE_CHROMIUM)")
	}
	artifacts := t.TempDir()
	if a := os.Getenv("MEDSETTLE_ARTIFACTS"); a != "" {
		artifacts = filepath.Join(a, "browser")
		require.NoError(t, os.MkdirAll(artifacts, 0o755))
	}
	t.Logf("screenshots and logs in %s", artifacts)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	exe := buildMedsettle(t, ctx)
	base := freePortRun(t, 4)
	dsns, url := startDev(t, ctx, exe, base, artifacts)

	demo := exec.CommandContext(ctx, exe, "demo", "--url", url)
	out, err := demo.CombinedOutput()
	require.NoError(t, os.WriteFile(filepath.Join(artifacts, "demo.txt"), out, 0o644))
	require.NoError(t, err, "medsettle demo:\n%s", out)

	db, err := pgx.Connect(ctx, dsns["150000"])
	require.NoError(t, err)
	defer db.Close(ctx)
	y, m, d := time.Now().In(cst).Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, cst)
	s := &consoleSession{t: t, ctx: ctx, db: db, console: url + "/console", artifacts: artifacts,
		from: from, to: from.AddDate(0, 0, 1), today: from.Format("2006-01-02")}

	s.b, err = startBrowser(bin, t.TempDir(), &lockedWriter{path: filepath.Join(artifacts, "chromium.log")})
	require.NoError(t, err)
	defer s.b.close()

	// Without a key: the login page, and no data.
	s.checkAnonymous()

	// The Hohhot bureau signs in: today's dashboard equals SQL.
	hohhot := s.signIn(bureauHohhot, "150100")
	s.shot(hohhot, "02-dashboard-150100.png")

	// A settlement page: its split and its ledger entries, as stored.
	setlID, fund := s.checkInpatientSettlement(hohhot)

	// The cross-province settlement of the Wuhan resident: the treatment side.
	crossID := s.openCrossProvinceSettlement(hohhot)

	// Reconciliation of the hospital's day with one HIS row 1.00 off.
	s.checkReconciliationDifference(hohhot)

	// Clearing and audit.
	s.checkClearingAndAudit(hohhot)

	// Another region's bureau on the same platform sees only its own.
	s.checkOtherRegion(setlID, fund, crossID)
}

// consoleSession is the browser test's platform, browser and day.
type consoleSession struct {
	t                  *testing.T
	ctx                context.Context
	b                  *browser
	db                 *pgx.Conn
	console, artifacts string
	from, to           time.Time
	today              string
}

func (s *consoleSession) shot(tb *tab, name string) {
	require.NoError(s.t, tb.screenshot(s.ctx, filepath.Join(s.artifacts, name)))
}

// signIn opens a tab in which a bureau signs in with key: its dashboard
// must equal SQL for its region.
func (s *consoleSession) signIn(key, region string) *tab {
	t, ctx := s.t, s.ctx
	tb, err := s.b.newTab(ctx)
	require.NoError(t, err)
	require.NoError(t, tb.navigate(ctx, s.console+"/login"))
	require.NoError(t, tb.submit(ctx, map[string]string{"key": key}, "signin"))
	checkDashboard(t, ctx, tb, s.db, region, s.from, s.to)
	return tb
}

// checkAnonymous: without a key, the login page and no data.
func (s *consoleSession) checkAnonymous() {
	t, ctx := s.t, s.ctx
	anon, err := s.b.newTab(ctx)
	require.NoError(t, err)
	require.NoError(t, anon.navigate(ctx, s.console+"/"))
	var path, body string
	require.NoError(t, anon.eval(ctx, "location.pathname", &path))
	require.NoError(t, anon.eval(ctx, "document.body.innerText", &body))
	require.Equal(t, "/console/login", path)
	require.NotContains(t, body, "medfee_sumamt")
	s.shot(anon, "01-login.png")
}

// checkInpatientSettlement opens today's latest Hohhot inpatient settlement:
// its split and its ledger entries, as stored. It returns the setl_id and
// its fund_pay_sumamt.
func (s *consoleSession) checkInpatientSettlement(hohhot *tab) (setlID, fund string) {
	t, ctx := s.t, s.ctx
	var hash, chain string
	var seq int64
	var entries int
	require.NoError(t, s.db.QueryRow(ctx, `SELECT s.setl_id, s.fund_pay_sumamt::TEXT, t.hash, t.chain, t.seq,
		(SELECT count(*) FROM ledger_entries e WHERE e.txn_id = t.txn_id)
		FROM settlements s JOIN ledger_txns t ON t.txn_id = s.ledger_txn_id
		WHERE s.insuplc_admdvs = '150100' AND s.med_type = '21' AND s.reverses = '' AND s.setl_time >= $1
		ORDER BY s.setl_time DESC LIMIT 1`, s.from).Scan(&setlID, &fund, &hash, &chain, &seq, &entries))
	require.NoError(t, hohhot.navigate(ctx, s.console+"/settlements/"+setlID))
	for id, want := range map[string]string{"setl-id": setlID, "hash": hash, "chain": chain, "seq": fmt.Sprint(seq)} {
		got, err := hohhot.text(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got, id)
	}
	var split string
	require.NoError(t, hohhot.eval(ctx, `document.querySelector('#setlinfo tr[data-field="fund_pay_sumamt"] td').textContent`, &split))
	require.Equal(t, fund, plain(split))
	var rowsShown int
	require.NoError(t, hohhot.eval(ctx, `document.querySelectorAll('#entries tbody tr').length`, &rowsShown))
	require.Equal(t, entries, rowsShown)
	for _, id := range []string{"hash-ok", "link-ok"} {
		got, err := hohhot.text(ctx, id)
		require.NoError(t, err)
		require.Contains(t, got, "yes", id)
	}
	var lines int
	require.NoError(t, hohhot.eval(ctx, `document.querySelectorAll('#lines tbody tr').length`, &lines))
	require.Equal(t, 9, lines, "three days of three lines")
	s.shot(hohhot, "03-settlement-inpatient.png")
	return setlID, fund
}

// openCrossProvinceSettlement opens the treatment side of the Wuhan
// resident's settlement and returns its setl_id.
func (s *consoleSession) openCrossProvinceSettlement(hohhot *tab) string {
	t, ctx := s.t, s.ctx
	var crossID string
	require.NoError(t, s.db.QueryRow(ctx, `SELECT setl_id FROM settlements WHERE role = 'treatment' AND insuplc_admdvs = '420100'
		AND reverses = '' AND setl_time >= $1 LIMIT 1`, s.from).Scan(&crossID))
	require.NoError(t, hohhot.navigate(ctx, s.console+"/settlements/"+crossID))
	s.shot(hohhot, "04-settlement-cross-province.png")
	return crossID
}

// hisDay is the hospital's day as its HIS would send it for reconciliation.
type hisDay struct {
	csv                         string
	totMedfee, totFund, totAcct rules.Money
	count                       int
	seeded                      string // the setl_id whose row the HIS has 1.00 more
}

// hospitalDayWithOneOff reads the Hohhot hospital's settlements of the day
// as HIS detail rows, one of them 1.00 more than the platform has.
func (s *consoleSession) hospitalDayWithOneOff() hisDay {
	t, ctx := s.t, s.ctx
	rows, err := s.db.Query(ctx, `SELECT setl_id, mdtrt_id, psn_no, medfee_sumamt::TEXT, fund_pay_sumamt::TEXT, acct_pay::TEXT, status
		FROM settlements WHERE fixmedins_code = $1 AND setl_time >= $2 AND setl_time < $3 AND reverses = '' ORDER BY setl_id`,
		hohhotHospital, s.from, s.to)
	require.NoError(t, err)
	var csv strings.Builder
	csv.WriteString("setl_id,mdtrt_id,psn_no,medfee_sumamt,fund_pay_sumamt,acct_pay,refd_setl_flag\n")
	var h hisDay
	for rows.Next() {
		var id, mdtrt, psn, mf, fd, ac, status string
		require.NoError(t, rows.Scan(&id, &mdtrt, &psn, &mf, &fd, &ac, &status))
		medfee, fund, acct := money(t, mf), money(t, fd), money(t, ac)
		flag := "0"
		if status == "cancelled" {
			flag = "1"
		} else {
			h.totMedfee, h.totFund, h.totAcct, h.count = h.totMedfee+medfee, h.totFund+fund, h.totAcct+acct, h.count+1
		}
		if h.seeded == "" && flag == "0" {
			h.seeded, medfee = id, medfee+100 // the HIS recorded 1.00 more
		}
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s,%s,%s\n", id, mdtrt, psn, medfee, fund, acct, flag)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, h.seeded)
	h.csv = csv.String()
	return h
}

// checkReconciliationDifference reconciles the hospital's day with one HIS
// row 1.00 off: exactly that row differs.
func (s *consoleSession) checkReconciliationDifference(hohhot *tab) {
	t, ctx := s.t, s.ctx
	h := s.hospitalDayWithOneOff()
	require.NoError(t, hohhot.navigate(ctx, s.console+"/reconcile"))
	require.NoError(t, hohhot.submit(ctx, map[string]string{"inst": hohhotHospital, "from": s.today, "to": s.today,
		"medfee": (h.totMedfee + 100).String(), "fund": h.totFund.String(), "acct": h.totAcct.String(), "count": fmt.Sprint(h.count),
		"detail": h.csv}, "run-recon"))
	for id, want := range map[string]string{"stmt-rslt": "1 mismatch", "diff-count": "1"} {
		got, err := hohhot.text(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got, id)
	}
	var diff []string
	require.NoError(t, hohhot.eval(ctx, `Array.from(document.querySelectorAll('#differences tbody tr')).map(function(r){return r.dataset.setl+" "+r.dataset.rslt+" "+r.querySelector('.memo').textContent})`, &diff))
	require.Len(t, diff, 1)
	require.True(t, strings.HasPrefix(diff[0], h.seeded+" 3 differs: platform medfee"), diff[0])
	s.shot(hohhot, "05-reconciliation-difference.png")
}

// checkClearingAndAudit: an open receivable on the clearing page, a clean
// audit, then the settlements list.
func (s *consoleSession) checkClearingAndAudit(hohhot *tab) {
	t, ctx := s.t, s.ctx
	require.NoError(t, hohhot.navigate(ctx, s.console+"/clearing"))
	var open int
	require.NoError(t, hohhot.eval(ctx, `document.querySelectorAll('#open-items tbody tr').length`, &open))
	require.GreaterOrEqual(t, open, 1, "the Wuhan resident's care is an open receivable")
	s.shot(hohhot, "06-clearing.png")
	require.NoError(t, hohhot.navigate(ctx, s.console+"/audit"))
	require.NoError(t, hohhot.submit(ctx, nil, "run-audit"))
	st, err := hohhot.text(ctx, "audit-status")
	require.NoError(t, err)
	require.Equal(t, "OK", st)
	s.shot(hohhot, "07-audit.png")
	require.NoError(t, hohhot.navigate(ctx, s.console+"/settlements"))
	s.shot(hohhot, "08-settlements.png")
}

// checkOtherRegion: Wuhan's bureau does not see Hohhot's settlement setlID
// (fund its fund_pay_sumamt) but does see crossID, its insured person's care.
func (s *consoleSession) checkOtherRegion(setlID, fund, crossID string) {
	t, ctx := s.t, s.ctx
	wuhan := s.signIn(bureauWuhan, "420100")
	s.shot(wuhan, "09-dashboard-420100.png")
	require.NoError(t, wuhan.navigate(ctx, s.console+"/settlements/"+setlID))
	var body string
	require.NoError(t, wuhan.eval(ctx, "document.body.innerText", &body))
	require.Contains(t, body, "no settlement "+setlID+" in region 420100")
	require.NotContains(t, body, fund)
	require.NoError(t, wuhan.navigate(ctx, s.console+"/settlements/"+crossID))
	got, err := wuhan.text(ctx, "setl-id")
	require.NoError(t, err)
	require.Equal(t, crossID, got, "its own insured person's care in Hohhot")
}

// checkDashboard compares the dashboard of today with SQL sums.
func checkDashboard(t *testing.T, ctx context.Context, tb *tab, db *pgx.Conn, region string, from, to time.Time) {
	t.Helper()
	got, err := tb.text(ctx, "bureau-region")
	require.NoError(t, err)
	require.Equal(t, region, got)
	for _, c := range []struct{ id, expr, scope string }{
		{"insured-count", "count(*) FILTER (WHERE reverses = '') - count(*) FILTER (WHERE reverses <> '')", "insuplc_admdvs"},
		{"insured-medfee", "COALESCE(sum(medfee_sumamt), 0)::DECIMAL(18,2)::TEXT", "insuplc_admdvs"},
		{"insured-fund", "COALESCE(sum(fund_pay_sumamt), 0)::DECIMAL(18,2)::TEXT", "insuplc_admdvs"},
		{"insured-acct", "COALESCE(sum(acct_pay), 0)::DECIMAL(18,2)::TEXT", "insuplc_admdvs"},
		{"insured-cash", "COALESCE(sum(psn_cash_pay), 0)::DECIMAL(18,2)::TEXT", "insuplc_admdvs"},
		{"treated-count", "count(*) FILTER (WHERE reverses = '') - count(*) FILTER (WHERE reverses <> '')", "mdtrtarea_admvs"},
		{"treated-medfee", "COALESCE(sum(medfee_sumamt), 0)::DECIMAL(18,2)::TEXT", "mdtrtarea_admvs"},
		{"treated-fund", "COALESCE(sum(fund_pay_sumamt), 0)::DECIMAL(18,2)::TEXT", "mdtrtarea_admvs"},
	} {
		var want string
		require.NoError(t, db.QueryRow(ctx, `SELECT (`+c.expr+`)::TEXT FROM settlements WHERE `+c.scope+` = $1
			AND setl_time >= $2 AND setl_time < $3`, region, from, to).Scan(&want))
		got, err := tb.text(ctx, c.id)
		require.NoError(t, err)
		require.Equal(t, want, plain(got), "%s %s", region, c.id)
	}
	var bars int
	require.NoError(t, tb.eval(ctx, `document.querySelectorAll('svg rect').length`, &bars))
	require.Greater(t, bars, 0, "the charts are drawn")
}

func money(t *testing.T, s string) rules.Money {
	m, err := rules.ParseMoney(s)
	require.NoError(t, err)
	return m
}

// buildMedsettle builds the binary of this module.
func buildMedsettle(t *testing.T, ctx context.Context) string {
	t.Helper()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	require.NoError(t, err)
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	exe := filepath.Join(t.TempDir(), "medsettle")
	build := exec.CommandContext(ctx, "go", "build", "-o", exe, "./cmd/medsettle")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return exe
}

// freePortRun finds n consecutive free ports on loopback.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+n > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

// startDev runs `medsettle dev` on base (router) and base+1.. (provinces)
// and returns each province's database DSN and the router's URL.
func startDev(t *testing.T, ctx context.Context, exe string, base int, artifacts string) (map[string]string, string) {
	t.Helper()
	listen := "127.0.0.1:" + strconv.Itoa(base)
	dev := exec.Command(exe, "dev", "--listen", listen, "--province-port", strconv.Itoa(base+1))
	log := &lockedWriter{path: filepath.Join(artifacts, "dev.log")}
	dev.Stderr = log
	stdout, err := dev.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, dev.Start())
	t.Cleanup(func() {
		_ = dev.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = dev.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = dev.Process.Kill()
			<-done
		}
	})
	dsns := map[string]string{}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`province (\d{6}): \S+\s+database (\S+)`)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			_, _ = log.Write([]byte(line + "\n"))
			if m := re.FindStringSubmatch(line); m != nil {
				log.mu.Lock()
				dsns[m[1]] = m[2]
				log.mu.Unlock()
			}
			if strings.HasPrefix(line, "medsettle listening") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(4 * time.Minute):
		t.Fatalf("medsettle dev did not start; see %s", log.path)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	require.Contains(t, dsns, "150000")
	out := map[string]string{}
	for k, v := range dsns {
		out[k] = v
	}
	return out, "http://" + listen
}

// lockedWriter appends to a file, safely from several goroutines.
type lockedWriter struct {
	path string
	mu   sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Write(p)
}
