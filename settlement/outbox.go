package settlement

import (
	"context"
	"errors"
	"hash/fnv"
	"time"
)

// The transactional outbox, as its relay sees it. Every ledger transaction
// writes its event to the outbox in the transaction that made it; a relay
// (adapters/kafka) leases partitions of the outbox, publishes each person's
// events in the order they committed and marks them published. The store
// (adapters/postgres) implements Outbox.

// OutboxParts is how many partitions the outbox is split into: a relay owns
// a partition at a time, and a key (person) always falls in the same one.
const OutboxParts = 16

// OutboxPart is the outbox partition of an event key (0..OutboxParts-1).
func OutboxPart(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % OutboxParts)
}

// OutboxRef names an outbox row by the ledger transaction that wrote it.
type OutboxRef struct {
	Chain string
	Seq   int64
}

// OutboxEvent is one row of the outbox.
type OutboxEvent struct {
	Chain   string // the ledger chain, "psn:<psn_no>"
	Seq     int64  // position in Chain: a person's events in commit order
	Part    int    // OutboxPart(Key)
	ID      string // event_id, stable across re-publication
	Type    string
	Key     string // psn_no
	Payload []byte // JSON of SettlementEvent
	Created time.Time
}

// Ref is the event's row, for MarkOutboxPublished.
func (e *OutboxEvent) Ref() OutboxRef { return OutboxRef{Chain: e.Chain, Seq: e.Seq} }

// ErrLeaseLost says a relay no longer holds the partition it tried to mark:
// its lease expired and may have been taken over. Nothing was marked.
var ErrLeaseLost = errors.New("outbox lease lost")

// Outbox is what the relay needs of the store.
type Outbox interface {
	// LeaseOutbox claims and renews owner's share of the outbox partitions
	// for ttl and returns the partitions it holds, sorted.
	LeaseOutbox(ctx context.Context, owner string, ttl time.Duration) ([]int, error)
	// PendingOutbox returns up to limit unpublished events of part in (chain, seq) order.
	PendingOutbox(ctx context.Context, part, limit int) ([]OutboxEvent, error)
	// MarkOutboxPublished marks events published if owner still holds part
	// (ErrLeaseLost otherwise, and nothing marked), checked in the same
	// transaction; it returns how many it marked.
	MarkOutboxPublished(ctx context.Context, owner string, part int, refs []OutboxRef) (int, error)
	// ReleaseOutbox gives owner's leases up.
	ReleaseOutbox(ctx context.Context, owner string) error
}
