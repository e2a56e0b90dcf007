package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

const (
	baotouHospital = "H15020000012" // region 150200
	baotouResident = "15020000000000000023"
)

// consoleDay settles a few claims over two days in two regions of one
// province (the engine has no Province: every region is local), with a
// cancellation, and returns the setl_ids.
func consoleDay(t *testing.T, e *env) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	settle := func(inst, psn, medType string, useAcct bool, lines ...settlement.LineInput) settlement.SettleAnswer {
		mdtrt := e.outpatient(t, inst, psn, medType, lines...)
		a, err := e.engine.Settle(ctx, pgfixture.Msg(inst, "2207"), settlement.SettleInput{MdtrtID: mdtrt, PsnNo: psn, UseAccount: useAcct})
		require.NoError(t, err)
		ids = append(ids, a.SetlID)
		return a
	}
	e.clock.Set(day(t, "2026-03-10"))
	settle(hohhotHospital, hohhotEmployee, "11", true, line("1", "001101000010000", "1", "30.00", "30.00"),
		line("2", "XJ01DDA062B002010100345", "3", "1500.5", "4501.50"))
	settle(hohhotHospital, baotouResident, "11", false, line("1", "002302000010000", "1", "350.00", "350.00"))
	e.clock.Set(day(t, "2026-03-15"))
	a := settle(hohhotClinic, "15010000000000000004", "11", true, line("1", "002302000010000", "1", "420.00", "420.00"))
	settle(baotouHospital, "15010000000000000005", "11", false, line("1", "002303000010000", "1", "680.00", "680.00"))
	settle(baotouHospital, baotouResident, "11", false, line("1", "001101000010000", "1", "30.00", "30.00"))
	sale, err := e.engine.PharmacySettle(ctx, pgfixture.Msg(hohhotPharmacy, "2102"), settlement.PharmacyInput{PsnNo: hohhotEmployee, UseAccount: true,
		Lines: []settlement.LineInput{line("1", "XA10BAG046A001010100111", "2", "62.70", "125.40")}})
	require.NoError(t, err)
	ids = append(ids, sale.SetlID)
	e.clock.Set(day(t, "2026-03-15").Add(time.Hour))
	c, err := e.engine.Cancel(ctx, pgfixture.Msg(hohhotClinic, "2208"), settlement.CancelInput{SetlID: a.SetlID})
	require.NoError(t, err)
	return append(ids, c.SetlID)
}

// sqlSums is the reference: the same sums straight from SQL.
func sqlSums(t *testing.T, e *env, where string, args ...any) settlement.Sums {
	t.Helper()
	var s settlement.Sums
	var m [8]string
	err := e.store.Pool().QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE reverses = '') - count(*) FILTER (WHERE reverses <> ''),
		COALESCE(sum(medfee_sumamt), 0)::TEXT, COALESCE(sum(fund_pay_sumamt), 0)::TEXT, COALESCE(sum(hifp_pay), 0)::TEXT,
		COALESCE(sum(hifmi_pay), 0)::TEXT, COALESCE(sum(hifob_pay), 0)::TEXT, COALESCE(sum(maf_pay), 0)::TEXT,
		COALESCE(sum(acct_pay), 0)::TEXT, COALESCE(sum(psn_cash_pay), 0)::TEXT
		FROM settlements WHERE `+where, args...).Scan(&s.Count, &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7])
	require.NoError(t, err)
	for i, dst := range []*rules.Money{&s.Medfee, &s.Fund, &s.Hifp, &s.Hifmi, &s.Hifob, &s.Maf, &s.Acct, &s.Cash} {
		*dst, err = rules.ParseMoney(m[i])
		require.NoError(t, err)
	}
	return s
}

func sumOf(rows []settlement.BureauTotalsRow, keep func(settlement.BureauTotalsRow) bool) settlement.Sums {
	var s settlement.Sums
	for _, r := range rows {
		if keep == nil || keep(r) {
			s.Add(r.Sums)
		}
	}
	return s
}

func TestConsoleTotalsEqualSQL(t *testing.T) {
	e := newEnv(t)
	consoleDay(t, e)
	ctx := context.Background()
	for _, rg := range []struct{ from, to string }{{"2026-03-10", "2026-03-11"}, {"2026-03-15", "2026-03-16"}, {"2026-03-01", "2026-04-01"}, {"2026-04-01", "2026-05-01"}} {
		from := midnight(t, rg.from)
		to := midnight(t, rg.to)
		// Summed afresh; with the days before the 15th kept as day totals
		// (twice: stored, then read back); with every day kept.
		for _, closed := range []string{"", "2026-03-15", "2026-03-15", "2027-01-01", "2027-01-01"} {
			for _, region := range []string{"150100", "150200", "420100"} {
				var closedBefore time.Time
				if closed != "" {
					closedBefore = midnight(t, closed)
				}
				tt, err := e.store.ConsoleTotals(ctx, region, from, to, closedBefore)
				require.NoError(t, err)
				name := fmt.Sprintf("%s %s..%s closed before %q", region, rg.from, rg.to, closed)
				require.Equal(t, sqlSums(t, e, `insuplc_admdvs = $1 AND setl_time >= $2 AND setl_time < $3`, region, from, to),
					sumOf(tt.Insured, nil), name+" insured")
				require.Equal(t, sqlSums(t, e, `mdtrtarea_admvs = $1 AND setl_time >= $2 AND setl_time < $3`, region, from, to),
					sumOf(tt.Treated, nil), name+" treated")
				for _, r := range tt.Insured {
					require.Equal(t, region, r.InsuredRegion)
				}
				for _, r := range tt.Treated {
					require.Equal(t, region, r.TreatmentRegion)
					// Every group equals its own SQL sum.
					require.Equal(t, sqlSums(t, e, `mdtrtarea_admvs = $1 AND setl_time >= $2 AND setl_time < $3 AND fixmedins_code = $4
					AND med_type = $5 AND insuplc_admdvs = $6`, region, from, to, r.Institution, r.MedType, r.InsuredRegion), r.Sums)
				}
			}
		}
	}
	var days int
	require.NoError(t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM console_days WHERE region = '150100' AND scope = 'insured'`).Scan(&days))
	require.Equal(t, 31+30, days, "March and April, kept once")
	// The month of region 150100: three standing settlements of its insured
	// and three at its institutions (a cancelled one and its reversal count
	// nothing).
	from, to := periodBounds("2026-03")
	tt, err := e.store.ConsoleTotals(ctx, "150100", from, to, time.Time{})
	require.NoError(t, err)
	require.EqualValues(t, 3, sumOf(tt.Insured, nil).Count)
	require.EqualValues(t, 3, sumOf(tt.Treated, nil).Count)
	require.Equal(t, sqlSums(t, e, `insuplc_admdvs = '150100' AND reverses = '' AND status = 'settled'`).Medfee, sumOf(tt.Insured, nil).Medfee)
}

func TestConsoleSettlementsScopedAndPaged(t *testing.T) {
	e := newEnv(t)
	ids := consoleDay(t, e)
	ctx := context.Background()
	for _, region := range []string{"150100", "150200", "420100"} {
		for _, scope := range []settlement.BureauScope{settlement.BureauScopeAll, settlement.BureauScopeInsured, settlement.BureauScopeTreated} {
			where := map[settlement.BureauScope]string{settlement.BureauScopeAll: `(insuplc_admdvs = $1 OR mdtrtarea_admvs = $1)`,
				settlement.BureauScopeInsured: `insuplc_admdvs = $1`, settlement.BureauScopeTreated: `mdtrtarea_admvs = $1`}[scope]
			var want []string
			rows, err := e.store.Pool().Query(ctx, `SELECT setl_id FROM settlements WHERE `+where+` ORDER BY setl_time DESC, setl_id DESC`, region)
			require.NoError(t, err)
			for rows.Next() {
				var id string
				require.NoError(t, rows.Scan(&id))
				want = append(want, id)
			}
			require.NoError(t, rows.Err())
			// Page forward two at a time, then back.
			var got []string
			var pages [][]settlement.BureauListRow
			q := settlement.BureauListQuery{Region: region, Scope: scope, Limit: 2}
			for {
				page, err := e.store.ConsoleSettlements(ctx, q)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				pages = append(pages, page)
				for _, r := range page {
					require.True(t, r.InsuredRegion == region || r.TreatmentRegion == region, "row of another region")
					got = append(got, r.SetlID)
				}
				c := page[len(page)-1].Cursor()
				q.After = &c
			}
			require.Equal(t, want, got, "%s %q", region, scope)
			for i := len(pages) - 1; i > 0; i-- {
				c := pages[i][0].Cursor()
				back, err := e.store.ConsoleSettlements(ctx, settlement.BureauListQuery{Region: region, Scope: scope, Limit: 2, Before: &c})
				require.NoError(t, err)
				require.Equal(t, pages[i-1], back, "page %d back", i-1)
			}
		}
	}
	// Filters: institution, med_type, date range.
	from := midnight(t, "2026-03-15")
	rows, err := e.store.ConsoleSettlements(ctx, settlement.BureauListQuery{Region: "150100", Institution: hohhotClinic, From: from, To: from.AddDate(0, 0, 1), Limit: 10})
	require.NoError(t, err)
	require.Len(t, rows, 2, "the clinic's settlement and its reversal")
	rows, err = e.store.ConsoleSettlements(ctx, settlement.BureauListQuery{Region: "150100", MedType: "41", Limit: 10})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, ids[5], rows[0].SetlID)
	rows, err = e.store.ConsoleSettlements(ctx, settlement.BureauListQuery{Region: "150200", Institution: hohhotClinic, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, rows, "the clinic's settlements are all of 150100")
}

func TestConsoleSettlementDetailScoped(t *testing.T) {
	e := newEnv(t)
	ids := consoleDay(t, e)
	ctx := context.Background()
	d, err := e.store.ConsoleSettlement(ctx, "150100", ids[0])
	require.NoError(t, err)
	require.NotNil(t, d)
	require.Len(t, d.Lines, 2)
	require.NotNil(t, d.Txn)
	require.Equal(t, settlement.ChainOf(hohhotEmployee), d.Txn.Chain)
	require.Equal(t, int64(1), d.Txn.Seq)
	require.Equal(t, int64(2), d.Head.Seq, "the pharmacy sale is the second link of the person's chain")
	require.Equal(t, d.Txn.Hash, d.Txn.ComputeHash())
	require.Empty(t, settlement.CheckSettlement(&d.Settlement, d.Txn))

	sale, err := e.store.ConsoleSettlement(ctx, "150100", ids[5])
	require.NoError(t, err)
	require.Equal(t, int64(2), sale.Txn.Seq)
	require.Equal(t, d.Txn.Hash, sale.PrevHash)
	require.Equal(t, sale.Txn.PrevHash, sale.PrevHash)

	// A Hohhot employee's settlement at a Hohhot hospital is none of 150200's business.
	none, err := e.store.ConsoleSettlement(ctx, "150200", ids[0])
	require.NoError(t, err)
	require.Nil(t, none)
	// A Baotou resident at a Hohhot hospital: both regions see it.
	for _, region := range []string{"150100", "150200"} {
		d, err := e.store.ConsoleSettlement(ctx, region, ids[1])
		require.NoError(t, err)
		require.NotNil(t, d, region)
	}
	// The cancelled settlement links to its reversal, and back.
	orig, err := e.store.ConsoleSettlement(ctx, "150100", ids[2])
	require.NoError(t, err)
	require.Equal(t, settlement.Cancelled, orig.Settlement.Status)
	require.Len(t, orig.Related, 1)
	require.Equal(t, ids[6], orig.Related[0].SetlID)
	require.Equal(t, ids[2], orig.Related[0].Reverses)
}

func TestConsoleClearingWithoutCrossProvince(t *testing.T) {
	e := newEnv(t)
	consoleDay(t, e)
	c, err := e.store.ConsoleClearing(context.Background(), "150100", "2026-03", []string{"420000", "230000"})
	require.NoError(t, err)
	require.Empty(t, c.Open)
	require.Empty(t, c.Postings)
	require.Empty(t, c.Advances)
}

// Every console query is served by an index: among 20,000 other
// settlements (other regions, institutions and times), no console call
// scans a table whole.
func TestConsoleQueriesUseIndexes(t *testing.T) {
	e := newEnv(t)
	ids := consoleDay(t, e)
	ctx := context.Background()
	pool := e.store.Pool()
	// Copies of a settlement moved to 40 other regions and back in time.
	cols := pgfixture.Columns(ctx, t, pool, "settlements")
	override := map[string]string{
		"setl_id": `'X' || g`, "mdtrt_id": `'MX' || g`, "insuplc_admdvs": `'R' || (g % 40)`,
		"mdtrtarea_admvs": `'T' || (g % 37)`, "fixmedins_code": `'I' || (g % 101)`,
		"setl_time": `setl_time - g * interval '7 minutes'`, "ledger_txn_id": `''`,
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = c
		if o, ok := override[c]; ok {
			sel[i] = o
		}
	}
	_, err := pool.Exec(ctx, `INSERT INTO settlements (`+strings.Join(cols, ", ")+`) SELECT `+strings.Join(sel, ", ")+`
		FROM settlements, generate_series(1, 20000) g WHERE settlements.setl_id = $1`, ids[0])
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ANALYZE`)
	require.NoError(t, err)

	// Only settlements is big here: the other tables are read by their
	// primary keys, which the planner skips on a table of ten rows.
	tables := []string{"settlements"}
	read := func() map[string]int64 {
		out := map[string]int64{}
		rows, err := pool.Query(ctx, `SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname = ANY($1)`, tables)
		require.NoError(t, err)
		for rows.Next() {
			var n string
			var c int64
			require.NoError(t, rows.Scan(&n, &c))
			out[n] = c
		}
		require.NoError(t, rows.Err())
		return out
	}
	flush := func() {
		// Backends report their statistics when they exit.
		pool.Reset()
		time.Sleep(700 * time.Millisecond)
	}
	flush()
	before := read()
	flush()

	from, to := periodBounds("2026-03")
	_, err = e.store.ConsoleTotals(ctx, "150100", from, to, time.Time{})
	require.NoError(t, err)
	c := settlement.BureauCursor{Time: day(t, "2026-03-15"), ID: "S"}
	for _, q := range []settlement.BureauListQuery{
		{Region: "150100", Limit: 51},
		{Region: "150100", Limit: 51, After: &c, MedType: "11"},
		{Region: "150100", Limit: 51, Before: &c, From: from, To: to},
		{Region: "150100", Scope: settlement.BureauScopeTreated, Limit: 51},
		{Region: "150100", Institution: hohhotHospital, Limit: 51, After: &c},
	} {
		_, err = e.store.ConsoleSettlements(ctx, q)
		require.NoError(t, err)
	}
	for _, id := range ids {
		_, err = e.store.ConsoleSettlement(ctx, "150100", id)
		require.NoError(t, err)
	}
	_, err = e.store.ConsoleClearing(ctx, "150100", "2026-03", []string{"420000", "230000"})
	require.NoError(t, err)
	flush()
	after := read()
	for _, tb := range tables {
		require.Equal(t, before[tb], after[tb], "sequential scans of %s by console queries", tb)
	}
}
