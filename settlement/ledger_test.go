package settlement

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

func chainOf(n int) []*LedgerTxn {
	var out []*LedgerTxn
	var head ChainHead
	for i := 0; i < n; i++ {
		amt := rules.Money(100 * (i + 1))
		t := &LedgerTxn{ID: NewID("T"), Chain: "psn:1", Kind: TxnSettle, SetlID: NewID("S"), Time: time.Unix(int64(i), 0),
			Entries: []Entry{{FundAccount("150100", FundBasic), amt}, {MedinsAccount("H1"), -amt}}}
		t.Seal(head.Seq, head.Hash)
		head = ChainHead{t.Seq, t.Hash}
		out = append(out, t)
	}
	return out
}

func verify(txns []*LedgerTxn, head ChainHead) []string {
	v := NewChainVerifier()
	for _, t := range txns {
		v.Add(t)
	}
	v.Finish(map[string]ChainHead{"psn:1": head})
	return v.Problems
}

// Any change to a sealed chain is caught: an amount, an entry, the order,
// a transaction removed from the middle or the end.
func TestChainVerifierCatchesEveryEdit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		txns := chainOf(2 + r.IntN(8))
		last := txns[len(txns)-1]
		head := ChainHead{last.Seq, last.Hash}
		require.Empty(t, verify(txns, head))

		k := r.IntN(len(txns))
		edited := make([]*LedgerTxn, len(txns))
		for i, tx := range txns {
			c := *tx
			c.Entries = append([]Entry(nil), tx.Entries...)
			edited[i] = &c
		}
		switch round % 5 {
		case 0:
			edited[k].Entries[0].Amount++
		case 1:
			edited[k].Entries = edited[k].Entries[:1]
		case 2:
			j := (k + 1) % len(edited)
			edited[k], edited[j] = edited[j], edited[k]
		case 3:
			edited = append(edited[:k], edited[k+1:]...)
		case 4:
			edited[k].Entries[0].Account, edited[k].Entries[1].Account = edited[k].Entries[1].Account, edited[k].Entries[0].Account
		}
		require.NotEmpty(t, verify(edited, head), "round %d edit %d at %d went unnoticed", round, round%5, k)
	}
}

func TestBalanced(t *testing.T) {
	require.True(t, (&LedgerTxn{}).Balanced(), "a memo transaction moves nothing")
	require.False(t, (&LedgerTxn{Entries: []Entry{{"a", 5}}}).Balanced())
	require.False(t, (&LedgerTxn{Entries: []Entry{{"a", 5}, {"b", -4}}}).Balanced())
	require.False(t, (&LedgerTxn{Entries: []Entry{{"a", 0}, {"b", 0}}}).Balanced(), "no zero legs")
	require.True(t, (&LedgerTxn{Entries: []Entry{{"a", 5}, {"b", -3}, {"c", -2}}}).Balanced())
}

// Every role's entries balance and name exactly the settlement's amounts.
func TestSettlementEntriesBalanceInEveryRole(t *testing.T) {
	info := rules.Setlinfo{MedfeeSumamt: 10000, HifpPay: 5000, HifmiPay: 1000, MafPay: 500, FundPaySumamt: 6500,
		AcctPay: 1500, PsnCashPay: 2000}
	for _, role := range []Role{RoleLocal, RoleTreatment, RoleInsured, ""} {
		s := &Settlement{SetlID: "S1", PsnNo: "P1", Institution: "H15010000011", InsuredRegion: "420100",
			TreatmentRegion: "150100", Info: info, Role: role}
		tx := &LedgerTxn{Entries: SettlementEntries(s)}
		require.True(t, tx.Balanced(), "role %q: %v", role, tx.Entries)
		tx.ID, tx.SetlID = "T1", "S1"
		s.LedgerTxnID = "T1"
		require.Empty(t, CheckSettlement(s, tx))
		neg := *s
		neg.Info = negInfo(info)
		require.True(t, (&LedgerTxn{Entries: SettlementEntries(&neg)}).Balanced())
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	before := rules.Counters{DedcUsedOutpatient: 100, FundPaidInpatient: 5000, AcctBalc: 900, Admissions: 1}
	after := rules.Counters{DedcUsedOutpatient: 300, FundPaidInpatient: 9000, BurdenYTD: 40, AcctBalc: 100, Admissions: 2}
	d := DeltaOf(before, after)
	require.Equal(t, after, d.Apply(before))
	require.Equal(t, before, d.Neg().Apply(after), "a cancel restores the counters")
	require.Equal(t, after, ReplayCounters(900, []Delta{DeltaOf(rules.Counters{AcctBalc: 900}, before), d}),
		"the year replays from its opening balance")
}

func TestValidCertno(t *testing.T) {
	require.True(t, ValidCertno("150100200909167449"))
	require.True(t, ValidCertno("15010019730514556X"))
	require.False(t, ValidCertno("150100200909167448"))
	require.False(t, ValidCertno("15010020090916744"))
}

func TestDetailDifferences(t *testing.T) {
	platform := map[string]DetailRow{
		"S1": {SetlID: "S1", MdtrtID: "M1", PsnNo: "P", MedfeeSumamt: 100, FundPaySumamt: 60, RefdSetlFlag: "0"},
		"S2": {SetlID: "S2", MdtrtID: "M2", PsnNo: "P", MedfeeSumamt: 200, FundPaySumamt: 90, RefdSetlFlag: "0"},
		"S3": {SetlID: "S3", MdtrtID: "M3", PsnNo: "P", MedfeeSumamt: 300, RefdSetlFlag: "1"},
	}
	his := []DetailRow{
		{SetlID: "S1", MdtrtID: "M1", PsnNo: "P", MedfeeSumamt: 100, FundPaySumamt: 60},
		{SetlID: "S2", MdtrtID: "M2", PsnNo: "P", MedfeeSumamt: 200, FundPaySumamt: 80},
		{SetlID: "S9", MdtrtID: "M9", PsnNo: "P", MedfeeSumamt: 50},
	}
	d := diffDetails(his, platform)
	require.Len(t, d, 3)
	require.Equal(t, DiffAmounts, d[0].Result)
	require.Equal(t, "S2", d[0].SetlID)
	require.Equal(t, DiffPlatformOnly, d[1].Result)
	require.Equal(t, "S3", d[1].SetlID)
	require.Equal(t, DiffHISOnly, d[2].Result)
	require.Equal(t, "S9", d[2].SetlID)
}
