package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/settlement"
)

// The ledger: chain heads, and ledger transactions appended with their
// entries and their outbox event.

const chainHeadSQL = `SELECT seq, hash FROM chain_heads WHERE chain = $1`

func (t *tx) ChainHead(ctx context.Context, chain string) (settlement.ChainHead, error) {
	if v, ok, err := t.take(ctx, "chain:"+chain); ok {
		h, _ := v.(settlement.ChainHead)
		return h, err
	}
	return scanChainHead(t.queryRow(ctx, chainHeadSQL, chain), chain)
}

func scanChainHead(row pgx.Row, chain string) (settlement.ChainHead, error) {
	var h settlement.ChainHead
	err := row.Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return settlement.ChainHead{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("reading chain head %s: %w", chain, err)
	}
	return h, nil
}

// insertEntries is the statement that appends n entries of a ledger txn:
// one multi-row VALUES list, the txn id $1, then ordinal, account and amount
// of each entry. Its text depends only on n, so it is built once per n
// (a settlement appends the same few counts again and again) and prepared
// once per connection.
func insertEntries(n int) string {
	if sql, ok := entriesSQL.Load(n); ok {
		return sql.(string)
	}
	var sql strings.Builder
	sql.WriteString(`INSERT INTO ledger_entries (txn_id, ordinal, account, amount) VALUES `)
	for i := range n {
		if i > 0 {
			sql.WriteString(", ")
		}
		p := 1 + 3*i
		fmt.Fprintf(&sql, "($1, $%d::INT8, $%d, $%d::TEXT::DECIMAL(18,2))", p+1, p+2, p+3)
	}
	v, _ := entriesSQL.LoadOrStore(n, sql.String())
	return v.(string)
}

var entriesSQL sync.Map // entry count → insertEntries(count)

func (t *tx) AppendLedger(ctx context.Context, lt *settlement.LedgerTxn, ev *settlement.Event) error {
	t.forget("chain:" + lt.Chain)
	// Advancing the head is conditional on it still being where this
	// transaction read it: a concurrent append to the chain makes this one
	// fail (and retry) instead of forking the chain. Both statements fail on
	// the server when the head is elsewhere (the insert on the primary key).
	if lt.Seq == 1 {
		t.queue(wrapErr("starting chain %s", lt.Chain), `INSERT INTO chain_heads (chain, seq, hash) VALUES ($1, $2, $3)`,
			lt.Chain, lt.Seq, lt.Hash)
	} else {
		t.queueOne("advancing chain %s past seq %d", []any{lt.Chain, lt.Seq - 1},
			`UPDATE chain_heads SET seq = $2, hash = $3 WHERE chain = $1 AND seq = $4`, lt.Chain, lt.Seq, lt.Hash, lt.Seq-1)
	}
	t.queue(wrapErr("appending ledger txn %s", lt.ID), `INSERT INTO ledger_txns (txn_id, chain, seq, prev_hash, hash, kind, setl_id, txn_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, lt.ID, lt.Chain, lt.Seq, lt.PrevHash, lt.Hash, lt.Kind, lt.SetlID, lt.Time)
	if len(lt.Entries) > 0 {
		args := make([]any, 0, 1+3*len(lt.Entries))
		args = append(args, lt.ID)
		for i, e := range lt.Entries {
			args = append(args, i, e.Account, e.Amount.String())
		}
		t.queue(wrapErr("appending the entries of ledger txn %s", lt.ID), insertEntries(len(lt.Entries)), args...)
	}
	if ev != nil {
		t.queue(wrapErr("writing event %s to the outbox", ev.ID), `INSERT INTO outbox_events (part, chain, seq, event_id, event_type, event_key, payload, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, settlement.OutboxPart(ev.Key), lt.Chain, lt.Seq, ev.ID, ev.Type, ev.Key,
			string(ev.Payload), lt.Time)
	}
	return nil
}
