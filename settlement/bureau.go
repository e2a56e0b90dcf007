package settlement

import (
	"context"
	"errors"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// The bureau's read model: what the insurance bureau's console
// (adapters/console) reads of the settlement data of one pooling region.
// Every page is scoped to the region of the bureau that is signed in: a
// settlement is the bureau's when the person is insured there
// (insuplc_admdvs) or the institution is there (mdtrtarea_admvs). The
// store (adapters/postgres) implements BureauReads and BureauAlertReads.

// BureauReads is what the console reads. Every method takes the bureau's region
// and returns only what belongs to it; implementations must use indexed
// range scans (no full scans per page view).
type BureauReads interface {
	// ConsoleTotals sums the settlements (reversals included, negative) whose
	// settlement time is in [from, to): those of persons insured in region,
	// and those at institutions of region. Whole days (at the counter) that
	// ended before closedBefore are final: their sums may be kept and
	// reused. A zero closedBefore sums everything afresh.
	ConsoleTotals(ctx context.Context, region string, from, to, closedBefore time.Time) (*BureauTotals, error)
	// ConsoleSettlements is one page of the region's settlements, newest
	// first, by keyset on (setl_time, setl_id).
	ConsoleSettlements(ctx context.Context, q BureauListQuery) ([]BureauListRow, error)
	// ConsoleSettlement is one settlement of the region with its lines,
	// ledger transaction and chain position; nil when there is none (or it
	// is another region's).
	ConsoleSettlement(ctx context.Context, region, setlID string) (*BureauDetail, error)
	// ConsoleClearing is the region's part of the cross-province clearing
	// of a period.
	ConsoleClearing(ctx context.Context, region string, period Period, provinces []string) (*BureauClearing, error)
	// Audit replays every hash chain and checks every amount (region-agnostic).
	Audit(ctx context.Context) (*AuditReport, error)
}

// Sums are the amounts of a group of settlements. Count is net: an original
// settlement counts one, a reversal minus one, so a cancelled settlement and
// its reversal add up to nothing, as they do in the ledger.
type Sums struct {
	Count  int64
	Medfee rules.Money // medfee_sumamt
	Fund   rules.Money // fund_pay_sumamt
	Hifp   rules.Money // basic pool (hifp_pay)
	Hifmi  rules.Money // critical illness insurance (hifmi_pay)
	Hifob  rules.Money // large-amount supplement (hifob_pay)
	Maf    rules.Money // medical assistance (maf_pay)
	Acct   rules.Money // personal account (acct_pay)
	Cash   rules.Money // cash at the counter (psn_cash_pay)
}

// Add adds o to s.
func (s *Sums) Add(o Sums) {
	s.Count += o.Count
	s.Medfee += o.Medfee
	s.Fund += o.Fund
	s.Hifp += o.Hifp
	s.Hifmi += o.Hifmi
	s.Hifob += o.Hifob
	s.Maf += o.Maf
	s.Acct += o.Acct
	s.Cash += o.Cash
}

// Owed is what the insured side owes the treatment side for these
// settlements: the funds and the personal account.
func (s Sums) Owed() rules.Money { return s.Fund + s.Acct }

// BureauTotalsRow is one group of settlements: by institution, med_type and the
// two regions of the settlement.
type BureauTotalsRow struct {
	Day             string // yyyy-mm-dd when summed by day, else ""
	Institution     string // fixmedins_code
	MedType         string
	InsuredRegion   string // insuplc_admdvs
	TreatmentRegion string // mdtrtarea_admvs
	Sums
}

// BureauTotals are the region's sums over a time range.
type BureauTotals struct {
	// Insured: settlements of persons insured in the region, wherever treated
	// (what the region's funds paid).
	Insured []BureauTotalsRow
	// Treated: settlements at the region's institutions, whoever the person
	// (what the region's institutions billed).
	Treated []BureauTotalsRow
}

// BureauScope says which of the region's settlements a list shows.
type BureauScope string

const (
	BureauScopeAll     BureauScope = ""        // insured in the region or treated there
	BureauScopeInsured BureauScope = "insured" // persons insured in the region
	BureauScopeTreated BureauScope = "treated" // at institutions of the region
)

// BureauCursor is a keyset position in the list order (setl_time, setl_id).
type BureauCursor struct {
	Time time.Time
	ID   string
}

// BureauListQuery selects a page of settlements. The order is newest first:
// After (when set) gives the rows older than it, Before the rows newer than
// it (still returned newest first).
type BureauListQuery struct {
	Region      string
	Scope       BureauScope
	Institution string    // "" all
	MedType     string    // "" all
	From, To    time.Time // [From, To); zero = open
	After       *BureauCursor
	Before      *BureauCursor
	Limit       int
}

// BureauListRow is one settlement in a list.
type BureauListRow struct {
	SetlID          string
	SetlTime        time.Time
	PsnNo           string
	Institution     string
	InsuredRegion   string
	TreatmentRegion string
	MedType         string
	Role            Role
	Status          SettlementStatus
	Reverses        string
	Medfee          rules.Money
	Fund            rules.Money
	Acct            rules.Money
	Cash            rules.Money
}

// Cursor is the row's keyset position.
func (r BureauListRow) Cursor() BureauCursor { return BureauCursor{Time: r.SetlTime, ID: r.SetlID} }

// BureauDetail is one settlement with everything behind it.
type BureauDetail struct {
	Settlement Settlement
	Lines      []FeeLine // every line of the visit, withdrawn ones included
	// Txn is the ledger transaction (nil if missing: audit reports it).
	Txn *LedgerTxn
	// Head is the chain's head: Txn.Seq of Head.Seq.
	Head ChainHead
	// PrevHash is the hash of the previous transaction of the chain, as
	// stored ("" for the first link or when it is missing).
	PrevHash string
	// Related are the other settlements of the visit (a reversal and its
	// original, a settlement after a cancel), in time order.
	Related []BureauListRow
}

// BureauClearing is a region's part of a period's cross-province clearing.
type BureauClearing struct {
	Period Period
	// Open are the region's cross-province settlements not yet cleared and
	// settled before the period's end, by counterparty province and direction.
	Open []BureauOpenItems
	// Postings are the clearing postings of the period (payments, receipts,
	// top-ups, advances) with the region's items of each.
	Postings []BureauPosting
	// Advances are the balances of the province's advance funds, by
	// treatment province: what is left for it to draw on.
	Advances []BureauBalance
}

// ClearingDirection is which way money is owed between provinces.
type ClearingDirection string

const (
	Receivable ClearingDirection = "receivable" // treated here, owed by the insured province
	Payable    ClearingDirection = "payable"    // insured here, owed to the treatment province
)

// BureauOpenItems are open (uncleared) settlements with one counterparty province.
type BureauOpenItems struct {
	Counterparty string
	Direction    ClearingDirection
	Count        int64
	Amount       rules.Money // funds + account, net of reversals
}

// BureauPosting is one clearing posting with the region's share.
type BureauPosting struct {
	Counterparty string
	Kind         string // clear-pay, clear-receive, topup, advance
	Total        rules.Money
	LedgerTxnID  string
	Created      time.Time
	// Items are the region's verdicts (payments and receipts only).
	Items []Verdict
	// Region's share of the posting: confirmed and disputed amounts.
	Confirmed, Disputed   rules.Money
	NConfirmed, NDisputed int
}

// BureauBalance is an account balance.
type BureauBalance struct {
	Account string
	Amount  rules.Money
}

// BureauAlertReads is what the alerts page reads: the fund-supervision
// monitor's alerts (table alerts, migration 0003). A BureauReads that is
// also a BureauAlertReads gets the page.
type BureauAlertReads interface {
	// ConsoleAlerts returns up to limit alerts whose scope holds region
	// (the person is insured there or an institution of it is involved),
	// raised in [from, to), newest first. ErrNoAlerts when the platform has
	// no monitor.
	ConsoleAlerts(ctx context.Context, region string, from, to time.Time, limit int) ([]BureauAlertRow, error)
}

// ErrNoAlerts says the platform keeps no alerts.
var ErrNoAlerts = errors.New("console: this platform has no fund-supervision monitor")

// BureauAlertRow is one monitor alert with its evidence.
type BureauAlertRow struct {
	ID            string
	Rule          string
	PsnNo         string
	InsuredRegion string
	Regions       []string
	Detail        string
	RaisedAt      time.Time
	// Evidence are the settlements involved as the monitor saw them;
	// EvidenceText is the stored evidence when it could not be read so.
	Evidence     []AlertEvidence
	EvidenceText string
}

// AlertEvidence is a settlement as an alert's evidence.
type AlertEvidence struct {
	SetlID       string      `json:"setl_id"`
	MdtrtID      string      `json:"mdtrt_id"`
	Institution  string      `json:"fixmedins_code"`
	Region       string      `json:"mdtrtarea_admvs"`
	MedType      string      `json:"med_type"`
	VisitKind    string      `json:"visit_kind,omitempty"`
	SetlTime     time.Time   `json:"setl_time"`
	Begntime     *time.Time  `json:"begntime,omitempty"`
	Endtime      *time.Time  `json:"endtime,omitempty"`
	MedfeeSumamt rules.Money `json:"medfee_sumamt"`
}
