package kafka

import (
	"container/list"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Dedup drops repeated settlement events for a consumer of
// medsettle.settlements: it remembers the most recent Capacity event ids in
// memory (least recently seen forgotten first).
//
// Sizing: a repeat follows its first copy by at most the events published
// while a dead relay's leases expire and another relay takes over, plus one
// batch per outbox partition: Capacity >= peak events/s * (LeaseTTL + 5 s) +
// 16 * Batch keeps every repeat within memory (100,000 ids, about 10 MB,
// covers 5,000 events/s with the defaults). A consumer that restarts loses
// its memory: one whose effects live in a database should instead record
// each event_id in a table (event_id PRIMARY KEY) in the transaction of the
// effect and skip an event whose insert conflicts, or keep per person the
// highest seq applied (events arrive in seq order per person, repeats
// included, so anything at or below it is a repeat).
//
// Dedup is safe for concurrent use.
type Dedup struct {
	mu    sync.Mutex
	cap   int
	order *list.List // of string, most recent at the front
	ids   map[string]*list.Element
}

// NewDedup remembers up to capacity event ids (at least 1).
func NewDedup(capacity int) *Dedup {
	return &Dedup{cap: max(capacity, 1), order: list.New(), ids: make(map[string]*list.Element)}
}

// First reports whether id is new, and remembers it: the consumer handles
// the event when First is true and skips it otherwise.
func (d *Dedup) First(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.ids[id]; ok {
		d.order.MoveToFront(e)
		return false
	}
	d.ids[id] = d.order.PushFront(id)
	if d.order.Len() > d.cap {
		last := d.order.Back()
		d.order.Remove(last)
		delete(d.ids, last.Value.(string))
	}
	return true
}

// FirstRecord is First of a record's event_id header. A record without one
// is not a settlement event and is reported new.
func (d *Dedup) FirstRecord(r *kgo.Record) bool {
	id := Header(r, HeaderEventID)
	if id == "" {
		return true
	}
	return d.First(id)
}

// Len is how many ids are remembered.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
