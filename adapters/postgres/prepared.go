package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
)

// prepared keeps the statements of the engine's transactions prepared by
// name on each connection, outside pgx's statement cache.
//
// Why: pgx forgets every cached statement of a batch that failed, whatever
// the failure. Under SERIALIZABLE a serialization failure is routine, and
// after one the retry paid a round trip to deallocate the batch's statements,
// another to prepare them again, and the server parsed each again and planned
// it five more times (the custom plans PostgreSQL tries before it settles on
// a generic one). A statement prepared by name is not touched by a failed
// batch: the retry runs the statements already prepared.
//
// Only statements with parameters are prepared (pgx sends the others in the
// simple protocol), and at most maxPrepared per connection, so that a caller
// building statement texts on the fly cannot grow a connection's statements
// without bound; past the limit pgx's own cache serves.
type prepared struct {
	mu    sync.Mutex
	conns map[*pgx.Conn]map[string]bool
}

const maxPrepared = 256

// prepare prepares those of b's statements that conn has not prepared yet,
// each in a round trip of its own (once per connection and statement).
func (p *prepared) prepare(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) error {
	p.mu.Lock()
	if p.conns == nil {
		p.conns = map[*pgx.Conn]map[string]bool{}
	}
	have := p.conns[conn]
	if have == nil {
		have = map[string]bool{}
		p.conns[conn] = have
	}
	var todo []string
	for _, q := range b.QueuedQueries {
		if len(q.Arguments) > 0 && !have[q.SQL] && len(have)+len(todo) < maxPrepared && !slices.Contains(todo, q.SQL) {
			todo = append(todo, q.SQL)
		}
	}
	p.mu.Unlock()
	for _, sql := range todo {
		// A name equal to the SQL text is how pgx lets a batch find the
		// statement by its text (it names it on the server by a hash).
		if _, err := conn.Prepare(ctx, sql, sql); err != nil {
			return fmt.Errorf("preparing a statement: %w", err)
		}
		p.mu.Lock()
		if m := p.conns[conn]; m != nil {
			m[sql] = true
		}
		p.mu.Unlock()
	}
	return nil
}

// reset forgets conn's statements on both sides: after the server said a
// prepared statement is stale (its table changed shape) or unknown.
func (p *prepared) reset(ctx context.Context, conn *pgx.Conn) {
	p.forget(conn)
	_ = conn.DeallocateAll(ctx) // when this fails the connection is broken and the pool drops it
}

// forget drops what is known of conn, which is being closed.
func (p *prepared) forget(conn *pgx.Conn) {
	p.mu.Lock()
	delete(p.conns, conn)
	p.mu.Unlock()
}
