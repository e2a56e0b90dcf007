package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/medsettle/medsettle/settlement"
)

// Audit checks what the PostgreSQL store's Audit checks, on one consistent
// view of the store: every hash chain replayed from genesis against its
// head, every transaction balanced, every settlement's amounts equal to its
// ledger entries, every ledger transaction claimed by a settlement or a
// clearing posting, and every person-year's counters equal to the opening
// balance plus the deltas of its settlements.
func (s *Store) Audit(ctx context.Context) (*settlement.AuditReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rep := &settlement.AuditReport{Chains: len(s.d.heads)}
	txns := s.auditChains(rep)
	s.auditSettlements(txns, rep)
	return rep, nil
}

func (s *Store) auditChains(rep *settlement.AuditReport) map[string]*settlement.LedgerTxn {
	ordered := make([]*settlement.LedgerTxn, len(s.d.txns))
	for i := range s.d.txns {
		ordered[i] = &s.d.txns[i]
	}
	slices.SortFunc(ordered, func(a, b *settlement.LedgerTxn) int {
		return cmp.Or(strings.Compare(a.Chain, b.Chain), cmp.Compare(a.Seq, b.Seq), strings.Compare(a.ID, b.ID))
	})
	v := settlement.NewChainVerifier()
	txns := map[string]*settlement.LedgerTxn{}
	for _, t := range ordered {
		c := *t
		c.Time = c.Time.UTC()
		v.Add(&c)
		txns[c.ID] = &c
		rep.Entries += len(c.Entries)
	}
	v.Finish(s.d.heads)
	rep.Txns = v.Txns
	rep.Problems = append(rep.Problems, v.Problems...)
	return txns
}

func (s *Store) auditSettlements(txns map[string]*settlement.LedgerTxn, rep *settlement.AuditReport) {
	all := make([]settlement.Settlement, 0, len(s.d.settlements))
	for _, r := range s.d.settlements {
		all = append(all, readSettlement(r.s))
	}
	slices.SortFunc(all, func(a, b settlement.Settlement) int {
		return cmp.Or(strings.Compare(a.PsnNo, b.PsnNo), cmp.Compare(a.Year, b.Year),
			a.SetlTime.Compare(b.SetlTime), strings.Compare(a.SetlID, b.SetlID))
	})
	deltas := map[yearKey][]settlement.Delta{}
	claimed := map[string]bool{}
	for i := range all {
		st := &all[i]
		rep.Settlements++
		rep.Problems = append(rep.Problems, settlement.CheckSettlement(st, txns[st.LedgerTxnID])...)
		claimed[st.LedgerTxnID] = true
		if st.Role == settlement.RoleTreatment {
			continue // the person's counters are kept by the insured province
		}
		k := yearKey{st.PsnNo, st.Year}
		deltas[k] = append(deltas[k], st.Delta)
	}
	for _, r := range s.d.clearings {
		if r.LedgerTxnID == "" {
			continue
		}
		if txns[r.LedgerTxnID] == nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("clearing posting names ledger transaction %s, which is missing", r.LedgerTxnID))
		}
		claimed[r.LedgerTxnID] = true
	}
	for id, t := range txns {
		if !claimed[id] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("ledger transaction %s (chain %s seq %d) has no settlement", id, t.Chain, t.Seq))
		}
	}
	for k, yc := range s.d.counters {
		rep.Counters++
		if want := settlement.ReplayCounters(yc.OpeningBalc, deltas[k]); want != yc.Counters {
			rep.Problems = append(rep.Problems, fmt.Sprintf("counters of %s for %d are %+v, the settlements sum to %+v",
				k.psnNo, k.year, yc.Counters, want))
		}
		delete(deltas, k)
	}
	for k := range deltas {
		rep.Problems = append(rep.Problems, fmt.Sprintf("settlements of %s in %d but no counters row", k.psnNo, k.year))
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
