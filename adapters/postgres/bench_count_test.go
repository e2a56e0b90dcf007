package postgres_test

import (
	"context"
	"sync/atomic"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
)

// countingStore: the settlement.Tx calls BenchmarkSettle reports per settle.

// countingStore counts the settlement.Tx calls the engine makes (every
// attempt's, retries included): each is one query or one pipelined batch.
type countingStore struct {
	*postgres.Store
	calls atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	return c.Store.Update(ctx, func(ctx context.Context, tx settlement.Tx) error {
		return fn(ctx, &countingTx{Tx: tx, n: &c.calls})
	})
}

func (c *countingStore) View(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	return c.Store.View(ctx, func(ctx context.Context, tx settlement.Tx) error {
		return fn(ctx, &countingTx{Tx: tx, n: &c.calls})
	})
}

type countingTx struct {
	settlement.Tx
	n *atomic.Int64
}

func (c *countingTx) Prefetch(k settlement.Prefetch) {
	if p, ok := c.Tx.(settlement.Prefetcher); ok {
		p.Prefetch(k)
	}
}
func (c *countingTx) Message(ctx context.Context, id string) (*settlement.Message, error) {
	c.n.Add(1)
	return c.Tx.Message(ctx, id)
}
func (c *countingTx) PutMessage(ctx context.Context, m *settlement.Message) error {
	c.n.Add(1)
	return c.Tx.PutMessage(ctx, m)
}
func (c *countingTx) Person(ctx context.Context, id string) (*settlement.Person, error) {
	c.n.Add(1)
	return c.Tx.Person(ctx, id)
}
func (c *countingTx) PersonByCert(ctx context.Context, t, no string) (*settlement.Person, error) {
	c.n.Add(1)
	return c.Tx.PersonByCert(ctx, t, no)
}
func (c *countingTx) Counters(ctx context.Context, psn string, year int) (settlement.YearCounters, error) {
	c.n.Add(1)
	return c.Tx.Counters(ctx, psn, year)
}
func (c *countingTx) PutCounters(ctx context.Context, yc settlement.YearCounters) error {
	c.n.Add(1)
	return c.Tx.PutCounters(ctx, yc)
}
func (c *countingTx) Visit(ctx context.Context, id string) (*settlement.Visit, error) {
	c.n.Add(1)
	return c.Tx.Visit(ctx, id)
}
func (c *countingTx) PutVisit(ctx context.Context, v *settlement.Visit) error {
	c.n.Add(1)
	return c.Tx.PutVisit(ctx, v)
}
func (c *countingTx) Lines(ctx context.Context, id string) ([]settlement.FeeLine, error) {
	c.n.Add(1)
	return c.Tx.Lines(ctx, id)
}
func (c *countingTx) PutLines(ctx context.Context, l []settlement.FeeLine) error {
	c.n.Add(1)
	return c.Tx.PutLines(ctx, l)
}
func (c *countingTx) WithdrawBatch(ctx context.Context, id, bch string) (int, error) {
	c.n.Add(1)
	return c.Tx.WithdrawBatch(ctx, id, bch)
}
func (c *countingTx) Settlement(ctx context.Context, id string) (*settlement.Settlement, error) {
	c.n.Add(1)
	return c.Tx.Settlement(ctx, id)
}
func (c *countingTx) PutSettlement(ctx context.Context, s *settlement.Settlement) error {
	c.n.Add(1)
	return c.Tx.PutSettlement(ctx, s)
}
func (c *countingTx) SetSettlementStatus(ctx context.Context, id string, s settlement.SettlementStatus) error {
	c.n.Add(1)
	return c.Tx.SetSettlementStatus(ctx, id, s)
}
func (c *countingTx) SettlementsOf(ctx context.Context, q settlement.PeriodQuery) ([]settlement.Settlement, error) {
	c.n.Add(1)
	return c.Tx.SettlementsOf(ctx, q)
}
func (c *countingTx) ChainHead(ctx context.Context, chain string) (settlement.ChainHead, error) {
	c.n.Add(1)
	return c.Tx.ChainHead(ctx, chain)
}
func (c *countingTx) AppendLedger(ctx context.Context, t *settlement.LedgerTxn, ev *settlement.Event) error {
	c.n.Add(1)
	return c.Tx.AppendLedger(ctx, t, ev)
}
