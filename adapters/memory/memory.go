// Package memory is an in-memory implementation of the settlement engine's
// store ports (settlement.Store, settlement.Tx, settlement.ClearingStore),
// for tests and demonstrations that need no database. It mirrors what the
// PostgreSQL store (adapters/postgres) observably does: the same unique
// keys and checks, the same "exactly one row" updates, the same orders,
// the same values read back (times to the microsecond, quantities with four
// decimals, a settlement's role "" read as local). The contract suite of
// package settlement/storetest runs against both.
//
// Transactions are serializable by construction: one transaction runs at a
// time (Update takes the store's lock for the whole of fn, View shares it
// with other Views), and every write records how to undo it, so that an
// error from fn, or a write refused, undoes the whole transaction, the msgid
// claim included. fn must therefore not start another transaction on the
// same store: it would wait for itself.
package memory

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/medsettle/medsettle/settlement"
)

// Store implements settlement.Store; its transactions implement
// settlement.Tx and settlement.ClearingStore.
type Store struct {
	mu sync.RWMutex
	d  data
}

var (
	_ settlement.Store         = (*Store)(nil)
	_ settlement.Tx            = (*tx)(nil)
	_ settlement.ClearingStore = (*tx)(nil)
)

// data is everything the store holds, one map per table of the PostgreSQL
// schema (adapters/postgres/migrations).
type data struct {
	messages    map[string]settlement.Message
	persons     map[string]settlement.Person
	certnos     map[string]string // certno → psn_no (UNIQUE)
	cardNos     map[string]string // card_no → psn_no (UNIQUE)
	counters    map[yearKey]settlement.YearCounters
	visits      map[string]settlement.Visit
	lines       map[string][]lineRow // by mdtrt_id, in order of insertion
	settlements map[string]settlementRow
	txns        []settlement.LedgerTxn // in order of appending
	txnIDs      map[string]int         // txn_id → index in txns
	chainSeqs   map[chainSeq]bool      // UNIQUE (chain, seq)
	heads       map[string]settlement.ChainHead
	outbox      []outboxRow
	clearings   map[clearingKey]settlement.ClearingRecord
}

type yearKey struct {
	psnNo string
	year  int
}

type chainSeq struct {
	chain string
	seq   int64
}

type clearingKey struct {
	period       settlement.Period
	counterparty string
	kind         string
}

// lineRow is a stored fee line: its columns, withdrawn included.
type lineRow struct{ l settlement.FeeLine }

// settlementRow is a stored settlement and its cleared_period.
type settlementRow struct {
	s       settlement.Settlement
	cleared settlement.Period
}

// outboxRow is an event written with a ledger transaction.
type outboxRow struct {
	chain string
	seq   int64
	ev    settlement.Event
	at    time.Time
}

// New returns a store whose registry holds persons (as SeedPersons).
func New(persons []settlement.Person) (*Store, error) {
	s := &Store{d: data{
		messages: map[string]settlement.Message{}, persons: map[string]settlement.Person{},
		certnos: map[string]string{}, cardNos: map[string]string{}, counters: map[yearKey]settlement.YearCounters{},
		visits: map[string]settlement.Visit{}, lines: map[string][]lineRow{},
		settlements: map[string]settlementRow{}, txnIDs: map[string]int{}, chainSeqs: map[chainSeq]bool{},
		heads: map[string]settlement.ChainHead{}, clearings: map[clearingKey]settlement.ClearingRecord{},
	}}
	if err := s.SeedPersons(context.Background(), persons); err != nil {
		return nil, err
	}
	return s, nil
}

// SeedPersons upserts registry rows in one transaction, as the PostgreSQL
// store's SeedPersons: a re-seed updates attributes but never a person's
// opening balance, nor counters or balances already in use.
func (s *Store) SeedPersons(ctx context.Context, persons []settlement.Person) error {
	err := s.Update(ctx, func(ctx context.Context, stx settlement.Tx) error {
		t := stx.(*tx)
		for i := range persons {
			if err := t.putPerson(&persons[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seeding persons: %w", err)
	}
	return nil
}

// Update implements settlement.Store: fn's writes are kept only when it
// returns nil (and no write of it was refused).
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: beginning a transaction: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run(ctx, &tx{d: &s.d}, fn)
}

// View implements settlement.Store: a read-only transaction, in which every
// write is refused (as PostgreSQL refuses them in READ ONLY).
func (s *Store) View(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: beginning a transaction: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.run(ctx, &tx{d: &s.d, readOnly: true}, fn)
}

// run runs fn in t and undoes t's writes unless both fn and t succeeded;
// a panic in fn undoes them too, and goes on.
func (s *Store) run(ctx context.Context, t *tx, fn func(ctx context.Context, tx settlement.Tx) error) (err error) {
	committed := false
	defer func() {
		if !committed {
			t.rollback()
		}
	}()
	if err = fn(ctx, t); err != nil {
		return err
	}
	if t.err != nil {
		// fn went on after a refused write: like an aborted PostgreSQL
		// transaction, the commit fails.
		return fmt.Errorf("committing: %w", t.err)
	}
	committed = true
	return nil
}

// tx is one transaction: writes go straight to the data, each with its undo.
type tx struct {
	d        *data
	readOnly bool
	undo     []func()
	err      error // the first write refused: the transaction is aborted
}

// errReadOnly is what a write in a View meets.
var errReadOnly = errors.New("cannot write in a read-only transaction")

// errAborted is what any statement meets after a refused write.
var errAborted = errors.New("current transaction is aborted, commands ignored until end of transaction block")

// check returns the error a statement meets before it runs: the transaction
// has failed already.
func (t *tx) check() error {
	if t.err != nil {
		return fmt.Errorf("%w (after: %w)", errAborted, t.err)
	}
	return nil
}

// write admits a write (what names it for errors) or returns why not.
func (t *tx) write(what string) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.readOnly {
		return t.fail(fmt.Errorf("%s: %w", what, errReadOnly))
	}
	return nil
}

// fail aborts the transaction with err and returns it.
func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}

func (t *tx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo = nil
}

// get reads m[k] in t: not ok when absent, or when t has failed (err).
func get[K comparable, V any](t *tx, m map[K]V, k K) (v V, ok bool, err error) {
	if err := t.check(); err != nil {
		return v, false, err
	}
	v, ok = m[k]
	return v, ok, nil
}

// read is m[k] as read back through as, nil when there is none: every
// single-row read of the store (a row that is absent is no error).
func read[K comparable, V, T any](t *tx, m map[K]V, k K, as func(V) *T) (*T, error) {
	v, ok, err := get(t, m, k)
	if !ok {
		return nil, err
	}
	return as(v), nil
}

// list is the rows keep selects, as read back through as, sorted by order:
// every multi-row read of the store.
func list[R, T any](t *tx, rows iter.Seq[R], keep func(*R) bool, as func(R) T, order func(a, b T) int) ([]T, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	var out []T
	for r := range rows {
		if keep(&r) {
			out = append(out, as(r))
		}
	}
	slices.SortFunc(out, order)
	return out, nil
}

// upsert is an INSERT ... ON CONFLICT DO UPDATE of the columns update sets:
// it stores v at k, or keeps the row on record at k, and then applies
// update to the row stored. what names the write for errors.
func upsert[K comparable, V any](t *tx, what string, m map[K]V, k K, v V, update func(row *V)) error {
	if err := t.write(what); err != nil {
		return err
	}
	row, ok := m[k]
	if !ok {
		row = v
	}
	update(&row)
	put(t, m, k, row)
	return nil
}

// put sets m[k] = v in t, remembering what was there.
func put[K comparable, V any](t *tx, m map[K]V, k K, v V) {
	prev, had := m[k]
	t.undo = append(t.undo, func() {
		if had {
			m[k] = prev
		} else {
			delete(m, k)
		}
	})
	m[k] = v
}

// stamp is a time as the database gives it back: to the microsecond, in
// the local zone (pgx reads TIMESTAMPTZ so).
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).Local()
}
