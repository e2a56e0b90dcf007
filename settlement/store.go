package settlement

import (
	"context"
	"time"
)

// Store is the persistence port of the engine. The adapter owns the
// transaction and its retries (after wild-workouts' Update(ctx, id, updateFn)):
// Update runs fn in one SERIALIZABLE transaction and, on a serialization
// failure, rolls back and runs fn again from the start, so fn must keep its
// effects inside tx and its own locals. A nil error from Update means the
// transaction committed.
type Store interface {
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
}

// Tx is what the engine reads and writes inside one transaction. Getters
// return (nil, nil) when the object does not exist.
type Tx interface {
	Message(ctx context.Context, msgid string) (*Message, error)
	// ClaimMessage records m within this transaction (a Status left empty
	// means in flight, until PutMessage), unless its msgid is taken: then it
	// returns the message that took it.
	ClaimMessage(ctx context.Context, m *Message) (*Message, error)
	// PutMessage stores a message, or updates the status, ref and answer of one.
	PutMessage(ctx context.Context, m *Message) error

	Person(ctx context.Context, psnNo string) (*Person, error)
	// PersonByCert finds a person by ID number (certType "02") or card ("03").
	PersonByCert(ctx context.Context, certType, certNo string) (*Person, error)

	// Counters returns the person's counters for year; a year not yet on
	// record opens with zero counters and the balance the account has.
	Counters(ctx context.Context, psnNo string, year int) (YearCounters, error)
	PutCounters(ctx context.Context, yc YearCounters) error

	Visit(ctx context.Context, mdtrtID string) (*Visit, error)
	PutVisit(ctx context.Context, v *Visit) error
	// Lines returns the visit's lines that are not withdrawn, by feedetl_sn order of upload.
	Lines(ctx context.Context, mdtrtID string) ([]FeeLine, error)
	PutLines(ctx context.Context, lines []FeeLine) error
	// WithdrawBatch withdraws the visit's lines of one charge batch ("" = all) and says how many.
	WithdrawBatch(ctx context.Context, mdtrtID, chrgBchno string) (int, error)

	Settlement(ctx context.Context, setlID string) (*Settlement, error)
	PutSettlement(ctx context.Context, s *Settlement) error
	SetSettlementStatus(ctx context.Context, setlID string, st SettlementStatus) error
	// SettlementsOf returns an institution's settlements (reversals included)
	// whose settlement time falls in the query's period.
	SettlementsOf(ctx context.Context, q PeriodQuery) ([]Settlement, error)

	ChainHead(ctx context.Context, chain string) (ChainHead, error)
	// AppendLedger stores a sealed transaction with its entries, advances its
	// chain head (which must still be at t.Seq-1) and writes ev to the outbox.
	AppendLedger(ctx context.Context, t *LedgerTxn, ev *Event) error
}

// Prefetcher is implemented by a Tx that can read ahead: Prefetch names what
// an operation is about to read, and the adapter may send those reads with
// the next statement it sends, one round trip for all instead of one each.
// The getters return what they would have returned anyway: a write in the
// same transaction to an object read ahead discards what was read.
type Prefetcher interface {
	Prefetch(keys Prefetch)
}

// Prefetch names the objects a settlement reads: a visit with its lines, a
// person with one year's counters and their ledger chain's head (Year and
// Chain are read with Person, all three given); or the person of a
// certificate with their counters (1101). Empty fields name nothing.
type Prefetch struct {
	Visit            string
	Person           string
	Year             int
	Chain            string
	CertType, CertNo string // as PersonByCert takes them
}

// prefetch tells tx what is about to be read, when tx can use the hint.
func prefetch(tx Tx, keys Prefetch) {
	if p, ok := tx.(Prefetcher); ok {
		p.Prefetch(keys)
	}
}

// MessageStatus says whether a message stands or was reversed (2601).
type MessageStatus string

const (
	MessageDone     MessageStatus = "done"
	MessageReversed MessageStatus = "reversed" // reversed, or recorded as never to happen
)

// Message is the idempotency record of one counter message (msgid).
type Message struct {
	Msgid       string
	Infno       string
	Institution string
	Digest      string // of the request body: the same msgid with another body is refused
	Status      MessageStatus
	Ref         string // what it made: setl_id, mdtrt_id or mdtrt_id/chrg_bchno
	Answer      []byte // the answer given, replayed on a repeat
	Created     time.Time
}

// Event is an outbox row: published to Kafka by the relay, in Seq order per Key.
type Event struct {
	ID      string
	Type    string
	Key     string // the person: events of one person stay in order
	Payload []byte
}
