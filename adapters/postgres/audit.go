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
	rep := &settlement.AuditReport{}
	err := s.txn(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly}, func(ctx context.Context, ptx pgx.Tx) error {
		*rep = settlement.AuditReport{}
		txns, err := auditChains(ctx, ptx, rep)
		if err != nil {
			return err
		}
		return auditSettlements(ctx, ptx, txns, rep)
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return rep, nil
}

func auditChains(ctx context.Context, ptx pgx.Tx, rep *settlement.AuditReport) (map[string]*settlement.LedgerTxn, error) {
	heads := map[string]settlement.ChainHead{}
	rows, err := ptx.Query(ctx, `SELECT chain, seq, hash FROM chain_heads`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var c string
		var h settlement.ChainHead
		if err := rows.Scan(&c, &h.Seq, &h.Hash); err != nil {
			return nil, err
		}
		heads[c] = h
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rep.Chains = len(heads)

	// Entries are joined in (txn, ordinal) order; a LEFT JOIN keeps a
	// transaction whose entries were all deleted, so that its hash breaks.
	rows, err = ptx.Query(ctx, `SELECT t.txn_id, t.chain, t.seq, t.prev_hash, t.hash, t.kind, t.setl_id, t.txn_time,
		e.ordinal, e.account, e.amount::TEXT
		FROM ledger_txns t LEFT JOIN ledger_entries e ON e.txn_id = t.txn_id
		ORDER BY t.chain, t.seq, t.txn_id, e.ordinal`)
	if err != nil {
		return nil, err
	}
	v := settlement.NewChainVerifier()
	txns := map[string]*settlement.LedgerTxn{}
	var cur *settlement.LedgerTxn
	flush := func() {
		if cur != nil {
			v.Add(cur)
		}
	}
	for rows.Next() {
		var t settlement.LedgerTxn
		var ordinal *int32
		var account, amount *string
		if err := rows.Scan(&t.ID, &t.Chain, &t.Seq, &t.PrevHash, &t.Hash, &t.Kind, &t.SetlID, &t.Time,
			&ordinal, &account, &amount); err != nil {
			return nil, err
		}
		if cur == nil || cur.ID != t.ID {
			flush()
			t.Time = t.Time.UTC()
			cur = &t
			txns[t.ID] = cur
		}
		if ordinal != nil {
			m, err := rules.ParseMoney(*amount)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("txn %s entry %d: amount %q unreadable", cur.ID, *ordinal, *amount))
				continue
			}
			if int(*ordinal) != len(cur.Entries) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("txn %s: entry ordinal %d where %d was expected (entry deleted or moved)", cur.ID, *ordinal, len(cur.Entries)))
			}
			cur.Entries = append(cur.Entries, settlement.Entry{Account: *account, Amount: m})
			rep.Entries++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	flush()
	v.Finish(heads)
	rep.Txns = v.Txns
	rep.Problems = append(rep.Problems, v.Problems...)

	var orphans int
	if err := ptx.QueryRow(ctx, `SELECT count(*) FROM ledger_entries e
		WHERE NOT EXISTS (SELECT 1 FROM ledger_txns t WHERE t.txn_id = e.txn_id)`).Scan(&orphans); err != nil {
		return nil, err
	}
	if orphans > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d ledger entries belong to no transaction", orphans))
	}
	return txns, nil
}

func auditSettlements(ctx context.Context, ptx pgx.Tx, txns map[string]*settlement.LedgerTxn, rep *settlement.AuditReport) error {
	rows, err := ptx.Query(ctx, `SELECT `+settlementCols+` FROM settlements ORDER BY psn_no, year, setl_time, setl_id`)
	if err != nil {
		return err
	}
	type key struct {
		psn  string
		year int
	}
	deltas := map[key][]settlement.Delta{}
	claimed := map[string]bool{}
	for rows.Next() {
		s, err := scanSettlement(rows)
		if err != nil {
			return err
		}
		rep.Settlements++
		rep.Problems = append(rep.Problems, settlement.CheckSettlement(s, txns[s.LedgerTxnID])...)
		claimed[s.LedgerTxnID] = true
		if s.Role == settlement.RoleTreatment {
			continue // the person's counters are kept by the insured province
		}
		k := key{s.PsnNo, s.Year}
		deltas[k] = append(deltas[k], s.Delta)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// Clearing postings claim their own transactions.
	crow, err := ptx.Query(ctx, `SELECT ledger_txn_id FROM clearings WHERE ledger_txn_id <> ''`)
	if err != nil {
		return err
	}
	for crow.Next() {
		var id string
		if err := crow.Scan(&id); err != nil {
			return err
		}
		if txns[id] == nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("clearing posting names ledger transaction %s, which is missing", id))
		}
		claimed[id] = true
	}
	if err := crow.Err(); err != nil {
		return err
	}
	for id, t := range txns {
		if !claimed[id] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("ledger transaction %s (chain %s seq %d) has no settlement", id, t.Chain, t.Seq))
		}
	}

	rows, err = ptx.Query(ctx, `SELECT psn_no, year, `+counterCols+` FROM person_counters`)
	if err != nil {
		return err
	}
	for rows.Next() {
		yc := settlement.YearCounters{}
		if err := scanCounters(rows, &yc, &yc.PsnNo, &yc.Year); err != nil {
			return err
		}
		rep.Counters++
		k := key{yc.PsnNo, yc.Year}
		if want := settlement.ReplayCounters(yc.OpeningBalc, deltas[k]); want != yc.Counters {
			rep.Problems = append(rep.Problems, fmt.Sprintf("counters of %s for %d are %+v, the settlements sum to %+v",
				yc.PsnNo, yc.Year, yc.Counters, want))
		}
		delete(deltas, k)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for k := range deltas {
		rep.Problems = append(rep.Problems, fmt.Sprintf("settlements of %s in %d but no counters row", k.psn, k.year))
	}
	return nil
}
