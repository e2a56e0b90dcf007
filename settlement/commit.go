package settlement

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The commit path of every settlement: a local settlement, a pharmacy sale
// or manual claim, either side of a cross-province settlement, and the
// reversal of any of them. Every one is written by commit (a reversal by
// commitReversal, which builds it first), and nothing is written before its
// invariants hold: the settlement's own arithmetic and its ledger
// transaction's balance, the identities audit checks afterwards.
//
// The order of the writes does not change the outcome (one transaction),
// but a store may send consecutive one-row updates together (the postgres
// store does): so a settled visit, the counters and the chain head go one
// after another, then the ledger rows and the settlement.

// ErrInvariant is what the engine refuses to write: a settlement whose
// identities do not hold, or a ledger transaction that does not balance.
// Only a bug can cause it; ErrorCode reports it as EINTERNAL.
var ErrInvariant = errors.New("settlement: invariant broken")

// writes is what a settlement's commit writes besides the settlement, its
// ledger transaction and its outbox event.
type writes struct {
	kind string // TxnSettle or TxnCancel
	// counters are the person's year counters after the settlement; nil on
	// the treatment side of a cross-province settlement, whose counters are
	// the insured province's.
	counters *YearCounters
	// settled is the visit marked settled, written first, so that its
	// update travels with the counters' and the chain head's.
	settled *Visit
	// last is the visit written after the settlement (a sale's or a
	// treatment side's visit, a reversal's reopened one).
	last *Visit
}

// commit writes settlement s with what w names, once s's invariants hold.
func (e *Engine) commit(ctx context.Context, tx Tx, s *Settlement, w writes) error {
	chain := ChainOf(s.PsnNo)
	t := &LedgerTxn{Chain: chain, Kind: w.kind, SetlID: s.SetlID, Time: s.SetlTime, Entries: SettlementEntries(s)}
	if err := checkSettlement(s, t); err != nil {
		return err
	}
	if w.settled != nil {
		if err := tx.PutVisit(ctx, w.settled); err != nil {
			return err
		}
	}
	if w.counters != nil {
		if err := tx.PutCounters(ctx, *w.counters); err != nil {
			return err
		}
	}
	head, err := tx.ChainHead(ctx, chain)
	if err != nil {
		return err
	}
	t.ID = NewID("T")
	t.Seal(head.Seq, head.Hash)
	s.LedgerTxnID = t.ID
	ev, err := settlementEvent(s, w.kind, t)
	if err != nil {
		return err
	}
	if err := appendLedger(ctx, tx, t, ev); err != nil {
		return err
	}
	if err := tx.PutSettlement(ctx, s); err != nil {
		return err
	}
	if w.last != nil {
		return tx.PutVisit(ctx, w.last)
	}
	return nil
}

// commitReversal writes the reversal of a standing settlement: a negated
// settlement, its ledger transaction, the counters restored (where they
// live here), and the visit reopened.
func (e *Engine) commitReversal(ctx context.Context, tx Tx, s *Settlement, msgid string, now time.Time) (*Settlement, error) {
	r := reversalOf(s, msgid, now)
	// Checked before the original's status changes; commit checks again
	// with the balance set, which no identity involves.
	if err := checkSettlement(r, &LedgerTxn{SetlID: r.SetlID, Entries: SettlementEntries(r)}); err != nil {
		return nil, err
	}
	if err := tx.SetSettlementStatus(ctx, s.SetlID, Cancelled); err != nil {
		return nil, err
	}
	v, err := tx.Visit(ctx, s.MdtrtID)
	if err != nil {
		return nil, err
	}
	r.visit = v
	w := writes{kind: TxnCancel, last: reopened(v)}
	if s.Role == RoleTreatment {
		r.Info.Balc = s.Info.Balc + s.Info.AcctPay // the insured province keeps the account; this is its balance as of the reversal
	} else {
		yc, err := tx.Counters(ctx, s.PsnNo, s.Year)
		if err != nil {
			return nil, err
		}
		yc.Counters = r.Delta.Apply(yc.Counters)
		r.Info.Balc = yc.Counters.AcctBalc // the balance after the reversal, not the original's
		w.counters = &yc
	}
	return r, e.commit(ctx, tx, r, w)
}

// reversalOf is the reversal of s: every amount negated.
func reversalOf(s *Settlement, msgid string, now time.Time) *Settlement {
	return &Settlement{
		SetlID: NewID("S"), MdtrtID: s.MdtrtID, PsnNo: s.PsnNo, Institution: s.Institution,
		InsuredRegion: s.InsuredRegion, TreatmentRegion: s.TreatmentRegion, MedType: s.MedType,
		Insutype: s.Insutype, SetlTime: now.UTC().Truncate(time.Microsecond), Year: s.Year,
		Info: negInfo(s.Info), Detail: negDetail(s.Detail), Delta: s.Delta.Neg(), Status: Settled,
		Reverses: s.SetlID, Msgid: msgid, Role: s.Role,
	}
}

// reopened is visit v as a reversal of its settlement leaves it: open again,
// or cancelled for a sale or a claim, which have no visit to return to; nil
// when there is nothing to write.
func reopened(v *Visit) *Visit {
	if v == nil || v.Status != VisitSettled {
		return nil
	}
	v.Status = VisitOpen
	if v.Kind == VisitPharmacy || v.Kind == VisitManual {
		v.Status = VisitCancelled
	}
	return v
}

// appendLedger appends t with its outbox event ev (nil for none), once t
// balances: the one way the engine appends to the ledger.
func appendLedger(ctx context.Context, tx Tx, t *LedgerTxn, ev *Event) error {
	if !t.Balanced() {
		return fmt.Errorf("%w: ledger transaction %s (%s of chain %s) does not balance: %v", ErrInvariant, t.ID, t.Kind, t.Chain, t.Entries)
	}
	return tx.AppendLedger(ctx, t, ev)
}

// checkSettlement refuses settlement s with ledger transaction t when s's
// arithmetic does not hold or t does not balance. t's entries are made from
// s here (SettlementEntries), so the audit's comparison of the two
// (CheckSettlement) would hold by construction and is not repeated.
func checkSettlement(s *Settlement, t *LedgerTxn) error {
	problems := identities(s)
	if !t.Balanced() {
		problems = append(problems, fmt.Sprintf("settlement %s: its ledger transaction does not balance: %v", s.SetlID, t.Entries))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvariant, strings.Join(problems, "; "))
	}
	return nil
}
