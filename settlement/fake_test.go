package settlement

import (
	"context"
	"fmt"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/rules"
)

// fakeStore is a tiny in-memory Store whose Tx records every call the engine
// makes, in order: enough to show what the engine sends a store, and that it
// refuses a broken settlement before the store sees it. (The full in-memory
// store, with its contract tests, is adapters/memory.)
type fakeStore struct{ tx *fakeTx }

func (s *fakeStore) Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	saved := s.tx.snapshot()
	if err := fn(ctx, s.tx); err != nil {
		s.tx.restore(saved)
		return err
	}
	return nil
}

func (s *fakeStore) View(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	saved := s.tx.snapshot()
	defer s.tx.restore(saved)
	return fn(ctx, s.tx)
}

type fakeTx struct {
	calls    []string
	msgs     map[string]Message
	persons  map[string]Person
	visits   map[string]Visit
	lines    map[string][]FeeLine
	setls    map[string]Settlement
	counters map[string]YearCounters
	heads    map[string]ChainHead
	txns     []*LedgerTxn
}

func newFakeTx(persons []Person) *fakeTx {
	t := &fakeTx{msgs: map[string]Message{}, persons: map[string]Person{}, visits: map[string]Visit{},
		lines: map[string][]FeeLine{}, setls: map[string]Settlement{}, counters: map[string]YearCounters{},
		heads: map[string]ChainHead{}}
	for _, p := range persons {
		t.persons[p.PsnNo] = p
	}
	return t
}

// snapshot keeps what restore needs to roll back; the calls stay recorded.
func (t *fakeTx) snapshot() *fakeTx {
	c := *t
	c.msgs, c.visits, c.lines = maps.Clone(t.msgs), maps.Clone(t.visits), maps.Clone(t.lines)
	c.setls, c.counters, c.heads = maps.Clone(t.setls), maps.Clone(t.counters), maps.Clone(t.heads)
	c.txns = append([]*LedgerTxn(nil), t.txns...)
	return &c
}

func (t *fakeTx) restore(s *fakeTx) {
	calls := t.calls
	*t = *s
	t.calls = calls
}

func (t *fakeTx) call(format string, args ...any) {
	t.calls = append(t.calls, fmt.Sprintf(format, args...))
}

// lookup returns a copy of m[k], or nil when there is none, as a store's
// reads answer a row they do not have.
func lookup[T any](m map[string]T, k string) *T {
	if v, ok := m[k]; ok {
		return &v
	}
	return nil
}

func (t *fakeTx) Message(_ context.Context, id string) (*Message, error) {
	t.call("Message")
	return lookup(t.msgs, id), nil
}

func (t *fakeTx) ClaimMessage(_ context.Context, m *Message) (*Message, error) {
	t.call("ClaimMessage %s", m.Status)
	if prev, ok := t.msgs[m.Msgid]; ok {
		return &prev, nil
	}
	t.msgs[m.Msgid] = *m
	return nil, nil
}

func (t *fakeTx) PutMessage(_ context.Context, m *Message) error {
	t.call("PutMessage %s", m.Status)
	t.msgs[m.Msgid] = *m
	return nil
}

func (t *fakeTx) Person(_ context.Context, id string) (*Person, error) {
	t.call("Person")
	return lookup(t.persons, id), nil
}

func (t *fakeTx) PersonByCert(_ context.Context, certType, certNo string) (*Person, error) {
	t.call("PersonByCert")
	for _, p := range t.persons {
		if (certType == "02" && p.Certno == certNo) || (certType == "03" && p.CardNo == certNo) {
			return &p, nil
		}
	}
	return nil, nil
}

func (t *fakeTx) Counters(_ context.Context, psnNo string, year int) (YearCounters, error) {
	t.call("Counters")
	k := fmt.Sprint(psnNo, "/", year)
	if yc, ok := t.counters[k]; ok {
		return yc, nil
	}
	p := t.persons[psnNo]
	return YearCounters{PsnNo: psnNo, Year: year, Counters: rules.Counters{AcctBalc: p.OpeningBalc}, OpeningBalc: p.OpeningBalc}, nil
}

func (t *fakeTx) PutCounters(_ context.Context, yc YearCounters) error {
	t.call("PutCounters")
	t.counters[fmt.Sprint(yc.PsnNo, "/", yc.Year)] = yc
	return nil
}

func (t *fakeTx) Visit(_ context.Context, id string) (*Visit, error) {
	t.call("Visit")
	return lookup(t.visits, id), nil
}

func (t *fakeTx) PutVisit(_ context.Context, v *Visit) error {
	t.call("PutVisit %s", v.Status)
	t.visits[v.MdtrtID] = *v
	return nil
}

func (t *fakeTx) Lines(_ context.Context, id string) ([]FeeLine, error) {
	t.call("Lines")
	var out []FeeLine
	for _, l := range t.lines[id] {
		if !l.Withdrawn {
			out = append(out, l)
		}
	}
	return out, nil
}

func (t *fakeTx) PutLines(_ context.Context, ls []FeeLine) error {
	t.call("PutLines")
	for _, l := range ls {
		t.lines[l.MdtrtID] = append(append([]FeeLine(nil), t.lines[l.MdtrtID]...), l)
	}
	return nil
}

func (t *fakeTx) WithdrawBatch(_ context.Context, id, bchno string) (int, error) {
	t.call("WithdrawBatch")
	ls := append([]FeeLine(nil), t.lines[id]...)
	n := 0
	for i := range ls {
		if !ls[i].Withdrawn && (bchno == "" || ls[i].ChrgBchno == bchno) {
			ls[i].Withdrawn = true
			n++
		}
	}
	t.lines[id] = ls
	return n, nil
}

func (t *fakeTx) Settlement(_ context.Context, id string) (*Settlement, error) {
	t.call("Settlement")
	s := lookup(t.setls, id)
	if s != nil {
		s.visit, s.lines = nil, nil
	}
	return s, nil
}

func (t *fakeTx) PutSettlement(_ context.Context, s *Settlement) error {
	t.call("PutSettlement")
	t.setls[s.SetlID] = *s
	return nil
}

func (t *fakeTx) SetSettlementStatus(_ context.Context, id string, st SettlementStatus) error {
	t.call("SetSettlementStatus %s", st)
	s := t.setls[id]
	s.Status = st
	t.setls[id] = s
	return nil
}

func (t *fakeTx) SettlementsOf(context.Context, PeriodQuery) ([]Settlement, error) {
	t.call("SettlementsOf")
	return nil, nil
}

func (t *fakeTx) ChainHead(_ context.Context, chain string) (ChainHead, error) {
	t.call("ChainHead")
	return t.heads[chain], nil
}

func (t *fakeTx) AppendLedger(_ context.Context, l *LedgerTxn, ev *Event) error {
	t.call("AppendLedger %s", l.Kind)
	if t.heads[l.Chain].Seq != l.Seq-1 {
		return fmt.Errorf("chain %s moved", l.Chain)
	}
	t.heads[l.Chain] = ChainHead{Seq: l.Seq, Hash: l.Hash}
	t.txns = append(t.txns, l)
	return nil
}

// fakeEngine is an engine of province 150000 over a fakeStore holding the
// registry of testdata/persons.csv, at a fixed time.
func fakeEngine(t *testing.T) (*Engine, *fakeTx) {
	t.Helper()
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	f, err := os.Open("../testdata/persons.csv")
	require.NoError(t, err)
	defer f.Close()
	ps, err := ParsePersons(f, rs)
	require.NoError(t, err)
	tx := newFakeTx(ps)
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, rules.CST)
	return &Engine{Rules: rs, Store: &fakeStore{tx: tx}, Province: "150000", Now: func() time.Time { return now }}, tx
}
