package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/medsettle/medsettle/settlement"
)

// Audit checks what the PostgreSQL store's Audit checks (settlement.Auditor),
// on one consistent view of the store: every hash chain replayed from genesis
// against its head, every transaction balanced, every settlement's amounts
// equal to its ledger entries, every ledger transaction claimed by a
// settlement or a clearing posting, and every person-year's counters equal to
// the opening balance plus the deltas of its settlements.
func (s *Store) Audit(ctx context.Context) (*settlement.AuditReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := settlement.NewAuditor()
	s.auditChains(a)
	s.auditSettlements(a)
	return a.Report(), nil
}

// auditChains feeds the ledger to a in the order PostgreSQL reads it.
func (s *Store) auditChains(a *settlement.Auditor) {
	ordered := make([]settlement.LedgerTxn, len(s.d.txns))
	copy(ordered, s.d.txns)
	slices.SortFunc(ordered, func(a, b settlement.LedgerTxn) int {
		return cmp.Or(strings.Compare(a.Chain, b.Chain), cmp.Compare(a.Seq, b.Seq), strings.Compare(a.ID, b.ID))
	})
	for i := range ordered {
		a.Txn(&ordered[i])
	}
	a.Heads(s.d.heads)
}

// auditSettlements feeds the settlements, clearing postings and counters to a.
func (s *Store) auditSettlements(a *settlement.Auditor) {
	all := make([]settlement.Settlement, 0, len(s.d.settlements))
	for _, r := range s.d.settlements {
		all = append(all, readSettlement(r.s))
	}
	slices.SortFunc(all, func(a, b settlement.Settlement) int {
		return cmp.Or(strings.Compare(a.PsnNo, b.PsnNo), cmp.Compare(a.Year, b.Year),
			a.SetlTime.Compare(b.SetlTime), strings.Compare(a.SetlID, b.SetlID))
	})
	for i := range all {
		a.Settlement(&all[i])
	}
	var posted []string
	for _, r := range s.d.clearings {
		if r.LedgerTxnID != "" {
			posted = append(posted, r.LedgerTxnID)
		}
	}
	a.Claims(posted)
	for _, yc := range s.d.counters {
		a.Counters(&yc)
	}
}

// Events returns the outbox: every event written with a ledger
// transaction, in the order written. (The store publishes nothing.)
func (s *Store) Events() []settlement.Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]settlement.Event, len(s.d.outbox))
	for i, r := range s.d.outbox {
		out[i] = r.ev
		out[i].Payload = slices.Clone(r.ev.Payload)
	}
	return out
}

// LedgerTxns returns the ledger transactions of a chain in seq order.
func (s *Store) LedgerTxns(chain string) []settlement.LedgerTxn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []settlement.LedgerTxn
	for _, t := range s.d.txns {
		if t.Chain == chain {
			t.Entries = slices.Clone(t.Entries)
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b settlement.LedgerTxn) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}
