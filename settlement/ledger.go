package settlement

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// The ledger is double-entry and append-only, after TigerBeetle's design:
// balances are never stored, only derived from immutable transactions, and a
// cancel is a new transaction that negates the original.
//
// Accounts are named kind:owner[:fund]. An entry's amount is a debit when
// positive and a credit when negative; each transaction sums to zero.
//
//	fund:<region>:basic|hifmi|hifob|maf  what a pooling region's fund paid (expense)
//	psnacct:<psn_no>                     what a personal account paid
//	cash:<fixmedins_code>                what patients paid in cash at the counter
//	medins:<fixmedins_code>              the institution's bills (credit): what it is owed in all
//
// so that for every settlement medins = funds + account + cash, which is
// docs/pricing.md's medfee_sumamt = fund_pay_sumamt + acct_pay + psn_cash_pay.

// Account names.
func FundAccount(region, fund string) string { return "fund:" + region + ":" + fund }
func PersonAccount(psnNo string) string      { return "psnacct:" + psnNo }
func CashAccount(inst string) string         { return "cash:" + inst }
func MedinsAccount(inst string) string       { return "medins:" + inst }

// Funds of a pooling region, in ledger order.
const (
	FundBasic = "basic"
	FundHifmi = "hifmi"
	FundHifob = "hifob"
	FundMaf   = "maf"
)

// Entry is one leg of a ledger transaction.
type Entry struct {
	Account string
	Amount  rules.Money // > 0 debit, < 0 credit
}

// Ledger transaction kinds.
const (
	TxnSettle = "settle"
	TxnCancel = "cancel"
)

// LedgerTxn is a balanced, immutable ledger transaction.
//
// Tamper evidence: transactions form hash chains, one chain per person (Chain
// "psn:<psn_no>"). Each transaction's Hash covers its content and the previous
// Hash of its chain, and a chain-head row (advanced in the same database
// transaction) holds the last Seq and Hash. Changing, deleting or reordering
// any committed row breaks a hash or the head. A chain per person, rather than
// one global chain, is chosen because a settlement already serialises on the
// person's counters row: the chain adds no hot row that all settlements would
// queue on, and a person's history stays verifiable on its own.
type LedgerTxn struct {
	ID       string
	Chain    string
	Seq      int64 // 1, 2, ... within Chain
	PrevHash string
	Hash     string
	Kind     string
	SetlID   string
	Time     time.Time // truncated to microseconds: what the database keeps
	Entries  []Entry
}

// ChainOf names the chain of a person's transactions.
func ChainOf(psnNo string) string { return "psn:" + psnNo }

// GenesisHash is PrevHash of the first transaction of every chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Balanced reports whether the entries sum to zero and none is zero. A
// transaction without entries balances: the insured side of a claim the funds
// paid nothing for moves no money, but its settlement still gets its link in
// the chain.
func (t *LedgerTxn) Balanced() bool {
	var sum rules.Money
	for _, e := range t.Entries {
		if e.Amount == 0 {
			return false
		}
		sum += e.Amount
	}
	return len(t.Entries) != 1 && sum == 0
}

// ComputeHash is SHA-256 over PrevHash and a canonical form of the transaction.
// Entries are hashed in their stored order (their ordinal), so swapping two
// entries between transactions or reordering them is detected.
func (t *LedgerTxn) ComputeHash() string {
	h := sha256.New()
	var buf []byte
	field := func(s string) {
		buf = append(buf[:0], s...)
		buf = append(buf, 0)
		h.Write(buf)
	}
	field(t.PrevHash)
	field(t.ID)
	field(t.Chain)
	field(strconv.FormatInt(t.Seq, 10))
	field(t.Kind)
	field(t.SetlID)
	field(strconv.FormatInt(t.Time.UnixMicro(), 10))
	for _, e := range t.Entries {
		field(e.Account)
		field(e.Amount.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Seal sets Seq, PrevHash and Hash as the next link after head (seq, hash).
func (t *LedgerTxn) Seal(headSeq int64, headHash string) {
	if headSeq == 0 {
		headHash = GenesisHash
	}
	t.Seq = headSeq + 1
	t.PrevHash = headHash
	t.Time = t.Time.UTC().Truncate(time.Microsecond)
	t.Hash = t.ComputeHash()
}

// SettlementEntries are the ledger legs of a settlement (or of its reversal,
// whose amounts are already negated); zero legs are left out.
func SettlementEntries(s *Settlement) []Entry {
	es := make([]Entry, 0, 7)
	add := func(acct string, m rules.Money) {
		if m != 0 {
			es = append(es, Entry{Account: acct, Amount: m})
		}
	}
	i := &s.Info
	paid := func() { // what the insured region's funds and the person's account paid
		add(FundAccount(s.InsuredRegion, FundBasic), i.HifpPay)
		add(FundAccount(s.InsuredRegion, FundHifmi), i.HifmiPay)
		add(FundAccount(s.InsuredRegion, FundHifob), i.HifobPay)
		add(FundAccount(s.InsuredRegion, FundMaf), i.MafPay)
		add(PersonAccount(s.PsnNo), i.AcctPay)
	}
	switch s.Role {
	case RoleTreatment:
		// What the funds and the account pay is owed by the insured province.
		add(ClearingAccount(rules.ProvinceOf(s.InsuredRegion)), i.FundPaySumamt+i.AcctPay)
		add(CashAccount(s.Institution), i.PsnCashPay)
		add(MedinsAccount(s.Institution), -i.MedfeeSumamt)
	case RoleInsured:
		paid()
		add(ClearingAccount(rules.ProvinceOf(s.TreatmentRegion)), -(i.FundPaySumamt + i.AcctPay))
	default:
		paid()
		add(CashAccount(s.Institution), i.PsnCashPay)
		add(MedinsAccount(s.Institution), -i.MedfeeSumamt)
	}
	return es
}

// ChainHead is the last link of a chain: advanced with every transaction appended.
type ChainHead struct {
	Seq  int64
	Hash string
}

// ChainVerifier replays chains from genesis. Feed it every transaction of a
// chain in Seq order (chains may be interleaved), then Finish with the stored
// heads. It collects every break rather than stopping at the first.
type ChainVerifier struct {
	last     map[string]ChainHead
	Problems []string
	Txns     int
}

// NewChainVerifier starts an empty replay.
func NewChainVerifier() *ChainVerifier {
	return &ChainVerifier{last: map[string]ChainHead{}}
}

// Add checks one transaction against its predecessor and itself.
func (v *ChainVerifier) Add(t *LedgerTxn) {
	v.Txns++
	prev, ok := v.last[t.Chain]
	if !ok {
		prev.Hash = GenesisHash
	}
	switch {
	case t.Seq != prev.Seq+1:
		v.problem("chain %s: txn %s has seq %d after %d (missing or reordered transaction)", t.Chain, t.ID, t.Seq, prev.Seq)
	case t.PrevHash != prev.Hash:
		v.problem("chain %s: txn %s (seq %d) prev_hash does not match the previous transaction", t.Chain, t.ID, t.Seq)
	}
	if got := t.ComputeHash(); got != t.Hash {
		v.problem("chain %s: txn %s (seq %d) content does not match its hash (changed, deleted or moved entries)", t.Chain, t.ID, t.Seq)
	}
	if !t.Balanced() {
		v.problem("txn %s does not balance", t.ID)
	}
	v.last[t.Chain] = ChainHead{Seq: t.Seq, Hash: t.Hash}
}

// Finish compares the replayed chain ends with the stored heads.
func (v *ChainVerifier) Finish(heads map[string]ChainHead) {
	for chain, h := range heads {
		got, ok := v.last[chain]
		if !ok {
			v.problem("chain %s: head at seq %d but no transactions", chain, h.Seq)
			continue
		}
		if got.Seq != h.Seq || got.Hash != h.Hash {
			v.problem("chain %s: head says seq %d, replay ends at seq %d (transactions deleted or added)", chain, h.Seq, got.Seq)
		}
	}
	for chain := range v.last {
		if _, ok := heads[chain]; !ok {
			v.problem("chain %s: transactions without a head", chain)
		}
	}
}

func (v *ChainVerifier) problem(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}
