package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The pipelining engine of a transaction: statements queued and sent in
// batches, one-row updates grouped, and the flush that reads their results.

// tx implements settlement.Tx on one pgx transaction. Amounts cross the wire
// as decimal text (DECIMAL columns cast to TEXT on read, text parameters cast
// to DECIMAL on write), so no float is ever involved.
//
// Writes whose result nothing waits for are queued and sent as one pipelined
// batch before the next read or before COMMIT: a settlement's dozen inserts
// and updates cost one round trip instead of one each. Their errors (a
// serialization failure included, which makes the whole transaction retry)
// surface at that flush. Reads named by Prefetch join the same batch; their
// results wait in ahead until a getter asks for them.
type tx struct {
	tx      querier
	begun   bool // a statement has been sent: the transaction is open on the server
	pending pgx.Batch
	results []func(pgx.BatchResults) error
	ahead   map[string]fetched
	written map[string]bool // keys forgotten: never read ahead again
	// stored holds the keys of rows this transaction found or inserted: their
	// Put* is a plain UPDATE, cheaper than an upsert (a HOT update when no
	// indexed column changes).
	stored map[string]bool
	// group is the last group of one-row updates queued (see queueOne).
	group *group
	// prepare, when set, prepares a batch's statements before it is sent
	// (see prepared).
	prepare func(ctx context.Context, b *pgx.Batch) error
}

func (t *tx) found(key string) {
	if t.stored == nil {
		t.stored = map[string]bool{}
	}
	t.stored[key] = true
}

// queueOne defers an UPDATE that must change exactly one row, and makes the
// server enforce it: the statement divides by the number of rows changed, so
// changing none fails on the server (SQLSTATE 22012) and aborts the
// transaction, even when COMMIT follows in the same batch. A check of the
// command tag on the client would come too late for that (see
// Store.pipelined).
//
// Consecutive one-row updates of different tables travel as one statement
// (see group), dividing by the product of their counts: a settlement's
// three (visit, counters, chain head) cost the server one statement instead
// of three. (Inserts travel alone: grouped in WITH clauses the same way, a
// settlement's four made it slower, not faster, in paired BenchmarkSettle
// runs.)
func (t *tx) queueOne(format string, fmtArgs []any, update string, args ...any) {
	table := updatedTable(update)
	if g := t.group; g != nil && g.at == len(t.results)-1 && table != "" && !slices.Contains(g.tables, table) {
		g.add(table, format, fmtArgs, update, args)
		return
	}
	g := &group{}
	g.add(table, format, fmtArgs, update, args)
	g.q, g.at = t.pending.Queue(g.sql, g.args...), len(t.results)
	t.results = append(t.results, func(br pgx.BatchResults) error {
		_, err := br.Exec()
		return g.check(err)
	})
	t.group = g
}

// group is one statement of one-row updates queued one after another, each
// in a WITH clause. Only consecutive updates join, so no statement moves
// past another; only updates of different tables, because the clauses of
// one statement share a snapshot and cannot see each other's changes.
type group struct {
	q       *pgx.QueuedQuery
	at      int // its index in tx.results
	tables  []string
	updates []string // renumbered, in order
	what    []func() string
	sql     string
	args    []any
}

func (g *group) add(table, format string, fmtArgs []any, update string, args []any) {
	g.tables = append(g.tables, table)
	g.updates = append(g.updates, renumber(update, len(g.args)))
	g.what = append(g.what, func() string { return fmt.Sprintf(format, fmtArgs...) })
	g.args = append(g.args, args...)
	g.sql = groupSQL(g.sql, g.updates)
	if g.q != nil {
		g.q.SQL, g.q.Arguments = g.sql, g.args
	}
}

// check names every update of the group in an error: the server does not
// say which one found no row.
func (g *group) check(err error) error {
	if err == nil {
		return nil
	}
	what := make([]string, len(g.what))
	for i, w := range g.what {
		what[i] = w()
	}
	switch {
	case sqlState(err) == "22012" && len(what) == 1:
		return fmt.Errorf("%s: no such row", what[0])
	case sqlState(err) == "22012":
		return fmt.Errorf("%s: one of them found no such row", strings.Join(what, "; "))
	}
	return fmt.Errorf("%s: %w", strings.Join(what, "; "), err)
}

// updatedTable is the table an UPDATE statement names ("" for another
// statement, which then travels alone).
func updatedTable(update string) string {
	f := strings.Fields(update)
	if len(f) < 2 || !strings.EqualFold(f[0], "UPDATE") {
		return ""
	}
	return f[1]
}

var paramRE = regexp.MustCompile(`\$(\d+)`)

// renumber shifts the parameters $1, $2... of sql by off, once per
// statement and offset (a settlement sends the same few again and again).
func renumber(sql string, off int) string {
	if off == 0 {
		return sql
	}
	key := renumberKey{sql, off}
	if v, ok := renumbered.Load(key); ok {
		return v.(string)
	}
	v, _ := renumbered.LoadOrStore(key, paramRE.ReplaceAllStringFunc(sql, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		return "$" + strconv.Itoa(n+off)
	}))
	return v.(string)
}

type renumberKey struct {
	sql string
	off int
}

var renumbered sync.Map // renumberKey → renumber's result

// groupSQL is the statement of a group, prev the statement of all but its
// last update: built once per sequence of updates, looked up by the last
// step (cheaper than by the whole sequence).
func groupSQL(prev string, updates []string) string {
	key := groupKey{prev, updates[len(updates)-1]}
	if sql, ok := groupsSQL.Load(key); ok {
		return sql.(string)
	}
	var b strings.Builder
	b.WriteString("WITH ")
	for i, u := range updates {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "changed%d AS (%s RETURNING 1)", i, u)
	}
	b.WriteString(" SELECT 1 / (")
	for i := range updates {
		if i > 0 {
			b.WriteString(" * ")
		}
		fmt.Fprintf(&b, "(SELECT count(*) FROM changed%d)", i)
	}
	b.WriteString(")")
	v, _ := groupsSQL.LoadOrStore(key, b.String())
	return v.(string)
}

type groupKey struct{ prev, last string }

var groupsSQL sync.Map // groupKey → groupSQL's result

// querier is what tx needs of a pgx.Tx or of a connection whose
// transaction it manages itself (Store.pipelined).
type querier interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// fetched is one read sent ahead of its getter: pending until its batch
// has run, then its value.
type fetched struct {
	val     any
	pending bool
}

// queue defers a write; check sees its outcome at the flush. check may add
// context to the server's error, but must not fail a statement the server
// carried out: the flush may carry COMMIT too (Store.pipelined), too late
// for the client to refuse. A condition on the outcome belongs in the
// statement (queueOne).
func (t *tx) queue(check func(pgconn.CommandTag, error) error, sql string, args ...any) {
	t.pending.Queue(sql, args...)
	t.results = append(t.results, func(br pgx.BatchResults) error { return check(br.Exec()) })
}

// queueRead defers a read; read consumes its result at the flush.
func (t *tx) queueRead(read func(pgx.BatchResults) error, sql string, args ...any) {
	t.pending.Queue(sql, args...)
	t.results = append(t.results, read)
}

// wrapErr is a check that only adds context to a failure.
func wrapErr(format string, args ...any) func(pgconn.CommandTag, error) error {
	return func(_ pgconn.CommandTag, err error) error {
		if err != nil {
			return fmt.Errorf(format+": %w", append(args, err)...)
		}
		return nil
	}
}

// flush sends the queued statements.
func (t *tx) flush(ctx context.Context) error {
	if len(t.results) == 0 {
		return nil
	}
	results := t.results
	b := t.pending
	t.pending, t.results, t.group = pgx.Batch{}, nil, nil
	if t.prepare != nil {
		if err := t.prepare(ctx, &b); err != nil {
			return err
		}
	}
	t.begun = true
	br := t.tx.SendBatch(ctx, &b)
	var first error
	for _, read := range results {
		if err := read(br); err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

func (t *tx) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.flush(ctx); err != nil {
		return errRow{err}
	}
	return t.tx.QueryRow(ctx, sql, args...)
}

func (t *tx) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.tx.Query(ctx, sql, args...)
}

func (t *tx) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.flush(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.tx.Exec(ctx, sql, args...)
}

// errRow is a row whose query never ran because an earlier write failed.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
