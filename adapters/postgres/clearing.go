package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The clearing part of settlement.Tx (settlement.ClearingStore).

// unclearedWhere selects a role's settlements not yet cleared before a time;
// role <> 'local' lets the planner use the partial settlements_uncleared_remote.
const unclearedWhere = `WHERE role = $1 AND role <> 'local' AND cleared_period = '' AND setl_time < $2
	ORDER BY setl_time, setl_id`

func (t *tx) Uncleared(ctx context.Context, role settlement.Role, before time.Time) ([]settlement.Settlement, error) {
	return t.settlements(ctx, unclearedWhere, string(role), before)
}

func (t *tx) ClearingRecord(ctx context.Context, period settlement.Period, counterparty, kind string) (*settlement.ClearingRecord, error) {
	r := settlement.ClearingRecord{Period: period, Counterparty: counterparty, Kind: kind}
	var total, items string
	err := t.queryRow(ctx, `SELECT total::TEXT, items, ledger_txn_id, created_at FROM clearings
		WHERE period = $1 AND counterparty = $2 AND kind = $3`, string(period), counterparty, kind).
		Scan(&total, &items, &r.LedgerTxnID, &r.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading clearing %s/%s/%s: %w", period, counterparty, kind, err)
	}
	if r.Total, err = money(total); err != nil {
		return nil, err
	}
	r.Items = []byte(items)
	return &r, nil
}

func (t *tx) PutClearingRecord(ctx context.Context, r *settlement.ClearingRecord) error {
	t.queue(wrapErr("storing clearing %s/%s/%s", r.Period, r.Counterparty, r.Kind),
		`INSERT INTO clearings (period, counterparty, kind, total, items, ledger_txn_id, created_at)
		VALUES ($1, $2, $3, $4::TEXT::DECIMAL(18,2), $5, $6, $7)`,
		string(r.Period), r.Counterparty, r.Kind, r.Total.String(), string(r.Items), r.LedgerTxnID, r.Created)
	return nil
}

func (t *tx) ClearingRecords(ctx context.Context, counterparty, kind string) ([]settlement.ClearingRecord, error) {
	rows, err := t.query(ctx, `SELECT period, total::TEXT, ledger_txn_id, created_at FROM clearings
		WHERE counterparty = $1 AND kind = $2 ORDER BY period`, counterparty, kind)
	if err != nil {
		return nil, fmt.Errorf("reading clearings with %s: %w", counterparty, err)
	}
	defer rows.Close()
	var out []settlement.ClearingRecord
	for rows.Next() {
		r := settlement.ClearingRecord{Counterparty: counterparty, Kind: kind}
		var period, total string
		if err := rows.Scan(&period, &total, &r.LedgerTxnID, &r.Created); err != nil {
			return nil, err
		}
		r.Period = settlement.Period(period)
		if r.Total, err = money(total); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (t *tx) MarkCleared(ctx context.Context, setlIDs []string, period settlement.Period) error {
	if len(setlIDs) == 0 {
		return nil
	}
	tag, err := t.exec(ctx, `UPDATE settlements SET cleared_period = $2 WHERE setl_id = ANY($1) AND cleared_period = ''`,
		setlIDs, string(period))
	if err != nil {
		return fmt.Errorf("marking settlements cleared in %s: %w", period, err)
	}
	if int(tag.RowsAffected()) != len(setlIDs) {
		return fmt.Errorf("marking settlements cleared in %s: %d of %d were open", period, tag.RowsAffected(), len(setlIDs))
	}
	return nil
}

// interProvinceAccounts is the predicate of the partial index
// ledger_entries_interprovince (migration 0007), word for word: a query on
// these accounts states it so that the planner can prove the index applies.
const interProvinceAccounts = `(account LIKE 'advance:%' OR account LIKE 'received:%' OR account LIKE 'clearing:%')`

// isInterProvince says whether an account is one interProvinceAccounts covers.
func isInterProvince(account string) bool {
	for _, prefix := range []string{"advance:", "received:", "clearing:"} {
		if strings.HasPrefix(account, prefix) {
			return true
		}
	}
	return false
}

// balanceSQL sums the entries of the account $1.
func balanceSQL(account string) string {
	where := `account = $1`
	if isInterProvince(account) {
		where += ` AND ` + interProvinceAccounts
	}
	return `SELECT COALESCE(sum(amount), 0)::DECIMAL(18,2)::TEXT FROM ledger_entries WHERE ` + where
}

// Balance sums an account's entries: through the partial index for an
// account between provinces, by a scan for any other (tools and tests).
func (t *tx) Balance(ctx context.Context, account string) (rules.Money, error) {
	var s string
	if err := t.queryRow(ctx, balanceSQL(account), account).Scan(&s); err != nil {
		return 0, fmt.Errorf("balance of %s: %w", account, err)
	}
	return money(s)
}
