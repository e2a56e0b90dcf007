package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Column conversions shared by the row mappings: amounts as decimal text,
// dates as text.

func money(s string) (rules.Money, error) {
	m, err := rules.ParseMoney(s)
	if err != nil {
		return 0, fmt.Errorf("stored amount %q: %w", s, err)
	}
	return m, nil
}

// scanMoney parses several DECIMAL-as-TEXT columns at once.
func scanMoney(dst []*rules.Money, src []string) error {
	for i := range dst {
		m, err := money(src[i])
		if err != nil {
			return err
		}
		*dst[i] = m
	}
	return nil
}

func optDate(d rules.Date) any {
	if d == 0 {
		return nil
	}
	return d.String()
}

// collect reads every row of rows through scan and closes them; no rows
// read as nil (not an empty slice), as the loops it replaced returned.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	return pgx.AppendRows([]T(nil), rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// scanEntry and scanBalance read a row of (account, amount::TEXT): a ledger
// entry, an account's balance.
func scanEntry(r pgx.Row) (settlement.Entry, error) {
	var e settlement.Entry
	var err error
	e.Account, e.Amount, err = scanAccountAmount(r)
	return e, err
}

func scanBalance(r pgx.Row) (settlement.BureauBalance, error) {
	var b settlement.BureauBalance
	var err error
	b.Account, b.Amount, err = scanAccountAmount(r)
	return b, err
}

func scanAccountAmount(r pgx.Row) (string, rules.Money, error) {
	var acct, amt string
	if err := r.Scan(&acct, &amt); err != nil {
		return "", 0, err
	}
	m, err := money(amt)
	return acct, m, err
}
