package settlement

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// Monthly clearing (清算) between provinces. The treatment province's
// receivable from an insured province is the sum of its open cross-province
// settlements; once a month the hub asks the insured province to confirm them
// item by item, pays the confirmed ones out of the insured province's advance
// fund (预付金) held for the treatment province, and carries disputed ones (拒付)
// into the next period. Each province then posts its side:
//
//	insured (payer):   clearing:<treatment> (debit, the payable closes) = advance:<treatment> (credit)
//	treatment (payee): received:<insured>   (debit)                     = clearing:<insured>  (credit, the receivable closes)
//	top-up (payer):    advance:<treatment>  (debit)                     = treasury            (credit)

// Clearing accounts.
func AdvanceAccount(province string) string  { return "advance:" + province }
func ReceivedAccount(province string) string { return "received:" + province }

// TreasuryAccount is the province's own funds, from which advances are paid.
const TreasuryAccount = "treasury"

// Ledger transaction kinds of the clearing.
const (
	TxnClearPay     = "clear-pay"
	TxnClearReceive = "clear-receive"
	TxnTopUp        = "topup"
)

// Period is a clearing month, "2026-03".
type Period string

// ParsePeriod checks "yyyy-mm".
func ParsePeriod(s string) (Period, error) {
	if _, err := time.Parse("2006-01", s); err != nil || len(s) != 7 {
		return "", Errorf(EINVALID, "period %q is not yyyy-mm", s)
	}
	return Period(s), nil
}

// End is the first instant after the period (at the counter's time zone).
func (p Period) End() time.Time {
	t, _ := time.ParseInLocation("2006-01", string(p), rules.CST)
	return t.AddDate(0, 1, 0)
}

// ClearingItem is one cross-province settlement (or reversal) to clear.
type ClearingItem struct {
	// Key matches the two sides: the insured side's setl_id of the original
	// settlement, and "settle" or "cancel".
	OrigSetlID string      `json:"orig_setl_id"`
	Kind       string      `json:"kind"`
	SetlID     string      `json:"setl_id"` // this side's setl_id
	PsnNo      string      `json:"psn_no"`
	Amount     rules.Money `json:"amount"` // what the insured province owes: funds + account
	SetlTime   time.Time   `json:"setl_time"`
}

func itemOf(s *Settlement) ClearingItem {
	it := ClearingItem{OrigSetlID: s.SetlID, Kind: TxnSettle, SetlID: s.SetlID, PsnNo: s.PsnNo,
		Amount: s.Info.FundPaySumamt + s.Info.AcctPay, SetlTime: s.SetlTime}
	if s.Reverses != "" {
		it.OrigSetlID, it.Kind = s.Reverses, TxnCancel
	}
	return it
}

// Statement is what a treatment province claims from one insured province.
type Statement struct {
	Period    Period         `json:"period"`
	Treatment string         `json:"treatment_province"`
	Insured   string         `json:"insured_province"`
	Items     []ClearingItem `json:"items"`
	Total     rules.Money    `json:"total"`
}

// Verdict is the insured province's answer on one item.
type Verdict struct {
	Item      ClearingItem `json:"item"`
	Confirmed bool         `json:"confirmed"`
	Reason    string       `json:"reason,omitempty"` // why it is disputed (拒付)
}

// ClearingPeer is a province's side of the monthly clearing: what the hub's
// clearing workflow asks of a province. *Engine implements it; over the
// network the province serves it next to its hub endpoint (adapters/hubhttp),
// and the hub reaches it through a client implementing the same port.
type ClearingPeer interface {
	Statements(ctx context.Context, period Period) ([]Statement, error)
	Confirm(ctx context.Context, st Statement) ([]Verdict, error)
	PostPayment(ctx context.Context, st Statement, verdicts []Verdict) (rules.Money, error)
	PostReceipt(ctx context.Context, st Statement, verdicts []Verdict) (rules.Money, error)
	TopUp(ctx context.Context, period Period, treatment string, share rules.Ratio) (rules.Money, error)
}

var _ ClearingPeer = (*Engine)(nil)

// ClearingStore is what the clearing needs beyond Tx; the postgres store implements it.
type ClearingStore interface {
	// Uncleared returns this side's cross-province settlements in role that
	// are not cleared and were settled before `before`.
	Uncleared(ctx context.Context, role Role, before time.Time) ([]Settlement, error)
	// ClearingRecord returns the posting (period, counterparty, kind), or nil.
	ClearingRecord(ctx context.Context, period Period, counterparty, kind string) (*ClearingRecord, error)
	PutClearingRecord(ctx context.Context, r *ClearingRecord) error
	MarkCleared(ctx context.Context, setlIDs []string, period Period) error
	// Balance is an account's balance (sum of its entries).
	Balance(ctx context.Context, account string) (rules.Money, error)
	// Records returns every posting of a kind with counterparty, oldest first.
	ClearingRecords(ctx context.Context, counterparty, kind string) ([]ClearingRecord, error)
}

// ClearingRecord is a posted clearing step.
type ClearingRecord struct {
	Period       Period
	Counterparty string
	Kind         string
	Total        rules.Money
	Items        []byte // JSON of the verdicts or items
	LedgerTxnID  string
	Created      time.Time
}

// clearingTx is a Tx that can also clear.
type clearingTx interface {
	Tx
	ClearingStore
}

func (e *Engine) clearingUpdate(ctx context.Context, fn func(ctx context.Context, tx clearingTx) error) error {
	return e.Store.Update(ctx, asClearing(fn))
}

func (e *Engine) clearingView(ctx context.Context, fn func(ctx context.Context, tx clearingTx) error) error {
	return e.Store.View(ctx, asClearing(fn))
}

// asClearing runs fn on a transaction of a store that also keeps clearing
// records (ClearingStore), in a read-write or a read-only transaction alike.
func asClearing(fn func(ctx context.Context, tx clearingTx) error) func(ctx context.Context, tx Tx) error {
	return func(ctx context.Context, tx Tx) error {
		ctx2, ok := tx.(clearingTx)
		if !ok {
			return fmt.Errorf("the store does not support clearing")
		}
		return fn(ctx, ctx2)
	}
}

// Statements builds this province's statements for period, one per insured
// province: every open treatment-side item settled before the period's end,
// disputed items of earlier periods included. Read-only.
func (e *Engine) Statements(ctx context.Context, period Period) ([]Statement, error) {
	var out []Statement
	err := e.clearingView(ctx, func(ctx context.Context, tx clearingTx) error {
		ss, err := tx.Uncleared(ctx, RoleTreatment, period.End())
		if err != nil {
			return err
		}
		by := map[string]*Statement{}
		for i := range ss {
			prov := rules.ProvinceOf(ss[i].InsuredRegion)
			st := by[prov]
			if st == nil {
				st = &Statement{Period: period, Treatment: e.Province, Insured: prov}
				by[prov] = st
			}
			it := itemOf(&ss[i])
			st.Items = append(st.Items, it)
			st.Total += it.Amount
		}
		out = out[:0]
		for _, st := range by {
			sort.Slice(st.Items, func(i, j int) bool { return st.Items[i].SetlID < st.Items[j].SetlID })
			out = append(out, *st)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Insured < out[j].Insured })
		return nil
	})
	return out, err
}

// Confirm is the insured province checking a statement item by item against
// its own side: an item is confirmed when this province holds the same
// settlement (or reversal) with the same amount. Read-only, so a late or
// repeated confirmation changes nothing.
func (e *Engine) Confirm(ctx context.Context, st Statement) ([]Verdict, error) {
	var out []Verdict
	err := e.clearingView(ctx, func(ctx context.Context, tx clearingTx) error {
		ss, err := tx.Uncleared(ctx, RoleInsured, st.Period.End().Add(24*time.Hour))
		if err != nil {
			return err
		}
		mine := map[string]ClearingItem{}
		for i := range ss {
			if rules.ProvinceOf(ss[i].TreatmentRegion) != st.Treatment {
				continue
			}
			it := itemOf(&ss[i])
			mine[it.OrigSetlID+"/"+it.Kind] = it
		}
		out = make([]Verdict, len(st.Items))
		for i, it := range st.Items {
			v := Verdict{Item: it}
			m, ok := mine[it.OrigSetlID+"/"+it.Kind]
			switch {
			case !ok:
				v.Reason = "no such open settlement on the insured side"
			case m.Amount != it.Amount:
				v.Reason = fmt.Sprintf("amount differs: the insured side has %s", m.Amount)
			case m.PsnNo != it.PsnNo:
				v.Reason = fmt.Sprintf("person differs: the insured side has %s", m.PsnNo)
			default:
				v.Confirmed = true
			}
			out[i] = v
		}
		return nil
	})
	return out, err
}

// PostPayment is the insured province paying the confirmed items of a
// statement out of its advance fund for the treatment province. Idempotent
// by (period, treatment province).
func (e *Engine) PostPayment(ctx context.Context, st Statement, verdicts []Verdict) (rules.Money, error) {
	return e.postClearing(ctx, st.Period, st.Treatment, TxnClearPay, verdicts, func(total rules.Money) []Entry {
		return []Entry{{ClearingAccount(st.Treatment), total}, {AdvanceAccount(st.Treatment), -total}}
	}, func(it ClearingItem) string { return "" })
}

// PostReceipt is the treatment province recording what the hub paid it for
// the confirmed items; disputed items stay open and are carried over.
// Idempotent by (period, insured province).
func (e *Engine) PostReceipt(ctx context.Context, st Statement, verdicts []Verdict) (rules.Money, error) {
	return e.postClearing(ctx, st.Period, st.Insured, TxnClearReceive, verdicts, func(total rules.Money) []Entry {
		return []Entry{{ReceivedAccount(st.Insured), total}, {ClearingAccount(st.Insured), -total}}
	}, func(it ClearingItem) string { return it.SetlID })
}

func (e *Engine) postClearing(ctx context.Context, period Period, counterparty, kind string, verdicts []Verdict,
	entries func(rules.Money) []Entry, ownID func(ClearingItem) string) (rules.Money, error) {
	now := e.now()
	var total rules.Money
	err := e.clearingUpdate(ctx, func(ctx context.Context, tx clearingTx) error {
		total = 0
		rec, err := tx.ClearingRecord(ctx, period, counterparty, kind)
		if err != nil {
			return err
		}
		if rec != nil {
			total = rec.Total // posted before: a retried or duplicate activity
			return nil
		}
		var ids []string
		for _, v := range verdicts {
			if v.Confirmed {
				total += v.Item.Amount
				ids = append(ids, v.Item.SetlID)
			}
		}
		items, err := json.Marshal(verdicts)
		if err != nil {
			return err
		}
		rec = &ClearingRecord{Period: period, Counterparty: counterparty, Kind: kind, Total: total, Items: items, Created: now}
		if total != 0 {
			id, err := e.appendClearingTxn(ctx, tx, counterparty, kind, now, entries(total))
			if err != nil {
				return err
			}
			rec.LedgerTxnID = id
		}
		if err := tx.PutClearingRecord(ctx, rec); err != nil {
			return err
		}
		// The payer's items are matched by orig key, the payee's by its own setl_id.
		if kind == TxnClearReceive {
			return tx.MarkCleared(ctx, ids, period)
		}
		return e.markInsuredCleared(ctx, tx, verdicts, period)
	})
	return total, err
}

func (e *Engine) markInsuredCleared(ctx context.Context, tx clearingTx, verdicts []Verdict, period Period) error {
	ss, err := tx.Uncleared(ctx, RoleInsured, period.End().Add(24*time.Hour))
	if err != nil {
		return err
	}
	confirmed := map[string]bool{}
	for _, v := range verdicts {
		if v.Confirmed {
			confirmed[v.Item.OrigSetlID+"/"+v.Item.Kind] = true
		}
	}
	var ids []string
	for i := range ss {
		it := itemOf(&ss[i])
		if confirmed[it.OrigSetlID+"/"+it.Kind] {
			ids = append(ids, ss[i].SetlID)
		}
	}
	return tx.MarkCleared(ctx, ids, period)
}

// appendClearingTxn appends a clearing transaction to the counterparty's
// clearing chain, once it balances.
func (e *Engine) appendClearingTxn(ctx context.Context, tx Tx, counterparty, kind string, now time.Time, entries []Entry) (string, error) {
	chain := "clearing:" + counterparty
	head, err := tx.ChainHead(ctx, chain)
	if err != nil {
		return "", err
	}
	t := &LedgerTxn{ID: NewID("T"), Chain: chain, Kind: kind, Time: now, Entries: entries}
	t.Seal(head.Seq, head.Hash)
	return t.ID, appendLedger(ctx, tx, t, nil)
}

// TopUp refills the advance fund held for a treatment province when it fell
// below share of the average monthly payment: back up to one month's
// average. Idempotent by (period, treatment province). Returns the amount.
func (e *Engine) TopUp(ctx context.Context, period Period, treatment string, share rules.Ratio) (rules.Money, error) {
	now := e.now()
	var amount rules.Money
	err := e.clearingUpdate(ctx, func(ctx context.Context, tx clearingTx) error {
		amount = 0
		rec, err := tx.ClearingRecord(ctx, period, treatment, TxnTopUp)
		if err != nil || rec != nil {
			if rec != nil {
				amount = rec.Total
			}
			return err
		}
		pays, err := tx.ClearingRecords(ctx, treatment, TxnClearPay)
		if err != nil {
			return err
		}
		var sum rules.Money
		for _, p := range pays {
			sum += p.Total
		}
		var avg rules.Money
		if len(pays) > 0 {
			avg = sum / rules.Money(len(pays))
		}
		bal, err := tx.Balance(ctx, AdvanceAccount(treatment))
		if err != nil {
			return err
		}
		// Top-ups debit the advance account and payments credit it, so its
		// balance is what is left of the advance.
		threshold := rules.Money(int64(avg) * int64(share) / 10000)
		if avg > 0 && bal < threshold {
			amount = avg - bal
		}
		rec = &ClearingRecord{Period: period, Counterparty: treatment, Kind: TxnTopUp, Total: amount, Items: []byte("[]"), Created: now}
		if amount > 0 {
			id, err := e.appendClearingTxn(ctx, tx, treatment, TxnTopUp, now,
				[]Entry{{AdvanceAccount(treatment), amount}, {TreasuryAccount, -amount}})
			if err != nil {
				return err
			}
			rec.LedgerTxnID = id
		}
		return tx.PutClearingRecord(ctx, rec)
	})
	return amount, err
}

// FundAdvance deposits an advance for a treatment province (the opening of
// the arrangement, or an extra top-up decided by the bureau).
func (e *Engine) FundAdvance(ctx context.Context, period Period, treatment string, amount rules.Money) error {
	if amount <= 0 {
		return Errorf(EINVALID, "advance amount %s must be positive", amount)
	}
	now := e.now()
	return e.clearingUpdate(ctx, func(ctx context.Context, tx clearingTx) error {
		rec, err := tx.ClearingRecord(ctx, period, treatment, "advance")
		if err != nil || rec != nil {
			return err
		}
		id, err := e.appendClearingTxn(ctx, tx, treatment, TxnTopUp, now,
			[]Entry{{AdvanceAccount(treatment), amount}, {TreasuryAccount, -amount}})
		if err != nil {
			return err
		}
		return tx.PutClearingRecord(ctx, &ClearingRecord{Period: period, Counterparty: treatment, Kind: "advance",
			Total: amount, Items: []byte("[]"), LedgerTxnID: id, Created: now})
	})
}

// Balance returns an account's balance in this deployment's ledger.
func (e *Engine) Balance(ctx context.Context, account string) (rules.Money, error) {
	var out rules.Money
	err := e.clearingView(ctx, func(ctx context.Context, tx clearingTx) error {
		var err error
		out, err = tx.Balance(ctx, account)
		return err
	})
	return out, err
}
