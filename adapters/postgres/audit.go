package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Audit recomputes every hash chain from genesis, checks that every ledger
// transaction balances, that every settlement's amounts equal its ledger
// entries, and that every person's counters equal the sum of their
// settlements. It reads one consistent snapshot (a read-only SERIALIZABLE
// transaction) and names each row at fault.
//
// Like every transaction of the store it is retried whole on a serialization
// failure, so the report is rebuilt from scratch on each attempt.
//
// It holds the settlements and counters in memory: fine for a province's
// day-to-day volume on one node; a national volume would audit per partition.
func (s *Store) Audit(ctx context.Context) (*settlement.AuditReport, error) {
	var rep *settlement.AuditReport
	err := s.txn(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly}, func(ctx context.Context, ptx pgx.Tx) error {
		a := settlement.NewAuditor()
		if err := auditChains(ctx, ptx, a); err != nil {
			return err
		}
		if err := auditSettlements(ctx, ptx, a); err != nil {
			return err
		}
		rep = a.Report()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return rep, nil
}

// auditChains feeds the chain heads and the ledger to a, and reports what
// only the tables show: an entry that does not read or is out of its
// transaction's order, and entries of no transaction.
func auditChains(ctx context.Context, ptx pgx.Tx, a *settlement.Auditor) error {
	heads := map[string]settlement.ChainHead{}
	rows, err := ptx.Query(ctx, `SELECT chain, seq, hash FROM chain_heads`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c string
		var h settlement.ChainHead
		if err := rows.Scan(&c, &h.Seq, &h.Hash); err != nil {
			return err
		}
		heads[c] = h
	}
	if err := rows.Err(); err != nil {
		return err
	}

	// Entries are joined in (txn, ordinal) order; a LEFT JOIN keeps a
	// transaction whose entries were all deleted, so that its hash breaks.
	rows, err = ptx.Query(ctx, `SELECT t.txn_id, t.chain, t.seq, t.prev_hash, t.hash, t.kind, t.setl_id, t.txn_time,
		e.ordinal, e.account, e.amount::TEXT
		FROM ledger_txns t LEFT JOIN ledger_entries e ON e.txn_id = t.txn_id
		ORDER BY t.chain, t.seq, t.txn_id, e.ordinal`)
	if err != nil {
		return err
	}
	var cur *settlement.LedgerTxn
	for rows.Next() {
		var t settlement.LedgerTxn
		var ordinal *int32
		var account, amount *string
		if err := rows.Scan(&t.ID, &t.Chain, &t.Seq, &t.PrevHash, &t.Hash, &t.Kind, &t.SetlID, &t.Time,
			&ordinal, &account, &amount); err != nil {
			return err
		}
		if cur == nil || cur.ID != t.ID {
			if cur != nil {
				a.Txn(cur)
			}
			t.Time = t.Time.UTC()
			cur = &t
		}
		if ordinal != nil {
			m, err := rules.ParseMoney(*amount)
			if err != nil {
				a.Problem("txn %s entry %d: amount %q unreadable", cur.ID, *ordinal, *amount)
				continue
			}
			if int(*ordinal) != len(cur.Entries) {
				a.Problem("txn %s: entry ordinal %d where %d was expected (entry deleted or moved)", cur.ID, *ordinal, len(cur.Entries))
			}
			cur.Entries = append(cur.Entries, settlement.Entry{Account: *account, Amount: m})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if cur != nil {
		a.Txn(cur)
	}
	a.Heads(heads)

	var orphans int
	if err := ptx.QueryRow(ctx, `SELECT count(*) FROM ledger_entries e
		WHERE NOT EXISTS (SELECT 1 FROM ledger_txns t WHERE t.txn_id = e.txn_id)`).Scan(&orphans); err != nil {
		return err
	}
	if orphans > 0 {
		a.Problem("%d ledger entries belong to no transaction", orphans)
	}
	return nil
}

// auditSettlements feeds the settlements, clearing postings and counters to a.
func auditSettlements(ctx context.Context, ptx pgx.Tx, a *settlement.Auditor) error {
	rows, err := ptx.Query(ctx, `SELECT `+settlementCols+` FROM settlements ORDER BY psn_no, year, setl_time, setl_id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		s, err := scanSettlement(rows)
		if err != nil {
			return err
		}
		a.Settlement(s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// Clearing postings claim their own transactions.
	crow, err := ptx.Query(ctx, `SELECT ledger_txn_id FROM clearings WHERE ledger_txn_id <> ''`)
	if err != nil {
		return err
	}
	var posted []string
	for crow.Next() {
		var id string
		if err := crow.Scan(&id); err != nil {
			return err
		}
		posted = append(posted, id)
	}
	if err := crow.Err(); err != nil {
		return err
	}
	a.Claims(posted)

	rows, err = ptx.Query(ctx, `SELECT psn_no, year, `+counterCols+` FROM person_counters`)
	if err != nil {
		return err
	}
	for rows.Next() {
		yc := settlement.YearCounters{}
		if err := scanCounters(rows, &yc, &yc.PsnNo, &yc.Year); err != nil {
			return err
		}
		a.Counters(&yc)
	}
	return rows.Err()
}
