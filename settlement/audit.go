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
	var out []string
	i := &s.Info
	if i.FundPaySumamt != i.HifpPay+i.HifmiPay+i.HifobPay+i.MafPay {
		out = append(out, fmt.Sprintf("settlement %s: fund_pay_sumamt %s is not the sum of its funds", s.SetlID, i.FundPaySumamt))
	}
	if i.MedfeeSumamt != i.FundPaySumamt+i.AcctPay+i.PsnCashPay {
		out = append(out, fmt.Sprintf("settlement %s: medfee_sumamt %s != fund %s + account %s + cash %s",
			s.SetlID, i.MedfeeSumamt, i.FundPaySumamt, i.AcctPay, i.PsnCashPay))
	}
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

// ReplayCounters rebuilds a person's year counters from the settlements of
// that year (each one's delta, reversals included) and the opening balance.
func ReplayCounters(opening rules.Money, deltas []Delta) rules.Counters {
	c := rules.Counters{AcctBalc: opening}
	for _, d := range deltas {
		c = d.Apply(c)
	}
	return c
}
