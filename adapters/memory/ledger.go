package memory

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Settlements, the ledger with its chain heads and outbox, the clearing.

func (t *tx) Settlement(_ context.Context, setlID string) (*settlement.Settlement, error) {
	return read(t, t.d.settlements, setlID, func(r settlementRow) *settlement.Settlement {
		s := readSettlement(r.s)
		return &s
	})
}

// readSettlement is a settlement as read back: its detail through JSON, a
// role left empty as local, the time to the microsecond.
func readSettlement(s settlement.Settlement) settlement.Settlement {
	out := settlement.Settlement{SetlID: s.SetlID, MdtrtID: s.MdtrtID, PsnNo: s.PsnNo, Institution: s.Institution,
		InsuredRegion: s.InsuredRegion, TreatmentRegion: s.TreatmentRegion, MedType: s.MedType, Insutype: s.Insutype,
		SetlTime: stamp(s.SetlTime), Year: s.Year, Info: s.Info, Delta: s.Delta, Status: s.Status,
		Reverses: s.Reverses, Msgid: s.Msgid, LedgerTxnID: s.LedgerTxnID, Role: s.Role}
	detail, _ := json.Marshal(s.Detail) // checked when stored
	_ = json.Unmarshal(detail, &out.Detail)
	return out
}

// PutSettlement inserts a settlement; its setl_id must be new.
func (t *tx) PutSettlement(_ context.Context, s *settlement.Settlement) error {
	what := "storing settlement " + s.SetlID
	if err := t.write(what); err != nil {
		return err
	}
	if _, taken := t.d.settlements[s.SetlID]; taken {
		return t.fail(fmt.Errorf("%s: setl_id is taken", what))
	}
	if _, err := json.Marshal(s.Detail); err != nil {
		return t.fail(fmt.Errorf("%s: %w", what, err))
	}
	c := readSettlement(*s)
	if c.Role == "" {
		c.Role = settlement.RoleLocal
	}
	put(t, t.d.settlements, c.SetlID, settlementRow{s: c})
	return nil
}

// SetSettlementStatus sets a settlement's status; like the PostgreSQL
// store's UPDATE, it finds nothing to change silently.
func (t *tx) SetSettlementStatus(_ context.Context, setlID string, st settlement.SettlementStatus) error {
	if err := t.write("updating settlement " + setlID); err != nil {
		return err
	}
	r, ok := t.d.settlements[setlID]
	if !ok {
		return nil
	}
	r.s.Status = st
	put(t, t.d.settlements, setlID, r)
	return nil
}

func (t *tx) SettlementsOf(_ context.Context, q settlement.PeriodQuery) ([]settlement.Settlement, error) {
	from, to := q.Bounds()
	from, to = stamp(from), stamp(to)
	return t.settlements(func(r *settlementRow) bool {
		return r.s.Institution == q.Institution && !r.s.SetlTime.Before(from) && r.s.SetlTime.Before(to)
	})
}

// settlements returns the settlements keep selects, by settlement time then setl_id.
func (t *tx) settlements(keep func(*settlementRow) bool) ([]settlement.Settlement, error) {
	return list(t, maps.Values(t.d.settlements), keep, func(r settlementRow) settlement.Settlement { return readSettlement(r.s) },
		func(a, b settlement.Settlement) int {
			return cmp.Or(a.SetlTime.Compare(b.SetlTime), strings.Compare(a.SetlID, b.SetlID))
		})
}

func (t *tx) ChainHead(_ context.Context, chain string) (settlement.ChainHead, error) {
	if err := t.check(); err != nil {
		return settlement.ChainHead{}, err
	}
	return t.d.heads[chain], nil
}

// AppendLedger stores a transaction with its entries and its event, and
// advances its chain's head, which must be at lt.Seq-1 (a first
// transaction, seq 1, starts the chain, which must not exist yet).
func (t *tx) AppendLedger(_ context.Context, lt *settlement.LedgerTxn, ev *settlement.Event) error {
	what := "appending ledger txn " + lt.ID
	if err := t.write(what); err != nil {
		return err
	}
	head, started := t.d.heads[lt.Chain]
	switch {
	case lt.Seq == 1 && started:
		return t.fail(fmt.Errorf("starting chain %s: it exists already", lt.Chain))
	case lt.Seq != 1 && (!started || head.Seq != lt.Seq-1):
		return t.fail(fmt.Errorf("advancing chain %s past seq %d: no such row", lt.Chain, lt.Seq-1))
	}
	if _, taken := t.d.txnIDs[lt.ID]; taken {
		return t.fail(fmt.Errorf("%s: txn_id is taken", what))
	}
	if t.d.chainSeqs[chainSeq{lt.Chain, lt.Seq}] {
		return t.fail(fmt.Errorf("%s: chain %s has seq %d already", what, lt.Chain, lt.Seq))
	}
	for i, e := range lt.Entries {
		if e.Amount == 0 {
			return t.fail(fmt.Errorf("appending the entries of ledger txn %s: entry %d is zero", lt.ID, i))
		}
	}
	put(t, t.d.heads, lt.Chain, settlement.ChainHead{Seq: lt.Seq, Hash: lt.Hash})
	c := *lt
	c.Entries = slices.Clone(lt.Entries)
	t.d.txns = append(t.d.txns, c)
	t.undo = append(t.undo, func() { t.d.txns = t.d.txns[:len(t.d.txns)-1] })
	put(t, t.d.txnIDs, c.ID, len(t.d.txns)-1)
	put(t, t.d.chainSeqs, chainSeq{c.Chain, c.Seq}, true)
	if ev != nil {
		e := *ev
		e.Payload = slices.Clone(ev.Payload)
		t.d.outbox = append(t.d.outbox, outboxRow{chain: lt.Chain, seq: lt.Seq, ev: e, at: lt.Time})
		t.undo = append(t.undo, func() { t.d.outbox = t.d.outbox[:len(t.d.outbox)-1] })
	}
	return nil
}

// Uncleared returns the settlements in a role other than local that are
// not cleared and were settled before `before`.
func (t *tx) Uncleared(_ context.Context, role settlement.Role, before time.Time) ([]settlement.Settlement, error) {
	before = stamp(before)
	return t.settlements(func(r *settlementRow) bool {
		return r.s.Role == role && role != settlement.RoleLocal && r.cleared == "" && r.s.SetlTime.Before(before)
	})
}

func (t *tx) ClearingRecord(_ context.Context, period settlement.Period, counterparty, kind string) (*settlement.ClearingRecord, error) {
	return read(t, t.d.clearings, clearingKey{period, counterparty, kind}, func(r settlement.ClearingRecord) *settlement.ClearingRecord {
		r.Items = []byte(string(r.Items))
		r.Created = stamp(r.Created)
		return &r
	})
}

// PutClearingRecord inserts a posting; (period, counterparty, kind) must be new.
func (t *tx) PutClearingRecord(_ context.Context, r *settlement.ClearingRecord) error {
	what := fmt.Sprintf("storing clearing %s/%s/%s", r.Period, r.Counterparty, r.Kind)
	if err := t.write(what); err != nil {
		return err
	}
	k := clearingKey{r.Period, r.Counterparty, r.Kind}
	if _, taken := t.d.clearings[k]; taken {
		return t.fail(fmt.Errorf("%s: posted already", what))
	}
	c := *r
	c.Items = []byte(string(r.Items))
	put(t, t.d.clearings, k, c)
	return nil
}

// ClearingRecords returns the postings of a kind with counterparty by
// period, without their items (as the PostgreSQL store reads them).
func (t *tx) ClearingRecords(_ context.Context, counterparty, kind string) ([]settlement.ClearingRecord, error) {
	return list(t, maps.Values(t.d.clearings),
		func(r *settlement.ClearingRecord) bool { return r.Counterparty == counterparty && r.Kind == kind },
		func(r settlement.ClearingRecord) settlement.ClearingRecord {
			r.Items, r.Created = nil, stamp(r.Created)
			return r
		},
		func(a, b settlement.ClearingRecord) int { return strings.Compare(string(a.Period), string(b.Period)) })
}

// MarkCleared marks settlements cleared in period; every one of them must
// be open.
func (t *tx) MarkCleared(_ context.Context, setlIDs []string, period settlement.Period) error {
	if len(setlIDs) == 0 {
		return t.check()
	}
	what := "marking settlements cleared in " + string(period)
	if err := t.write(what); err != nil {
		return err
	}
	open := map[string]bool{}
	for _, id := range setlIDs {
		if r, ok := t.d.settlements[id]; ok && r.cleared == "" {
			open[id] = true
		}
	}
	if len(open) != len(setlIDs) {
		return t.fail(fmt.Errorf("%s: %d of %d were open", what, len(open), len(setlIDs)))
	}
	for id := range open {
		r := t.d.settlements[id]
		r.cleared = period
		put(t, t.d.settlements, id, r)
	}
	return nil
}

// Balance sums an account's entries.
func (t *tx) Balance(_ context.Context, account string) (rules.Money, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	var sum rules.Money
	for i := range t.d.txns {
		for _, e := range t.d.txns[i].Entries {
			if e.Account == account {
				sum += e.Amount
			}
		}
	}
	return sum, nil
}
