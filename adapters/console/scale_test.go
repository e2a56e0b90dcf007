package console_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
)

// TestPagesWithAMillionSettlements measures every console page with
// 1,000,000 settlements in the database (copied in with COPY, spread from
// 2026-01-01 to the console's clock, 2026-03-15 17:00, over six regions,
// with cancellations and cross-province rows) and requires each page under 200 ms. It takes a few
// minutes, so it runs only with MEDSETTLE_LONG=1:
//
//	MEDSETTLE_LONG=1 go test -run TestPagesWithAMillionSettlements -v -timeout 30m ./adapters/console/
//
// MEDSETTLE_SCALE_ROWS changes the number of rows; the figures are logged
// and written to $MEDSETTLE_ARTIFACTS/scale.txt when that is set.
func TestPagesWithAMillionSettlements(t *testing.T) {
	if os.Getenv("MEDSETTLE_LONG") == "" {
		t.Skip("set MEDSETTLE_LONG=1 to load 1,000,000 settlements and time every page")
	}
	n := 1_000_000
	if s := os.Getenv("MEDSETTLE_SCALE_ROWS"); s != "" {
		_, err := fmt.Sscan(s, &n)
		require.NoError(t, err)
	}
	e := newEnv(t) // a real day on 2026-03-15, with ledger, lines and a cancellation
	ctx := context.Background()
	t0 := time.Now()
	require.Equal(t, int64(n), copySettlements(t, ctx, e.store, n))
	loaded := time.Since(t0)
	t0 = time.Now()
	_, err := e.store.Pool().Exec(ctx, `VACUUM ANALYZE settlements`)
	require.NoError(t, err)
	vacuumed := time.Since(t0)
	// What KeepWarm does in the background of `serve` and `dev`: the closed
	// days' totals of every region.
	t0 = time.Now()
	require.NoError(t, e.h.WarmUp(ctx, time.Date(2025, 12, 1, 0, 0, 0, 0, cst)))
	warmed := time.Since(t0)
	var total int64
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements`).Scan(&total))
	var size string
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('settlements'))`).Scan(&size))

	var report strings.Builder
	fmt.Fprintf(&report, "%d settlements (%s with indexes); COPY %s, VACUUM ANALYZE %s; closed days of 6 regions summed (WarmUp) in %s; bureau 150100, console clock 2026-03-15 17:00 CST\n",
		total, size, loaded.Round(time.Millisecond), vacuumed.Round(time.Millisecond), warmed.Round(time.Millisecond))
	var inRegion, inMonth int64
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE insuplc_admdvs = '150100' OR mdtrtarea_admvs = '150100'),
		count(*) FILTER (WHERE (insuplc_admdvs = '150100' OR mdtrtarea_admvs = '150100') AND setl_time >= '2026-03-01 00:00+08' AND setl_time < '2026-04-01 00:00+08')
		FROM settlements`).Scan(&inRegion, &inMonth))
	fmt.Fprintf(&report, "region 150100: %d settlements, %d of them in 2026-03\n\n", inRegion, inMonth)
	fmt.Fprintf(&report, "%-70s %9s %8s %8s %8s\n", "page (7 timed views after a first one)", "first", "median", "p90", "max")

	// A cursor deep in the list: the 5,000th row of the region's month.
	var deep string
	var deepT time.Time
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT setl_id, setl_time FROM settlements WHERE insuplc_admdvs = '150100'
		ORDER BY setl_time DESC, setl_id DESC OFFSET 5000 LIMIT 1`).Scan(&deep, &deepT))
	cursor := fmt.Sprintf("%d.%s", deepT.UnixMicro(), deep)
	recon := url.Values{"inst": {hohhotHospital}, "from": {"2026-03-15"}, "to": {"2026-03-15"}, "medfee": {"1.00"}}
	pages := []struct {
		name, method, path string
		form               url.Values
	}{
		{"dashboard, today", "GET", "/console/", nil},
		{"dashboard, 2026-03-10", "GET", "/console/?day=2026-03-10", nil},
		{"dashboard, month 2026-03", "GET", "/console/?period=2026-03", nil},
		{"dashboard, 2026-01-01..03-15", "GET", "/console/?from=2026-01-01&to=2026-03-15", nil},
		{"settlements, first page", "GET", "/console/settlements", nil},
		{"settlements, page after row 5,000", "GET", "/console/settlements?after=" + cursor, nil},
		{"settlements, newer than row 5,000 (back)", "GET", "/console/settlements?before=" + cursor, nil},
		{"settlements, institution H15010000011", "GET", "/console/settlements?inst=H15010000011", nil},
		{"settlements, med_type 14 (rare), month", "GET", "/console/settlements?med_type=14&period=2026-03", nil},
		{"settlements, treated here, one day", "GET", "/console/settlements?scope=treated&day=2026-02-03", nil},
		{"settlement detail", "GET", "/console/settlements/" + e.ids["hohhot-own"], nil},
		{"settlement detail (cancelled, with reversal)", "GET", "/console/settlements/" + e.ids["clinic"], nil},
		{"reconciliation form", "GET", "/console/reconcile", nil},
		{"reconciliation 3201, H15010000011, one day", "POST", "/console/reconcile", recon},
		{"clearing 2026-03", "GET", "/console/clearing?period=2026-03", nil},
		{"alerts, month", "GET", "/console/alerts", nil},
		{"audit (last result)", "GET", "/console/audit", nil},
		{"monthly statement 2026-03 (HTML)", "GET", "/console/statement?period=2026-03", nil},
		{"monthly statement 2026-03 (CSV)", "GET", "/console/statement?period=2026-03&format=csv", nil},
	}
	var slow []string
	for _, p := range pages {
		var times []time.Duration
		var first time.Duration
		for i := 0; i < 8; i++ {
			t0 := time.Now()
			r := e.do(t, nil, p.method, p.path, bureauHohhot, p.form)
			d := time.Since(t0)
			require.Equal(t, http.StatusOK, r.status, "%s: %s", p.name, r.body)
			if i == 0 { // the first view sums and keeps the closed days
				first = d
			} else {
				times = append(times, d)
			}
		}
		slices.Sort(times)
		med, p90, max := times[len(times)/2], times[len(times)*9/10], times[len(times)-1]
		fmt.Fprintf(&report, "%-70s %9s %8s %8s %8s\n", p.name+" "+p.method+" "+shortPath(p.path), ms(first), ms(med), ms(p90), ms(max))
		if med >= 200*time.Millisecond {
			slow = append(slow, p.name)
		}
	}
	t.Log("\n" + report.String())
	if a := os.Getenv("MEDSETTLE_ARTIFACTS"); a != "" {
		require.NoError(t, os.MkdirAll(a, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(a, "scale.txt"), []byte(report.String()), 0o644))
	}
	require.Empty(t, slow, "pages at or over 200 ms (median)")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func shortPath(p string) string {
	if i := strings.Index(p, "after="); i > 0 {
		return p[:i] + "after=…"
	}
	if i := strings.Index(p, "before="); i > 0 {
		return p[:i] + "before=…"
	}
	if strings.HasPrefix(p, "/console/settlements/S") {
		return "/console/settlements/{id}"
	}
	return p
}

// copySettlements copies n synthetic settlements into the database: 2026
// from New Year to 2026-03-15 17:00, persons of six regions at the seven institutions of Inner
// Mongolia (and, for its insured, at institutions of other provinces), 1 in
// 100 cancelled (the original marked, a negated reversal added).
func copySettlements(t *testing.T, ctx context.Context, st *postgres.Store, n int) int64 {
	t.Helper()
	cols := pgfixture.Columns(ctx, t, st.Pool(), "settlements")

	type inst struct{ code, region string }
	local := []inst{{"H15010000011", "150100"}, {"H15010000032", "150100"}, {"H15010000105", "150100"}, {"P15010000201", "150100"},
		{"H15020000012", "150200"}, {"H15020000140", "150200"}, {"P15020000221", "150200"}}
	remote := []inst{{"H42010000001", "420100"}, {"H23010000002", "230100"}, {"H42050000003", "420500"}}
	regions := []string{"150100", "150100", "150100", "150100", "150200", "150200", "150200", "420100", "230100", "420500"}
	// From New Year to the console's clock (2026-03-15 17:00): mid-month.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, cst)
	span := int64(time.Date(2026, 3, 15, 17, 0, 0, 0, cst).Sub(start))
	rng := rand.New(rand.NewPCG(1, 2))
	num := func(fen int64) pgtype.Numeric { return pgtype.Numeric{Int: big.NewInt(fen), Exp: -2, Valid: true} }
	zero := num(0)

	src := &genSource{n: n}
	src.gen = func(i int) [][]any {
		insured := regions[rng.IntN(len(regions))]
		in := local[rng.IntN(len(local))]
		role := "local"
		switch {
		case insured[:2] != "15":
			role = "treatment"
		case rng.IntN(20) == 0:
			in, role = remote[rng.IntN(len(remote))], "insured"
		}
		medType := []string{"11", "11", "11", "11", "11", "11", "21", "21", "41", "14"}[rng.IntN(10)]
		tm := start.Add(time.Duration(rng.Int64N(span))).UTC().Truncate(time.Microsecond)
		medfee := 1000 + rng.Int64N(500000)
		hifp := medfee * int64(30+rng.IntN(40)) / 100
		hifmi := int64(0)
		if medType == "21" {
			hifmi = medfee / 20
		}
		acct := int64(0)
		if rng.IntN(2) == 0 {
			acct = (medfee - hifp - hifmi) / 2
		}
		cash := medfee - hifp - hifmi - acct
		id := fmt.Sprintf("Z%023d", i)
		vals := map[string]any{
			"setl_id": id, "mdtrt_id": "MZ" + id[1:], "psn_no": fmt.Sprintf("%s%014d", insured, rng.IntN(200000)),
			"fixmedins_code": in.code, "insuplc_admdvs": insured, "mdtrtarea_admvs": in.region, "med_type": medType,
			"insutype": "310", "setl_time": tm, "year": int32(2026), "medfee_sumamt": num(medfee), "inscp_scp_amt": num(medfee),
			"hifp_pay": num(hifp), "pool_prop_selfpay": pgtype.Numeric{Int: big.NewInt(2000), Exp: -4, Valid: true},
			"hifmi_pay": num(hifmi), "fund_pay_sumamt": num(hifp + hifmi), "psn_part_amt": num(medfee - hifp - hifmi),
			"acct_pay": num(acct), "psn_cash_pay": num(cash), "setldetail": "[]", "d_admissions": int32(0),
			"status": "settled", "reverses": "", "msgid": "", "ledger_txn_id": "", "role": role, "cleared_period": "",
		}
		row := func(v map[string]any) []any {
			out := make([]any, len(cols))
			for k, c := range cols {
				x, ok := v[c]
				if !ok {
					x = zero
				}
				out[k] = x
			}
			return out
		}
		if role != "local" && tm.Before(time.Date(2026, 3, 1, 0, 0, 0, 0, cst)) {
			vals["cleared_period"] = tm.In(cst).Format("2006-01")
		}
		if rng.IntN(100) != 0 {
			return [][]any{row(vals)}
		}
		vals["status"] = "cancelled"
		rev := map[string]any{}
		for k, v := range vals {
			rev[k] = v
		}
		rev["setl_id"], rev["reverses"], rev["status"] = "R"+id[1:], id, "settled"
		rev["setl_time"] = tm.Add(time.Duration(rng.Int64N(int64(2 * time.Hour))))
		for _, k := range []string{"medfee_sumamt", "inscp_scp_amt", "hifp_pay", "hifmi_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"} {
			v := vals[k].(pgtype.Numeric)
			rev[k] = pgtype.Numeric{Int: new(big.Int).Neg(v.Int), Exp: -2, Valid: true}
		}
		return [][]any{row(vals), row(rev)}
	}
	copied, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"settlements"}, cols, src)
	require.NoError(t, err)
	return copied
}

// genSource yields generated rows to CopyFrom until n rows were given.
type genSource struct {
	n, given, i int
	gen         func(i int) [][]any
	buf         [][]any
}

func (s *genSource) Next() bool {
	if len(s.buf) > 1 {
		s.buf = s.buf[1:]
		s.given++
		return s.given <= s.n
	}
	if s.given >= s.n {
		return false
	}
	s.buf = s.gen(s.i)
	s.i++
	s.given++
	return true
}
func (s *genSource) Values() ([]any, error) { return s.buf[0], nil }
func (s *genSource) Err() error             { return nil }
