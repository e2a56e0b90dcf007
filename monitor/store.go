package monitor

import (
	"context"
	"errors"
	"time"

	"github.com/medsettle/medsettle/settlement"
)

// Store persists the monitor: every person's observed events, in the order
// they were observed, and the alerts they raised. A Monitor is then only a
// cache: the state of a person is rebuilt by observing its History again,
// which raises the same alerts under the same ids (already stored). This is
// what keeps the state across restarts and consumer-group rebalances, and
// independent of how long the settlements topic retains its records (the
// rules look back a calendar month, and at stays of any length).
//
// adapters/postgres implements it (AlertStore).
type Store interface {
	// History returns psnNo's observed events after the first `after`, in
	// the order they were observed.
	History(ctx context.Context, psnNo string, after int) ([]settlement.SettlementEvent, error)
	// Record stores ev as the seq-th observed event of its person (seq =
	// 1 + the events stored before it) together with the alerts it raised,
	// atomically. ErrObserved: ev's event id is stored already (nothing is
	// written). ErrStale: the person's history does not hold seq-1 events
	// (another consumer recorded one meanwhile): rebuild and try again.
	Record(ctx context.Context, seq int, ev settlement.SettlementEvent, alerts []Alert) error
	// Unpublished returns up to limit alerts not yet marked published, oldest first.
	Unpublished(ctx context.Context, limit int) ([]Alert, error)
	// MarkPublished marks alerts as published to the alerts topic.
	MarkPublished(ctx context.Context, ids []string) error
}

// Errors of Store.Record.
var (
	ErrObserved = errors.New("monitor: event already observed")
	ErrStale    = errors.New("monitor: the person's history moved on; rebuild it")
)

// Query selects stored alerts.
type Query struct {
	// Region: only alerts whose Scope holds it (the person is insured there,
	// or an institution of it is involved). Empty: every alert.
	Region string
	Rule   Rule   // empty: every rule
	PsnNo  string // empty: every person
	// From and To bound raised_at: From <= raised_at < To; zero: unbounded.
	From, To time.Time
	// Limit caps the number of alerts (DefaultLimit when zero, at most MaxLimit).
	Limit int
}

// Limits of Query.Limit.
const (
	DefaultLimit = 200
	MaxLimit     = 1000
)

// EffectiveLimit is q.Limit within its bounds.
func (q Query) EffectiveLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultLimit
	case q.Limit > MaxLimit:
		return MaxLimit
	}
	return q.Limit
}
