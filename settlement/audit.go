package settlement

import (
	"fmt"

	"github.com/medsettle/medsettle/rules"
)

// AuditReport is the outcome of an audit: what was checked and every break found.
type AuditReport struct {
	Chains      int
	Txns        int
	Entries     int
	Settlements int
	Counters    int
	Problems    []string
}

// OK reports whether the audit found nothing wrong.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 }

func (r *AuditReport) String() string {
	status := "OK"
	if !r.OK() {
		status = fmt.Sprintf("%d PROBLEM(S)", len(r.Problems))
	}
	return fmt.Sprintf("audit %s: %d chains, %d ledger transactions, %d entries, %d settlements, %d person-years",
		status, r.Chains, r.Txns, r.Entries, r.Settlements, r.Counters)
}

// CheckSettlement returns what is wrong with a settlement and its ledger
// transaction: its own arithmetic (medfee = funds + account + cash), and that
// the ledger holds exactly its amounts.
func CheckSettlement(s *Settlement, t *LedgerTxn) []string {
	out := identities(s)
	if t == nil {
		return append(out, fmt.Sprintf("settlement %s: ledger transaction %s is missing", s.SetlID, s.LedgerTxnID))
	}
	if t.SetlID != s.SetlID {
		out = append(out, fmt.Sprintf("settlement %s: ledger transaction %s belongs to settlement %s", s.SetlID, t.ID, t.SetlID))
	}
	want := SettlementEntries(s)
	got := t.Entries
	same := len(want) == len(got)
	for k := 0; same && k < len(want); k++ {
		same = want[k] == got[k]
	}
	if !same {
		out = append(out, fmt.Sprintf("settlement %s: ledger transaction %s entries %v differ from its amounts %v", s.SetlID, t.ID, got, want))
	}
	return out
}

// identities are the problems of s's own arithmetic: the funds add up to
// fund_pay_sumamt, and funds, account and cash to medfee_sumamt.
func identities(s *Settlement) []string {
	var out []string
	i := &s.Info
	if i.FundPaySumamt != i.HifpPay+i.HifmiPay+i.HifobPay+i.MafPay {
		out = append(out, fmt.Sprintf("settlement %s: fund_pay_sumamt %s is not the sum of its funds", s.SetlID, i.FundPaySumamt))
	}
	if i.MedfeeSumamt != i.FundPaySumamt+i.AcctPay+i.PsnCashPay {
		out = append(out, fmt.Sprintf("settlement %s: medfee_sumamt %s != fund %s + account %s + cash %s",
			s.SetlID, i.MedfeeSumamt, i.FundPaySumamt, i.AcctPay, i.PsnCashPay))
	}
	return out
}

// ReplayCounters rebuilds a person's year counters from the settlements of
// that year (each one's delta, reversals included) and the opening balance.
func ReplayCounters(opening rules.Money, deltas []Delta) rules.Counters {
	c := rules.Counters{AcctBalc: opening}
	for _, d := range deltas {
		c = d.Apply(c)
	}
	return c
}

// Auditor checks a store's rows as the store reads them from one consistent
// view, so that every store audits alike and only reads its rows. Feed it in
// this order, each kind of row in the order named:
//
//	Txn         every ledger transaction with its entries, by chain, seq, txn id
//	Heads       the stored chain heads, once: ends the replay of the chains
//	Settlement  every settlement, by psn_no, year, setl_time, setl_id
//	Claims      the ledger transactions of clearing postings, once: names every transaction no one claims
//	Counters    every person-year's counters
//
// then take the Report. Problem records a break only the store can see (a
// row that does not read); it goes into the report where it is found.
type Auditor struct {
	rep     AuditReport
	chains  *ChainVerifier
	txns    map[string]*LedgerTxn
	claimed map[string]bool
	deltas  map[personYear][]Delta
}

type personYear struct {
	psnNo string
	year  int
}

// NewAuditor starts an empty audit.
func NewAuditor() *Auditor {
	return &Auditor{
		chains:  NewChainVerifier(),
		txns:    map[string]*LedgerTxn{},
		claimed: map[string]bool{},
		deltas:  map[personYear][]Delta{},
	}
}

// Problem records a break the store found reading its rows.
func (a *Auditor) Problem(format string, args ...any) {
	a.rep.Problems = append(a.rep.Problems, fmt.Sprintf(format, args...))
}

// Txn replays one ledger transaction on its chain. The auditor keeps t until
// the report, for the settlements to be checked against.
func (a *Auditor) Txn(t *LedgerTxn) {
	a.chains.Add(t)
	a.txns[t.ID] = t
	a.rep.Entries += len(t.Entries)
}

// Heads compares the replayed chain ends with the stored heads.
func (a *Auditor) Heads(heads map[string]ChainHead) {
	a.rep.Chains = len(heads)
	a.chains.Finish(heads)
	a.rep.Txns = a.chains.Txns
	a.rep.Problems = append(a.rep.Problems, a.chains.Problems...)
}

// Settlement checks a settlement against its ledger transaction and keeps
// its delta for the person's counters (the insured side's only: a treatment
// province keeps no counters of the person).
func (a *Auditor) Settlement(s *Settlement) {
	a.rep.Settlements++
	a.rep.Problems = append(a.rep.Problems, CheckSettlement(s, a.txns[s.LedgerTxnID])...)
	a.claimed[s.LedgerTxnID] = true
	if s.Role == RoleTreatment {
		return
	}
	k := personYear{s.PsnNo, s.Year}
	a.deltas[k] = append(a.deltas[k], s.Delta)
}

// Claims takes the ledger transactions named by clearing postings (those
// with one) and names every transaction that neither a settlement nor a
// posting claims.
func (a *Auditor) Claims(clearingTxnIDs []string) {
	for _, id := range clearingTxnIDs {
		if a.txns[id] == nil {
			a.Problem("clearing posting names ledger transaction %s, which is missing", id)
		}
		a.claimed[id] = true
	}
	for id, t := range a.txns {
		if !a.claimed[id] {
			a.Problem("ledger transaction %s (chain %s seq %d) has no settlement", id, t.Chain, t.Seq)
		}
	}
}

// Counters checks a person-year's counters against its opening balance
// plus the deltas of its settlements.
func (a *Auditor) Counters(yc *YearCounters) {
	a.rep.Counters++
	k := personYear{yc.PsnNo, yc.Year}
	if want := ReplayCounters(yc.OpeningBalc, a.deltas[k]); want != yc.Counters {
		a.Problem("counters of %s for %d are %+v, the settlements sum to %+v", yc.PsnNo, yc.Year, yc.Counters, want)
	}
	delete(a.deltas, k)
}

// Report ends the audit (call it once): settlements of a person-year with
// no counters are a break too.
func (a *Auditor) Report() *AuditReport {
	for k := range a.deltas {
		a.Problem("settlements of %s in %d but no counters row", k.psnNo, k.year)
	}
	return &a.rep
}
