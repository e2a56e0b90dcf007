package postgres

// The bureau console's read side (settlement.BureauReads). Every query is a range
// scan of an index led by the region (settlements_by_region, and
// settlements_by_treatment_region of migration 0006) or by the institution,
// bounded by time and, for lists, by a keyset cursor and a LIMIT: a page
// view costs what the page shows, not what the table holds.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// ConsoleClearing implements settlement.BureauReads. The open items are read by
// settlements_uncleared_remote (role, cleared_period, setl_time) and grouped here by
// counterparty; the postings by the clearings primary key (period first); the
// region's share of a posting by primary-key lookups of its items.
func (s *Store) ConsoleClearing(ctx context.Context, region string, period settlement.Period, provinces []string) (*settlement.BureauClearing, error) {
	out := &settlement.BureauClearing{Period: period}
	var err error
	if out.Open, err = s.clearingOpen(ctx, region, period.End()); err != nil {
		return nil, err
	}
	if out.Postings, err = s.clearingPostings(ctx, region, period); err != nil {
		return nil, err
	}
	if len(provinces) > 0 {
		if out.Advances, err = s.advanceBalances(ctx, provinces); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// clearingOpen are the region's open items settled before end: receivables
// (treated at the region's institutions, insured in another province) and
// payables (insured in the region, treated in another province).
func (s *Store) clearingOpen(ctx context.Context, region string, end time.Time) ([]settlement.BureauOpenItems, error) {
	var open []settlement.BureauOpenItems
	for _, side := range []struct {
		role     settlement.Role
		dir      settlement.ClearingDirection
		mine, cp string
	}{
		{settlement.RoleTreatment, settlement.Receivable, "mdtrtarea_admvs", "insuplc_admdvs"},
		{settlement.RoleInsured, settlement.Payable, "insuplc_admdvs", "mdtrtarea_admvs"},
	} {
		// The role is written out so that the partial index of 0006 applies.
		rows, err := s.pool.Query(ctx, `SELECT `+side.cp+`, sum(CASE WHEN reverses = '' THEN 1 ELSE -1 END),
			COALESCE(sum(fund_pay_sumamt + acct_pay), 0)::DECIMAL(18,2)::TEXT
			FROM settlements WHERE role = '`+string(side.role)+`' AND cleared_period = '' AND setl_time < $1 AND `+side.mine+` = $2
			GROUP BY `+side.cp, end, region)
		if err != nil {
			return nil, fmt.Errorf("console clearing of %s: %w", region, err)
		}
		byProv := map[string]*settlement.BureauOpenItems{}
		for rows.Next() {
			var reg, amt string
			var n int64
			if err := rows.Scan(&reg, &n, &amt); err != nil {
				rows.Close()
				return nil, err
			}
			m, err := money(amt)
			if err != nil {
				rows.Close()
				return nil, err
			}
			prov := rules.ProvinceOf(reg)
			it := byProv[prov]
			if it == nil {
				it = &settlement.BureauOpenItems{Counterparty: prov, Direction: side.dir}
				byProv[prov] = it
			}
			it.Count += n
			it.Amount += m
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, it := range byProv {
			open = append(open, *it)
		}
	}
	slices.SortFunc(open, func(a, b settlement.BureauOpenItems) int {
		return strings.Compare(string(a.Direction)+a.Counterparty, string(b.Direction)+b.Counterparty)
	})
	return open, nil
}

// clearingPostings are the clearing postings of period, each payment and
// receipt with the region's share of its items.
func (s *Store) clearingPostings(ctx context.Context, region string, period settlement.Period) ([]settlement.BureauPosting, error) {
	rows, err := s.pool.Query(ctx, `SELECT counterparty, kind, total::TEXT, items, ledger_txn_id, created_at
		FROM clearings WHERE period = $1 ORDER BY counterparty, kind`, string(period))
	if err != nil {
		return nil, fmt.Errorf("console clearing postings of %s: %w", period, err)
	}
	type raw struct {
		p     settlement.BureauPosting
		items string
	}
	var raws []raw
	for rows.Next() {
		var r raw
		var total string
		if err := rows.Scan(&r.p.Counterparty, &r.p.Kind, &total, &r.items, &r.p.LedgerTxnID, &r.p.Created); err != nil {
			rows.Close()
			return nil, err
		}
		if r.p.Total, err = money(total); err != nil {
			rows.Close()
			return nil, err
		}
		raws = append(raws, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var postings []settlement.BureauPosting
	for _, r := range raws {
		p := r.p
		if p.Kind == settlement.TxnClearPay || p.Kind == settlement.TxnClearReceive {
			var vs []settlement.Verdict
			if err := json.Unmarshal([]byte(r.items), &vs); err != nil {
				return nil, fmt.Errorf("clearing %s/%s/%s items: %w", period, p.Counterparty, p.Kind, err)
			}
			if err := s.regionShare(ctx, region, &p, vs); err != nil {
				return nil, err
			}
		}
		postings = append(postings, p)
	}
	return postings, nil
}

// regionShare adds to p the region's items of vs and their sums. The
// region's items: the original settlement (whose setl_id both sides share)
// is the region's insured (payments) or treated (receipts) one.
func (s *Store) regionShare(ctx context.Context, region string, p *settlement.BureauPosting, vs []settlement.Verdict) error {
	col := "insuplc_admdvs"
	if p.Kind == settlement.TxnClearReceive {
		col = "mdtrtarea_admvs"
	}
	ids := make([]string, 0, len(vs))
	for _, v := range vs {
		ids = append(ids, v.Item.OrigSetlID)
	}
	mine := map[string]bool{}
	for chunk := range slices.Chunk(ids, 1000) {
		rows, err := s.pool.Query(ctx, `SELECT setl_id FROM settlements WHERE setl_id = ANY($1) AND `+col+` = $2`, chunk, region)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			mine[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, v := range vs {
		if !mine[v.Item.OrigSetlID] {
			continue
		}
		p.Items = append(p.Items, v)
		if v.Confirmed {
			p.Confirmed += v.Item.Amount
			p.NConfirmed++
		} else {
			p.Disputed += v.Item.Amount
			p.NDisputed++
		}
	}
	return nil
}

// advanceBalances are the balances of the advance funds of provinces.
func (s *Store) advanceBalances(ctx context.Context, provinces []string) ([]settlement.BureauBalance, error) {
	accts := make([]string, len(provinces))
	for i, p := range provinces {
		accts[i] = settlement.AdvanceAccount(p)
	}
	rows, err := s.pool.Query(ctx, `SELECT account, COALESCE(sum(amount), 0)::DECIMAL(18,2)::TEXT
		FROM ledger_entries WHERE account = ANY($1) AND `+interProvinceAccounts+` GROUP BY account ORDER BY account`, accts)
	if err != nil {
		return nil, fmt.Errorf("advance balances: %w", err)
	}
	return collect(rows, scanBalance)
}

var _ settlement.BureauAlertReads = (*Store)(nil)

// ConsoleAlerts implements settlement.BureauAlertReads: a range scan of
// alert_regions (admdvs, raised_at, alert_id), then the alerts by primary
// key. A database without the monitor's tables has no alerts to show.
func (s *Store) ConsoleAlerts(ctx context.Context, region string, from, to time.Time, limit int) ([]settlement.BureauAlertRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.alert_id, a.rule, a.psn_no, a.insuplc_admdvs, a.regions, a.evidence, a.detail, a.raised_at
		FROM alert_regions r JOIN alerts a ON a.alert_id = r.alert_id
		WHERE r.admdvs = $1 AND r.raised_at >= $2 AND r.raised_at < $3
		ORDER BY r.raised_at DESC, r.alert_id DESC LIMIT $4`, region, from, to, limit)
	if sqlState(err) == "42P01" { // undefined_table
		return nil, settlement.ErrNoAlerts
	}
	if err != nil {
		return nil, fmt.Errorf("console alerts of %s: %w", region, err)
	}
	defer rows.Close()
	var out []settlement.BureauAlertRow
	for rows.Next() {
		var a settlement.BureauAlertRow
		var regions, evidence string
		if err := rows.Scan(&a.ID, &a.Rule, &a.PsnNo, &a.InsuredRegion, &regions, &evidence, &a.Detail, &a.RaisedAt); err != nil {
			return nil, fmt.Errorf("console alerts of %s: %w", region, err)
		}
		_ = json.Unmarshal([]byte(regions), &a.Regions)
		if json.Unmarshal([]byte(evidence), &a.Evidence) != nil {
			a.Evidence, a.EvidenceText = nil, evidence
		}
		out = append(out, a)
	}
	if sqlState(rows.Err()) == "42P01" {
		return nil, settlement.ErrNoAlerts
	}
	return out, rows.Err()
}
