package postgres

// The bureau console's read side (settlement.BureauReads). Every query is a range
// scan of an index led by the region (settlements_by_region, and
// settlements_by_treatment_region of migration 0006) or by the institution,
// bounded by time and, for lists, by a keyset cursor and a LIMIT: a page
// view costs what the page shows, not what the table holds.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

var _ settlement.BureauReads = (*Store)(nil)

// sumCols are the aggregates of a settlement.Sums, decimals as text.
const sumCols = `sum(CASE WHEN reverses = '' THEN 1 ELSE -1 END),
	COALESCE(sum(medfee_sumamt), 0)::DECIMAL(18,2)::TEXT, COALESCE(sum(fund_pay_sumamt), 0)::DECIMAL(18,2)::TEXT,
	COALESCE(sum(hifp_pay), 0)::DECIMAL(18,2)::TEXT, COALESCE(sum(hifmi_pay), 0)::DECIMAL(18,2)::TEXT,
	COALESCE(sum(hifob_pay), 0)::DECIMAL(18,2)::TEXT, COALESCE(sum(maf_pay), 0)::DECIMAL(18,2)::TEXT,
	COALESCE(sum(acct_pay), 0)::DECIMAL(18,2)::TEXT, COALESCE(sum(psn_cash_pay), 0)::DECIMAL(18,2)::TEXT`

// scanTotalsRows reads (day, institution, med_type, insured region,
// treatment region, count, 8 sums) rows, and closes them.
func scanTotalsRows(rows pgx.Rows, what string) ([]settlement.BureauTotalsRow, error) {
	defer rows.Close()
	var out []settlement.BureauTotalsRow
	for rows.Next() {
		var r settlement.BureauTotalsRow
		var n int64
		var m [8]string
		if err := rows.Scan(&r.Day, &r.Institution, &r.MedType, &r.InsuredRegion, &r.TreatmentRegion, &n,
			&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7]); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if err := scanSums(&r.Sums, &n, m[:]); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanSums(dst *settlement.Sums, count *int64, m []string) error {
	dst.Count = *count
	return scanMoney([]*rules.Money{&dst.Medfee, &dst.Fund, &dst.Hifp, &dst.Hifmi, &dst.Hifob, &dst.Maf, &dst.Acct, &dst.Cash}, m)
}

// ConsoleTotals implements settlement.BureauReads. Whole days that ended before
// closedBefore come from console_day_totals (summed there from settlements
// on first use); the rest of the range is summed from settlements directly.
// Either way a sum reads an index range of the region.
func (s *Store) ConsoleTotals(ctx context.Context, region string, from, to, closedBefore time.Time) (*settlement.BureauTotals, error) {
	out := &settlement.BureauTotals{}
	for _, sc := range []struct {
		scope string
		col   string
		dst   *[]settlement.BureauTotalsRow
	}{{"insured", "insuplc_admdvs", &out.Insured}, {"treated", "mdtrtarea_admvs", &out.Treated}} {
		rows, err := s.totals(ctx, sc.scope, sc.col, region, from, to, closedBefore)
		if err != nil {
			return nil, err
		}
		*sc.dst = rows
	}
	return out, nil
}

// dayStart is the CST midnight at or after (ceil) or at or before t.
func dayStart(t time.Time, ceil bool) time.Time {
	y, m, d := t.In(rules.CST).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, rules.CST)
	if ceil && day.Before(t) {
		day = day.AddDate(0, 0, 1)
	}
	return day
}

type totalsKey struct{ inst, medType, insured, treated string }

func (s *Store) totals(ctx context.Context, scope, col, region string, from, to, closedBefore time.Time) ([]settlement.BureauTotalsRow, error) {
	by := map[totalsKey]*settlement.BureauTotalsRow{}
	add := func(rows []settlement.BureauTotalsRow) {
		for _, r := range rows {
			k := totalsKey{r.Institution, r.MedType, r.InsuredRegion, r.TreatmentRegion}
			if cur := by[k]; cur != nil {
				cur.Add(r.Sums)
			} else {
				c := r
				by[k] = &c
			}
		}
	}
	// The closed days [cFrom, cTo) from the day totals, the rest live.
	cFrom, cTo := dayStart(from, true), dayStart(to, false)
	if limit := dayStart(closedBefore, false); cTo.After(limit) {
		cTo = limit
	}
	if !closedBefore.IsZero() && cFrom.Before(cTo) {
		rows, err := s.dayTotals(ctx, scope, col, region, cFrom, cTo)
		if err != nil {
			return nil, err
		}
		add(rows)
		for _, r := range [][2]time.Time{{from, cFrom}, {cTo, to}} {
			if r[0].Before(r[1]) {
				rows, err := s.liveTotals(ctx, col, region, r[0], r[1], false)
				if err != nil {
					return nil, err
				}
				add(rows)
			}
		}
	} else {
		rows, err := s.liveTotals(ctx, col, region, from, to, false)
		if err != nil {
			return nil, err
		}
		add(rows)
	}
	out := make([]settlement.BureauTotalsRow, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b settlement.BureauTotalsRow) int {
		return strings.Compare(a.Institution+"|"+a.MedType+"|"+a.InsuredRegion+"|"+a.TreatmentRegion,
			b.Institution+"|"+b.MedType+"|"+b.InsuredRegion+"|"+b.TreatmentRegion)
	})
	return out, nil
}

// liveTotals sums settlements of the region in [from, to) by institution,
// med_type and regions (and, with byDay, by CST day, into TotalsRow.Day).
func (s *Store) liveTotals(ctx context.Context, col, region string, from, to time.Time, byDay bool) ([]settlement.BureauTotalsRow, error) {
	day, group := `''`, ``
	if byDay {
		// The CST calendar day of setl_time, in SQL both databases share.
		day, group = `((setl_time AT TIME ZONE 'UTC') + INTERVAL '8 hours')::DATE::TEXT`, `, 1`
	}
	rows, err := s.pool.Query(ctx, `SELECT `+day+`, fixmedins_code, med_type, insuplc_admdvs, mdtrtarea_admvs, `+sumCols+`
		FROM settlements WHERE `+col+` = $1 AND setl_time >= $2 AND setl_time < $3
		GROUP BY fixmedins_code, med_type, insuplc_admdvs, mdtrtarea_admvs`+group, region, from, to)
	if err != nil {
		return nil, fmt.Errorf("console totals of %s: %w", region, err)
	}
	return scanTotalsRows(rows, "console totals of "+region)
}

// dayTotals reads the day totals of [from, to) (whole CST days), summing
// and storing first the days not summed yet.
func (s *Store) dayTotals(ctx context.Context, scope, col, region string, from, to time.Time) ([]settlement.BureauTotalsRow, error) {
	const dayFmt = "2006-01-02"
	rows, err := s.pool.Query(ctx, `SELECT day::TEXT FROM console_days WHERE scope = $1 AND region = $2
		AND day >= $3::TEXT::DATE AND day < $4::TEXT::DATE`, scope, region, from.Format(dayFmt), to.Format(dayFmt))
	if err != nil {
		return nil, fmt.Errorf("console day totals of %s: %w", region, err)
	}
	done := map[string]bool{}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, err
		}
		done[d] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Missing days, in runs of consecutive days: one query per run.
	var runStart time.Time
	for d := from; ; d = d.AddDate(0, 0, 1) {
		missing := d.Before(to) && !done[d.Format(dayFmt)]
		switch {
		case missing && runStart.IsZero():
			runStart = d
		case !missing && !runStart.IsZero():
			if err := s.sumDays(ctx, scope, col, region, runStart, d); err != nil {
				return nil, err
			}
			runStart = time.Time{}
		}
		if !d.Before(to) {
			break
		}
	}
	rows, err = s.pool.Query(ctx, `SELECT '', fixmedins_code, med_type, insuplc_admdvs, mdtrtarea_admvs, sum(n),
		sum(medfee_sumamt)::DECIMAL(18,2)::TEXT, sum(fund_pay_sumamt)::DECIMAL(18,2)::TEXT, sum(hifp_pay)::DECIMAL(18,2)::TEXT,
		sum(hifmi_pay)::DECIMAL(18,2)::TEXT, sum(hifob_pay)::DECIMAL(18,2)::TEXT, sum(maf_pay)::DECIMAL(18,2)::TEXT,
		sum(acct_pay)::DECIMAL(18,2)::TEXT, sum(psn_cash_pay)::DECIMAL(18,2)::TEXT
		FROM console_day_totals WHERE scope = $1 AND region = $2 AND day >= $3::TEXT::DATE AND day < $4::TEXT::DATE
		GROUP BY fixmedins_code, med_type, insuplc_admdvs, mdtrtarea_admvs`, scope, region, from.Format(dayFmt), to.Format(dayFmt))
	if err != nil {
		return nil, fmt.Errorf("console day totals of %s: %w", region, err)
	}
	return scanTotalsRows(rows, "console day totals of "+region)
}

// sumDays sums the settlements of whole days [from, to) into
// console_day_totals and marks the days summed, in one transaction. Two
// viewers summing the same days write the same rows: the second's are
// dropped by the primary keys.
func (s *Store) sumDays(ctx context.Context, scope, col, region string, from, to time.Time) error {
	rows, err := s.liveTotals(ctx, col, region, from, to, true)
	if err != nil {
		return err
	}
	return s.txn(ctx, serializable, func(ctx context.Context, ptx pgx.Tx) error {
		var b pgx.Batch
		for _, r := range rows {
			b.Queue(`INSERT INTO console_day_totals (scope, region, day, fixmedins_code, med_type, insuplc_admdvs, mdtrtarea_admvs,
				n, medfee_sumamt, fund_pay_sumamt, hifp_pay, hifmi_pay, hifob_pay, maf_pay, acct_pay, psn_cash_pay)
				VALUES ($1, $2, $3::TEXT::DATE, $4, $5, $6, $7, $8, $9::TEXT::DECIMAL(18,2), $10::TEXT::DECIMAL(18,2),
				$11::TEXT::DECIMAL(18,2), $12::TEXT::DECIMAL(18,2), $13::TEXT::DECIMAL(18,2), $14::TEXT::DECIMAL(18,2),
				$15::TEXT::DECIMAL(18,2), $16::TEXT::DECIMAL(18,2)) ON CONFLICT DO NOTHING`,
				scope, region, r.Day, r.Institution, r.MedType, r.InsuredRegion, r.TreatmentRegion, r.Count,
				r.Medfee.String(), r.Fund.String(), r.Hifp.String(), r.Hifmi.String(), r.Hifob.String(), r.Maf.String(),
				r.Acct.String(), r.Cash.String())
		}
		now := time.Now()
		for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
			b.Queue(`INSERT INTO console_days (scope, region, day, computed_at) VALUES ($1, $2, $3::TEXT::DATE, $4)
				ON CONFLICT DO NOTHING`, scope, region, d.Format("2006-01-02"), now)
		}
		if err := ptx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("storing console day totals of %s: %w", region, err)
		}
		return nil
	})
}

const listCols = `setl_id, setl_time, psn_no, fixmedins_code, insuplc_admdvs, mdtrtarea_admvs, med_type, role, status,
	reverses, medfee_sumamt::TEXT, fund_pay_sumamt::TEXT, acct_pay::TEXT, psn_cash_pay::TEXT`

func scanListRow(row pgx.Row) (settlement.BureauListRow, error) {
	var r settlement.BureauListRow
	var role, status string
	var m [4]string
	if err := row.Scan(&r.SetlID, &r.SetlTime, &r.PsnNo, &r.Institution, &r.InsuredRegion, &r.TreatmentRegion,
		&r.MedType, &role, &status, &r.Reverses, &m[0], &m[1], &m[2], &m[3]); err != nil {
		return r, fmt.Errorf("reading settlement row: %w", err)
	}
	r.Role, r.Status = settlement.Role(role), settlement.SettlementStatus(status)
	return r, scanMoney([]*rules.Money{&r.Medfee, &r.Fund, &r.Acct, &r.Cash}, m[:])
}

// ConsoleSettlements implements settlement.BureauReads. With no institution filter
// and both scopes, the two index scans (insured region, treatment region)
// each return at most a page and are merged here.
func (s *Store) ConsoleSettlements(ctx context.Context, q settlement.BureauListQuery) ([]settlement.BureauListRow, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Institution != "" {
		scope := `(insuplc_admdvs = $2 OR mdtrtarea_admvs = $2)`
		switch q.Scope {
		case settlement.BureauScopeInsured:
			scope = `insuplc_admdvs = $2`
		case settlement.BureauScopeTreated:
			scope = `mdtrtarea_admvs = $2`
		}
		return s.listPage(ctx, q, `fixmedins_code = $1 AND `+scope, q.Institution, q.Region)
	}
	switch q.Scope {
	case settlement.BureauScopeInsured:
		return s.listPage(ctx, q, `insuplc_admdvs = $1`, q.Region)
	case settlement.BureauScopeTreated:
		return s.listPage(ctx, q, `mdtrtarea_admvs = $1`, q.Region)
	}
	a, err := s.listPage(ctx, q, `insuplc_admdvs = $1`, q.Region)
	if err != nil {
		return nil, err
	}
	// Treated here and insured elsewhere: the rest of the region's rows.
	b, err := s.listPage(ctx, q, `mdtrtarea_admvs = $1 AND insuplc_admdvs <> $1`, q.Region)
	if err != nil {
		return nil, err
	}
	all := append(a, b...)
	slices.SortFunc(all, func(x, y settlement.BureauListRow) int { return -compareCursor(x.Cursor(), y.Cursor()) })
	if q.Before != nil {
		// Rows newer than the cursor: the page is the oldest Limit of them.
		if len(all) > q.Limit {
			all = all[len(all)-q.Limit:]
		}
	} else if len(all) > q.Limit {
		all = all[:q.Limit]
	}
	return all, nil
}

func compareCursor(a, b settlement.BureauCursor) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// listPage runs one keyset query: where (with its own arguments first) and
// the query's filters, newest first, at most q.Limit rows.
func (s *Store) listPage(ctx context.Context, q settlement.BureauListQuery, where string, args ...any) ([]settlement.BureauListRow, error) {
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + listCols + ` FROM settlements WHERE ` + where)
	if q.MedType != "" {
		b.WriteString(` AND med_type = ` + arg(q.MedType))
	}
	if !q.From.IsZero() {
		b.WriteString(` AND setl_time >= ` + arg(q.From))
	}
	if !q.To.IsZero() {
		b.WriteString(` AND setl_time < ` + arg(q.To))
	}
	// The keyset condition is written so that its leading term bounds the
	// index range on setl_time in PostgreSQL and CockroachDB alike.
	order := ` ORDER BY setl_time DESC, setl_id DESC`
	switch {
	case q.Before != nil:
		t, id := arg(q.Before.Time), arg(q.Before.ID)
		b.WriteString(` AND setl_time >= ` + t + ` AND (setl_time > ` + t + ` OR setl_id > ` + id + `)`)
		order = ` ORDER BY setl_time, setl_id`
	case q.After != nil:
		t, id := arg(q.After.Time), arg(q.After.ID)
		b.WriteString(` AND setl_time <= ` + t + ` AND (setl_time < ` + t + ` OR setl_id < ` + id + `)`)
	}
	b.WriteString(order + ` LIMIT ` + arg(q.Limit))
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("listing settlements: %w", err)
	}
	out, err := collect(rows, scanListRow)
	if err != nil {
		return nil, fmt.Errorf("listing settlements: %w", err)
	}
	if q.Before != nil {
		slices.Reverse(out)
	}
	return out, nil
}

// ConsoleSettlement implements settlement.BureauReads: primary-key lookups only
// (and the visit's other settlements through the person's ledger chain).
func (s *Store) ConsoleSettlement(ctx context.Context, region, setlID string) (*settlement.BureauDetail, error) {
	var out *settlement.BureauDetail
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ptx pgx.Tx) error {
		out = nil
		st, err := scanSettlement(ptx.QueryRow(ctx, `SELECT `+settlementCols+` FROM settlements
			WHERE setl_id = $1 AND (insuplc_admdvs = $2 OR mdtrtarea_admvs = $2)`, setlID, region))
		if err != nil || st == nil {
			return err
		}
		d := &settlement.BureauDetail{Settlement: *st}
		if d.Lines, err = allLines(ctx, ptx, st.MdtrtID); err != nil {
			return err
		}
		if d.Txn, err = ledgerTxn(ctx, ptx, st.LedgerTxnID); err != nil {
			return err
		}
		if d.Txn != nil {
			err := ptx.QueryRow(ctx, `SELECT seq, hash FROM chain_heads WHERE chain = $1`, d.Txn.Chain).Scan(&d.Head.Seq, &d.Head.Hash)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("reading chain head %s: %w", d.Txn.Chain, err)
			}
			if d.Txn.Seq > 1 {
				err := ptx.QueryRow(ctx, `SELECT hash FROM ledger_txns WHERE chain = $1 AND seq = $2`, d.Txn.Chain, d.Txn.Seq-1).Scan(&d.PrevHash)
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("reading the previous link of %s: %w", d.Txn.ID, err)
				}
			}
		}
		// The visit's other settlements are the person's: found through
		// the person's ledger chain (an index range of ledger_txns), then
		// by primary key. An index of settlements by visit would cost every
		// settlement an entry for this page alone (migration 0010).
		chain := settlement.ChainOf(st.PsnNo)
		if d.Txn != nil {
			chain = d.Txn.Chain
		}
		rows, err := ptx.Query(ctx, `SELECT `+listCols+` FROM settlements
			WHERE setl_id IN (SELECT setl_id FROM ledger_txns WHERE chain = $1)
			AND mdtrt_id = $2 AND setl_id <> $3 AND (insuplc_admdvs = $4 OR mdtrtarea_admvs = $4)
			ORDER BY setl_time, setl_id LIMIT 100`, chain, st.MdtrtID, st.SetlID, region)
		if err != nil {
			return fmt.Errorf("reading settlements of visit %s: %w", st.MdtrtID, err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanListRow(rows)
			if err != nil {
				return err
			}
			d.Related = append(d.Related, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		out = d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console settlement %s: %w", setlID, err)
	}
	return out, nil
}

// allLines returns every line of a visit, withdrawn ones included.
func allLines(ctx context.Context, ptx pgx.Tx, mdtrtID string) ([]settlement.FeeLine, error) {
	rows, err := ptx.Query(ctx, `SELECT `+feeLineCols+` FROM fee_lines
		WHERE mdtrt_id = $1 ORDER BY fee_ocur_time, feedetl_sn LIMIT 1000`, mdtrtID)
	if err != nil {
		return nil, fmt.Errorf("reading lines of %s: %w", mdtrtID, err)
	}
	return scanFeeLines(rows, mdtrtID)
}

// ledgerTxn reads one ledger transaction with its entries in order, or nil.
func ledgerTxn(ctx context.Context, ptx pgx.Tx, id string) (*settlement.LedgerTxn, error) {
	if id == "" {
		return nil, nil
	}
	var t settlement.LedgerTxn
	err := ptx.QueryRow(ctx, `SELECT txn_id, chain, seq, prev_hash, hash, kind, setl_id, txn_time FROM ledger_txns WHERE txn_id = $1`, id).
		Scan(&t.ID, &t.Chain, &t.Seq, &t.PrevHash, &t.Hash, &t.Kind, &t.SetlID, &t.Time)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ledger txn %s: %w", id, err)
	}
	t.Time = t.Time.UTC()
	rows, err := ptx.Query(ctx, `SELECT account, amount::TEXT FROM ledger_entries WHERE txn_id = $1 ORDER BY ordinal`, id)
	if err != nil {
		return nil, fmt.Errorf("reading entries of %s: %w", id, err)
	}
	t.Entries, err = collect(rows, scanEntry)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
