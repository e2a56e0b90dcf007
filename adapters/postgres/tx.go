package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

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

// readAhead queues a read whose result is kept under key for its getter.
// A key already fetched (or being fetched) is not fetched again.
func (t *tx) readAhead(key string, scan func(pgx.BatchResults) (any, error), sql string, args ...any) {
	t.readAheadAll([]string{key}, func(br pgx.BatchResults) (map[string]any, error) {
		v, err := scan(br)
		return map[string]any{key: v}, err
	}, sql, args...)
}

// readAheadAll queues one read whose result holds several objects, kept
// under their keys; a key scan leaves out is not known ahead, and its
// getter asks the database.
func (t *tx) readAheadAll(keys []string, scan func(pgx.BatchResults) (map[string]any, error), sql string, args ...any) {
	for _, key := range keys {
		if _, ok := t.ahead[key]; ok {
			return
		}
	}
	if t.ahead == nil {
		t.ahead = map[string]fetched{}
	}
	for _, key := range keys {
		t.ahead[key] = fetched{pending: true}
	}
	t.queueRead(func(br pgx.BatchResults) error {
		vals, err := scan(br)
		for _, key := range keys {
			if _, ok := vals[key]; !ok || err != nil {
				delete(t.ahead, key)
			}
		}
		if err != nil {
			return err
		}
		for key, v := range vals {
			// A key written since the read was queued keeps its write: the
			// read ran before it in the batch.
			if !t.written[key] {
				t.ahead[key] = fetched{val: v}
			}
		}
		return nil
	}, sql, args...)
}

// take returns what was read ahead under key, once: a second call, or a
// call after a write dropped the key, goes to the database (ok false). When
// the batch carrying the read fails, ok is true and err is the failure: the
// transaction is aborted, and asking the database again would only be told so.
func (t *tx) take(ctx context.Context, key string) (val any, ok bool, err error) {
	f, ok := t.ahead[key]
	if !ok {
		return nil, false, nil
	}
	if f.pending {
		if err := t.flush(ctx); err != nil {
			return nil, true, err
		}
		if f, ok = t.ahead[key]; !ok {
			return nil, false, nil
		}
	}
	delete(t.ahead, key)
	return f.val, true, nil
}

// forget drops what was read ahead under key, for good: the transaction is
// changing it, and a read queued before the change must not bring it back.
func (t *tx) forget(key string) {
	delete(t.ahead, key)
	if t.written == nil {
		t.written = map[string]bool{}
	}
	t.written[key] = true
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

func money(s string) (rules.Money, error) {
	m, err := rules.ParseMoney(s)
	if err != nil {
		return 0, fmt.Errorf("stored amount %q: %w", s, err)
	}
	return m, nil
}

// scanMoney parses several DECIMAL-as-TEXT columns at once.
func scanMoney(dst []*rules.Money, src []string) error {
	for i := range dst {
		m, err := money(src[i])
		if err != nil {
			return err
		}
		*dst[i] = m
	}
	return nil
}

func optDate(d rules.Date) any {
	if d == 0 {
		return nil
	}
	return d.String()
}

func (t *tx) Message(ctx context.Context, msgid string) (*settlement.Message, error) {
	var m settlement.Message
	var status, answer string
	err := t.queryRow(ctx, `SELECT msgid, infno, fixmedins_code, digest, status, ref, answer, created_at
		FROM messages WHERE msgid = $1`, msgid).Scan(&m.Msgid, &m.Infno, &m.Institution, &m.Digest, &status, &m.Ref, &answer, &m.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading message %s: %w", msgid, err)
	}
	m.Status, m.Answer = settlement.MessageStatus(status), []byte(answer)
	return &m, nil
}

func (t *tx) PutMessage(ctx context.Context, m *settlement.Message) error {
	if t.stored["message:"+m.Msgid] {
		t.queueOne("storing message %s", []any{m.Msgid}, `UPDATE messages SET status = $2, ref = $3, answer = $4 WHERE msgid = $1`,
			m.Msgid, string(m.Status), m.Ref, string(m.Answer))
		return nil
	}
	t.queue(wrapErr("storing message %s", m.Msgid), `INSERT INTO messages (msgid, infno, fixmedins_code, digest, status, ref, answer, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (msgid) DO UPDATE SET status = excluded.status, ref = excluded.ref, answer = excluded.answer`,
		m.Msgid, m.Infno, m.Institution, m.Digest, string(m.Status), m.Ref, string(m.Answer), m.Created)
	return nil
}

// ClaimMessage records msgid as in flight, unless it is taken: then it
// returns the message that took it. Inserting first, rather than reading
// first, matters under SERIALIZABLE: a read of an absent key locks the
// index page where it would go, so concurrent new messages of one
// institution (whose msgids sort together) would abort each other.
//
// The claim travels in one batch with whatever was prefetched.
func (t *tx) ClaimMessage(ctx context.Context, m *settlement.Message) (*settlement.Message, error) {
	claimed := false
	t.queue(func(tag pgconn.CommandTag, err error) error {
		if err != nil {
			return fmt.Errorf("claiming message %s: %w", m.Msgid, err)
		}
		claimed = tag.RowsAffected() == 1
		if claimed {
			t.found("message:" + m.Msgid)
		}
		return nil
	}, `INSERT INTO messages (msgid, infno, fixmedins_code, digest, status, ref, answer, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (msgid) DO NOTHING`,
		m.Msgid, m.Infno, m.Institution, m.Digest, cmp.Or(string(m.Status), "pending"), m.Ref, string(m.Answer), m.Created)
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	if claimed {
		return nil, nil
	}
	return t.Message(ctx, m.Msgid)
}

// Prefetch queues the reads k names, to travel with the next statement sent
// (see settlement.Prefetcher).
func (t *tx) Prefetch(k settlement.Prefetch) {
	if k.CertNo != "" && k.Year != 0 {
		t.prefetchCert(k)
	}
	withHead := k.Person != "" && k.Year != 0 && k.Chain != ""
	if k.Visit != "" && withHead {
		t.prefetchSettle(k) // the visit and the person in one statement
		return
	}
	if k.Visit != "" {
		t.prefetchVisit(k.Visit)
	}
	switch {
	case withHead:
		t.prefetchPerson(k)
	case k.Person != "":
		t.readAhead("person:"+k.Person, func(br pgx.BatchResults) (any, error) {
			return scanPerson(br.QueryRow())
		}, personSQL, k.Person)
	}
}

// prefetchVisit reads a visit and its lines in one statement, a row per
// line (one row of NULL line columns for a visit without lines, none for no
// visit).
func (t *tx) prefetchVisit(id string) {
	visit, lines := "visit:"+id, "lines:"+id
	t.readAheadAll([]string{visit, lines}, func(br pgx.BatchResults) (map[string]any, error) {
		v, ls, err := scanVisitLines(br, id, nil)
		if err != nil {
			return nil, err
		}
		return map[string]any{visit: v, lines: ls}, nil
	}, `SELECT v.*, l.* FROM (`+visitSQL+`) v
		LEFT JOIN (SELECT `+feeLineCols+` FROM fee_lines WHERE mdtrt_id = $1 AND NOT withdrawn) l ON true`, id)
}

// scanVisitLines reads the rows of a visit LEFT JOINed with its lines: the
// visit's columns, then, when pa is not nil, those of a personAhead, then
// the line's (NULL when the visit has none). The visit's and the person's
// columns are the same on every row: scanned from the first, skipped after.
// No row: no visit (nil), and no lines.
func scanVisitLines(br pgx.BatchResults, id string, pa *personAhead) (*settlement.Visit, []settlement.FeeLine, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("reading visit %s: %w", id, err)
	}
	defer rows.Close()
	var vr visitRow
	head := vr.dest()
	if pa != nil {
		head = append(head, pa.dest(true)...)
	}
	skip := make([]any, len(head)) // nil destinations: pgx skips the columns
	var v *settlement.Visit
	out := []settlement.FeeLine{}
	for rows.Next() {
		if v != nil {
			head = skip
		}
		var lr lineRow
		lineDest, present := nullable(lr.dest())
		if err := rows.Scan(append(head, lineDest...)...); err != nil {
			return nil, nil, fmt.Errorf("reading visit %s: %w", id, err)
		}
		if v == nil {
			v = vr.visit()
		}
		if !present() {
			continue
		}
		l, err := lr.line(id)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading visit %s: %w", id, err)
	}
	if v == nil {
		return nil, nil, nil
	}
	sortLines(out)
	return v, out, nil
}

// sortLines puts a visit's lines in the order they were charged (fee_ocur_time,
// then feedetl_sn, byte by byte). Sorting here rather than in SQL spares the
// server a sort on the settle path and makes the order the same whatever
// the database's collation.
func sortLines(lines []settlement.FeeLine) {
	slices.SortFunc(lines, func(a, b settlement.FeeLine) int {
		if c := a.FeeTime.Compare(b.FeeTime); c != 0 {
			return c
		}
		return strings.Compare(a.SN, b.SN)
	})
}

// prefetchSettle reads what settling a visit reads, in one statement: the
// visit and its lines (as prefetchVisit), and the person with their
// counters of a year and their chain head (as prefetchPerson), whose columns
// ride along on the visit's first row. No visit, no row: the person is then
// read when asked.
func (t *tx) prefetchSettle(k settlement.Prefetch) {
	visit, lines := "visit:"+k.Visit, "lines:"+k.Visit
	person, counters, chain := "person:"+k.Person, countersKey(k.Person, k.Year), "chain:"+k.Chain
	t.readAheadAll([]string{visit, lines, person, counters, chain}, func(br pgx.BatchResults) (map[string]any, error) {
		var pa personAhead
		v, ls, err := scanVisitLines(br, k.Visit, &pa)
		if err != nil || v == nil {
			return map[string]any{visit: v, lines: ls}, err
		}
		vals := map[string]any{visit: v, lines: ls}
		p, yc, h, err := pa.read(k.Year)
		if err != nil {
			return nil, err
		}
		vals[person] = p
		if p != nil { // else counters and chain asked when needed
			vals[counters], vals[chain] = yc, h
		}
		return vals, nil
	}, `SELECT v.*, pc.*, l.* FROM (`+visitSQL+`) v
		LEFT JOIN (SELECT p.*, c.*, h.seq, h.hash
			FROM (SELECT `+personCols+` FROM persons WHERE psn_no = $2) p
			LEFT JOIN (SELECT `+counterCols+` FROM person_counters WHERE psn_no = $2 AND year = $3) c ON true
			LEFT JOIN chain_heads h ON h.chain = $4) pc ON true
		LEFT JOIN (SELECT `+feeLineCols+` FROM fee_lines WHERE mdtrt_id = $1 AND NOT withdrawn) l ON true`,
		k.Visit, k.Person, k.Year, k.Chain)
}

// personAhead receives a person (personCols), their counters of a year
// (counterCols) and, when asked, their chain head (seq, hash), each of which
// may be NULL as the outer side of a LEFT JOIN.
type personAhead struct {
	pr               personRow
	m                [9]string
	admissions       int
	person, counters func() bool
	seq              pgtype.Int8
	hash             pgtype.Text
}

// dest is the scan destinations of the person's columns and the counters',
// then, with head, the chain head's.
func (a *personAhead) dest(head bool) []any {
	pd, person := nullable(a.pr.dest())
	cd, counters := nullable([]any{&a.m[0], &a.m[1], &a.m[2], &a.m[3], &a.m[4], &a.m[5], &a.m[6], &a.m[7], &a.m[8], &a.admissions})
	a.person, a.counters = person, counters
	d := append(pd, cd...)
	if head {
		d = append(d, &a.seq, &a.hash)
	}
	return d
}

// read returns the person (nil: no such person), their counters (nil: no
// row for year, else a settlement.YearCounters) and their chain head (the
// zero head when the chain has none).
func (a *personAhead) read(year int) (*settlement.Person, any, settlement.ChainHead, error) {
	var head settlement.ChainHead
	if !a.person() {
		return nil, nil, head, nil
	}
	p, err := a.pr.person()
	if err != nil {
		return nil, nil, head, err
	}
	if a.seq.Valid {
		head = settlement.ChainHead{Seq: a.seq.Int64, Hash: a.hash.String}
	}
	if !a.counters() {
		return p, nil, head, nil
	}
	yc := settlement.YearCounters{PsnNo: p.PsnNo, Year: year}
	if err := countersFrom(&yc, a.m, a.admissions); err != nil {
		return nil, nil, head, err
	}
	return p, yc, head, nil
}

// nullable wraps scan destinations (pointers) for columns that may all be
// NULL, as the outer side of a LEFT JOIN that matched nothing: each scans
// into a pgtype value of its own (which pgx fills without reflection, unlike
// a **T), and present copies them into dest and says whether they were
// there. The destinations are *string, *time.Time, *bool or *int.
func nullable(dest []any) (wrapped []any, present func() bool) {
	wrapped = make([]any, len(dest))
	for i, d := range dest {
		switch d.(type) {
		case *string:
			wrapped[i] = new(pgtype.Text)
		case *time.Time:
			wrapped[i] = new(pgtype.Timestamptz)
		case *bool:
			wrapped[i] = new(pgtype.Bool)
		case *int:
			wrapped[i] = new(pgtype.Int8)
		default:
			wrapped[i] = unsupported{d}
		}
	}
	return wrapped, func() bool {
		for i, d := range dest {
			var ok bool
			switch d := d.(type) {
			case *string:
				v := wrapped[i].(*pgtype.Text)
				*d, ok = v.String, v.Valid
			case *time.Time:
				v := wrapped[i].(*pgtype.Timestamptz)
				*d, ok = v.Time, v.Valid
			case *bool:
				v := wrapped[i].(*pgtype.Bool)
				*d, ok = v.Bool, v.Valid
			case *int:
				v := wrapped[i].(*pgtype.Int8)
				*d, ok = int(v.Int64), v.Valid
			}
			if !ok {
				return false
			}
		}
		return true
	}
}

// unsupported is a scan destination nullable cannot wrap: pgx refuses to
// scan into it, naming its type, so a new column type fails loudly.
type unsupported struct{ dest any }

// prefetchPerson reads a person, their counters of a year and their ledger
// chain's head in one statement (the settlement's three reads of them).
func (t *tx) prefetchPerson(k settlement.Prefetch) {
	person, counters, chain := "person:"+k.Person, countersKey(k.Person, k.Year), "chain:"+k.Chain
	t.readAheadAll([]string{person, counters, chain}, func(br pgx.BatchResults) (map[string]any, error) {
		p, yc, head, err := scanPersonAhead(br.QueryRow(), k.Year, true)
		if err != nil || p == nil {
			return map[string]any{person: p}, err // counters and chain asked when needed
		}
		return map[string]any{person: p, counters: yc, chain: head}, nil
	}, `SELECT p.*, c.*, h.seq, h.hash
		FROM (SELECT `+personCols+` FROM persons WHERE psn_no = $1) p
		LEFT JOIN (SELECT `+counterCols+` FROM person_counters WHERE psn_no = $1 AND year = $2) c ON true
		LEFT JOIN chain_heads h ON h.chain = $3`, k.Person, k.Year, k.Chain)
}

// prefetchCert reads the person of a certificate (1101) with their
// counters of a year, in one statement.
func (t *tx) prefetchCert(k settlement.Prefetch) {
	key := certKey(k.CertType, k.CertNo)
	t.readAheadAll([]string{key}, func(br pgx.BatchResults) (map[string]any, error) {
		p, yc, _, err := scanPersonAhead(br.QueryRow(), k.Year, false)
		if err != nil || p == nil {
			return map[string]any{key: p}, err
		}
		return map[string]any{key: p, countersKey(p.PsnNo, k.Year): yc}, nil
	}, `SELECT p.*, c.*
		FROM (SELECT `+personCols+` FROM persons WHERE `+certColumn(k.CertType)+` = $1) p
		LEFT JOIN LATERAL (SELECT `+counterCols+` FROM person_counters WHERE psn_no = p.psn_no AND year = $2) c ON true`,
		k.CertNo, k.Year)
}

// scanPersonAhead reads a row of personCols, then counterCols (all NULL
// when the year has no row), then, with head, a chain head's seq and hash,
// as personAhead.read returns them. The person is nil when there is no row.
func scanPersonAhead(row pgx.Row, year int, head bool) (*settlement.Person, any, settlement.ChainHead, error) {
	var pa personAhead
	err := row.Scan(pa.dest(head)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, settlement.ChainHead{}, nil
	}
	if err != nil {
		return nil, nil, settlement.ChainHead{}, fmt.Errorf("reading person: %w", err)
	}
	return pa.read(year)
}

const personCols = `psn_no, psn_name, gend, certno, card_no, insuplc_admdvs, insutype, retired, assistance,
	opening_balc::TEXT, reg_admdvs, COALESCE(reg_begn::TEXT, ''), COALESCE(reg_endn::TEXT, '')`

// personRow receives the columns of personCols.
type personRow struct {
	p                settlement.Person
	balc, begn, endn string
}

func (r *personRow) dest() []any {
	p := &r.p
	return []any{&p.PsnNo, &p.Name, &p.Gend, &p.Certno, &p.CardNo, &p.InsuredRegion, &p.Insutype, &p.Retired,
		&p.Assistance, &r.balc, &p.RegRegion, &r.begn, &r.endn}
}

func (r *personRow) person() (*settlement.Person, error) {
	p := r.p
	var err error
	if p.OpeningBalc, err = money(r.balc); err != nil {
		return nil, err
	}
	if r.begn != "" {
		if p.RegBegin, err = rules.ParseDate(r.begn); err != nil {
			return nil, err
		}
		if p.RegEnd, err = rules.ParseDate(r.endn); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

func scanPerson(row pgx.Row) (*settlement.Person, error) {
	var r personRow
	err := row.Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading person: %w", err)
	}
	return r.person()
}

const personSQL = `SELECT ` + personCols + ` FROM persons WHERE psn_no = $1`

func (t *tx) Person(ctx context.Context, psnNo string) (*settlement.Person, error) {
	if v, ok, err := t.take(ctx, "person:"+psnNo); ok {
		p, _ := v.(*settlement.Person)
		return p, err
	}
	return scanPerson(t.queryRow(ctx, personSQL, psnNo))
}

func (t *tx) PersonByCert(ctx context.Context, certType, certNo string) (*settlement.Person, error) {
	if v, ok, err := t.take(ctx, certKey(certType, certNo)); ok {
		p, _ := v.(*settlement.Person)
		return p, err
	}
	return scanPerson(t.queryRow(ctx, `SELECT `+personCols+` FROM persons WHERE `+certColumn(certType)+` = $1`, certNo))
}

// certColumn is the registry column of a certificate type: 03 is the card, 02 the ID number.
func certColumn(certType string) string {
	if certType == "03" {
		return "card_no"
	}
	return "certno"
}

func certKey(certType, certNo string) string { return "cert:" + certColumn(certType) + ":" + certNo }

// PutPerson upserts a registry row (seeding and registry maintenance).
func (t *tx) PutPerson(ctx context.Context, p *settlement.Person) error {
	t.forget("person:" + p.PsnNo)
	t.queue(wrapErr("storing person %s", p.PsnNo), `INSERT INTO persons (psn_no, psn_name, gend, certno, card_no, insuplc_admdvs, insutype,
		retired, assistance, opening_balc, reg_admdvs, reg_begn, reg_endn)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::TEXT::DECIMAL(18,2), $11, $12::TEXT::DATE, $13::TEXT::DATE)
		ON CONFLICT (psn_no) DO UPDATE SET psn_name = excluded.psn_name, gend = excluded.gend,
		certno = excluded.certno, card_no = excluded.card_no, insuplc_admdvs = excluded.insuplc_admdvs,
		insutype = excluded.insutype, retired = excluded.retired, assistance = excluded.assistance,
		reg_admdvs = excluded.reg_admdvs, reg_begn = excluded.reg_begn, reg_endn = excluded.reg_endn`,
		p.PsnNo, p.Name, p.Gend, p.Certno, p.CardNo, p.InsuredRegion, p.Insutype, p.Retired, p.Assistance,
		p.OpeningBalc.String(), p.RegRegion, optDate(p.RegBegin), optDate(p.RegEnd))
	return nil
}

const counterCols = `dedc_used_outpatient::TEXT, dedc_used_chronic::TEXT, fund_paid_outpatient::TEXT,
	fund_paid_inpatient::TEXT, burden_ytd::TEXT, supp_paid_ytd::TEXT, maf_paid_ytd::TEXT, acct_balc::TEXT,
	opening_balc::TEXT, admissions`

// scanCounters reads a row selecting the given leading columns, then counterCols.
func scanCounters(row pgx.Row, yc *settlement.YearCounters, leading ...any) error {
	var m [9]string
	var admissions int
	dst := append(leading, &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8], &admissions)
	if err := row.Scan(dst...); err != nil {
		return err
	}
	return countersFrom(yc, m, admissions)
}

// countersFrom fills yc from the columns of counterCols.
func countersFrom(yc *settlement.YearCounters, m [9]string, admissions int) error {
	c := &yc.Counters
	c.Admissions = admissions
	return scanMoney([]*rules.Money{&c.DedcUsedOutpatient, &c.DedcUsedChronic, &c.FundPaidOutpatient,
		&c.FundPaidInpatient, &c.BurdenYTD, &c.SuppPaidYTD, &c.MafPaidYTD, &c.AcctBalc, &yc.OpeningBalc}, m[:])
}

const countersSQL = `SELECT ` + counterCols + ` FROM person_counters WHERE psn_no = $1 AND year = $2`

func countersKey(psnNo string, year int) string {
	return "counters:" + psnNo + "/" + strconv.Itoa(year)
}

func (t *tx) Counters(ctx context.Context, psnNo string, year int) (settlement.YearCounters, error) {
	yc := settlement.YearCounters{PsnNo: psnNo, Year: year}
	var err error
	if v, ok, ferr := t.take(ctx, countersKey(psnNo, year)); ok {
		if ferr != nil {
			return yc, ferr
		}
		if v != nil {
			t.found(countersKey(psnNo, year))
			return v.(settlement.YearCounters), nil
		}
		err = pgx.ErrNoRows
	} else if err = scanCounters(t.queryRow(ctx, countersSQL, psnNo, year), &yc); err == nil {
		t.found(countersKey(psnNo, year))
		return yc, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return yc, fmt.Errorf("reading counters of %s for %d: %w", psnNo, year, err)
	}
	// A new year opens with the balance the account closed the last year on
	// record with, or the registry's opening balance.
	var balc string
	err = t.queryRow(ctx, `SELECT acct_balc::TEXT FROM person_counters WHERE psn_no = $1 AND year < $2
		ORDER BY year DESC LIMIT 1`, psnNo, year).Scan(&balc)
	if errors.Is(err, pgx.ErrNoRows) {
		err = t.queryRow(ctx, `SELECT opening_balc::TEXT FROM persons WHERE psn_no = $1`, psnNo).Scan(&balc)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return yc, nil
	}
	if err != nil {
		return yc, fmt.Errorf("opening counters of %s for %d: %w", psnNo, year, err)
	}
	if yc.OpeningBalc, err = money(balc); err != nil {
		return yc, err
	}
	yc.Counters.AcctBalc = yc.OpeningBalc
	return yc, nil
}

func (t *tx) PutCounters(ctx context.Context, yc settlement.YearCounters) error {
	key := countersKey(yc.PsnNo, yc.Year)
	t.forget(key)
	c := yc.Counters
	if t.stored[key] {
		t.queueOne("storing counters of %s for %d", []any{yc.PsnNo, yc.Year}, `UPDATE person_counters SET
			dedc_used_outpatient = $3::TEXT::DECIMAL(18,2), dedc_used_chronic = $4::TEXT::DECIMAL(18,2),
			fund_paid_outpatient = $5::TEXT::DECIMAL(18,2), fund_paid_inpatient = $6::TEXT::DECIMAL(18,2),
			burden_ytd = $7::TEXT::DECIMAL(18,2), supp_paid_ytd = $8::TEXT::DECIMAL(18,2), maf_paid_ytd = $9::TEXT::DECIMAL(18,2),
			acct_balc = $10::TEXT::DECIMAL(18,2), admissions = $11
			WHERE psn_no = $1 AND year = $2`,
			yc.PsnNo, yc.Year, c.DedcUsedOutpatient.String(), c.DedcUsedChronic.String(), c.FundPaidOutpatient.String(),
			c.FundPaidInpatient.String(), c.BurdenYTD.String(), c.SuppPaidYTD.String(), c.MafPaidYTD.String(),
			c.AcctBalc.String(), c.Admissions)
		return nil
	}
	t.found(key) // inserted by the upsert below
	t.queue(wrapErr("storing counters of %s for %d", yc.PsnNo, yc.Year), `INSERT INTO person_counters (psn_no, year, dedc_used_outpatient, dedc_used_chronic,
		fund_paid_outpatient, fund_paid_inpatient, burden_ytd, supp_paid_ytd, maf_paid_ytd, acct_balc, opening_balc, admissions)
		VALUES ($1, $2, $3::TEXT::DECIMAL(18,2), $4::TEXT::DECIMAL(18,2), $5::TEXT::DECIMAL(18,2), $6::TEXT::DECIMAL(18,2),
		$7::TEXT::DECIMAL(18,2), $8::TEXT::DECIMAL(18,2), $9::TEXT::DECIMAL(18,2), $10::TEXT::DECIMAL(18,2),
		$11::TEXT::DECIMAL(18,2), $12)
		ON CONFLICT (psn_no, year) DO UPDATE SET dedc_used_outpatient = excluded.dedc_used_outpatient,
		dedc_used_chronic = excluded.dedc_used_chronic, fund_paid_outpatient = excluded.fund_paid_outpatient,
		fund_paid_inpatient = excluded.fund_paid_inpatient, burden_ytd = excluded.burden_ytd,
		supp_paid_ytd = excluded.supp_paid_ytd, maf_paid_ytd = excluded.maf_paid_ytd, acct_balc = excluded.acct_balc,
		admissions = excluded.admissions`,
		yc.PsnNo, yc.Year, c.DedcUsedOutpatient.String(), c.DedcUsedChronic.String(), c.FundPaidOutpatient.String(),
		c.FundPaidInpatient.String(), c.BurdenYTD.String(), c.SuppPaidYTD.String(), c.MafPaidYTD.String(),
		c.AcctBalc.String(), yc.OpeningBalc.String(), c.Admissions)
	return nil
}

const visitSQL = `SELECT mdtrt_id, psn_no, fixmedins_code, kind, med_type, insutype, begntime, endtime,
	ipt_otp_no, status, dise_codg, dise_name FROM visits WHERE mdtrt_id = $1`

func (t *tx) Visit(ctx context.Context, mdtrtID string) (*settlement.Visit, error) {
	var v *settlement.Visit
	got, ok, err := t.take(ctx, "visit:"+mdtrtID)
	if ok {
		v, _ = got.(*settlement.Visit)
	} else {
		v, err = scanVisit(t.queryRow(ctx, visitSQL, mdtrtID), mdtrtID)
	}
	if v != nil {
		t.found("visit:" + mdtrtID)
	}
	return v, err
}

// visitRow receives the columns of visitSQL.
type visitRow struct {
	v            settlement.Visit
	kind, status string
	end          *time.Time
}

func (r *visitRow) dest() []any {
	v := &r.v
	return []any{&v.MdtrtID, &v.PsnNo, &v.Institution, &r.kind, &v.MedType, &v.Insutype, &v.Begin, &r.end,
		&v.IptOtpNo, &r.status, &v.DiseCodg, &v.DiseName}
}

func (r *visitRow) visit() *settlement.Visit {
	v := r.v
	v.Kind, v.Status = settlement.VisitKind(r.kind), settlement.VisitStatus(r.status)
	if r.end != nil {
		v.End = *r.end
	}
	return &v
}

func scanVisit(row pgx.Row, mdtrtID string) (*settlement.Visit, error) {
	var r visitRow
	err := row.Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading visit %s: %w", mdtrtID, err)
	}
	return r.visit(), nil
}

func (t *tx) PutVisit(ctx context.Context, v *settlement.Visit) error {
	key := "visit:" + v.MdtrtID
	t.forget(key)
	var end any
	if !v.End.IsZero() {
		end = v.End
	}
	if t.stored[key] {
		t.queueOne("storing visit %s", []any{v.MdtrtID}, `UPDATE visits SET med_type = $2, endtime = $3, status = $4,
			dise_codg = $5, dise_name = $6 WHERE mdtrt_id = $1`,
			v.MdtrtID, v.MedType, end, string(v.Status), v.DiseCodg, v.DiseName)
		return nil
	}
	t.found(key)
	t.queue(wrapErr("storing visit %s", v.MdtrtID), `INSERT INTO visits (mdtrt_id, psn_no, fixmedins_code, kind, med_type, insutype,
		begntime, endtime, ipt_otp_no, status, dise_codg, dise_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (mdtrt_id) DO UPDATE SET med_type = excluded.med_type, endtime = excluded.endtime,
		status = excluded.status, dise_codg = excluded.dise_codg, dise_name = excluded.dise_name`,
		v.MdtrtID, v.PsnNo, v.Institution, string(v.Kind), v.MedType, v.Insutype, v.Begin, end, v.IptOtpNo,
		string(v.Status), v.DiseCodg, v.DiseName)
	return nil
}

const linesSQL = `SELECT ` + feeLineCols + ` FROM fee_lines
	WHERE mdtrt_id = $1 AND NOT withdrawn`

func (t *tx) Lines(ctx context.Context, mdtrtID string) ([]settlement.FeeLine, error) {
	if v, ok, err := t.take(ctx, "lines:"+mdtrtID); ok {
		lines, _ := v.([]settlement.FeeLine)
		return lines, err
	}
	rows, err := t.query(ctx, linesSQL, mdtrtID)
	if err != nil {
		return nil, fmt.Errorf("reading lines of %s: %w", mdtrtID, err)
	}
	lines, err := scanFeeLines(rows, mdtrtID)
	sortLines(lines)
	return lines, err
}

// feeLineCols are the columns scanFeeLines reads.
const feeLineCols = `feedetl_sn, chrg_bchno, med_list_codg, medins_list_codg, cnt::TEXT, pric::TEXT,
	det_item_fee_sumamt::TEXT, fee_ocur_time, withdrawn, fulamt_ownpay_amt::TEXT, overlmt_amt::TEXT,
	preselfpay_amt::TEXT, inscp_scp_amt::TEXT, chrgitm_lv, list_type, COALESCE(pric_uplmt_amt::TEXT, ''), selfpay_prop::TEXT`

// scanFeeLines reads the rows of a query selecting feeLineCols, and closes them.
func scanFeeLines(rows pgx.Rows, mdtrtID string) ([]settlement.FeeLine, error) {
	defer rows.Close()
	var out []settlement.FeeLine
	for rows.Next() {
		var r lineRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("reading lines of %s: %w", mdtrtID, err)
		}
		l, err := r.line(mdtrtID)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// lineRow receives the columns of feeLineCols.
type lineRow struct {
	l                                         settlement.FeeLine
	amt, fulamt, over, pre, inscp, lv, cp, pr string
}

func (r *lineRow) dest() []any {
	l := &r.l
	return []any{&l.SN, &l.ChrgBchno, &l.Code, &l.HospCode, &l.Cnt, &l.Pric, &r.amt, &l.FeeTime, &l.Withdrawn,
		&r.fulamt, &r.over, &r.pre, &r.inscp, &r.lv, &l.Priced.ListType, &r.cp, &r.pr}
}

func (r *lineRow) line(mdtrtID string) (settlement.FeeLine, error) {
	l := r.l
	l.MdtrtID = mdtrtID
	p := &l.Priced
	if err := scanMoney([]*rules.Money{&l.Amount, &p.Fulamt, &p.Over, &p.Pre, &p.Inscp},
		[]string{r.amt, r.fulamt, r.over, r.pre, r.inscp}); err != nil {
		return l, err
	}
	p.SN, p.Amount, p.Level = l.SN, l.Amount, rules.Level(r.lv)
	var err error
	if r.cp != "" {
		p.HasCap = true
		if p.PriceCap, err = money(r.cp); err != nil {
			return l, err
		}
	}
	if p.SelfpayProp, err = rules.ParseRatio(r.pr); err != nil {
		return l, fmt.Errorf("stored selfpay_prop %q: %w", r.pr, err)
	}
	return l, nil
}

func (t *tx) PutLines(ctx context.Context, lines []settlement.FeeLine) error {
	for i := range lines {
		l := &lines[i]
		t.forget("lines:" + l.MdtrtID)
		var cap any
		if l.Priced.HasCap {
			cap = l.Priced.PriceCap.String()
		}
		t.queue(wrapErr("storing line %s of %s", l.SN, l.MdtrtID), `INSERT INTO fee_lines (mdtrt_id, feedetl_sn, chrg_bchno, med_list_codg, medins_list_codg, cnt, pric,
			det_item_fee_sumamt, fee_ocur_time, withdrawn, fulamt_ownpay_amt, overlmt_amt, preselfpay_amt, inscp_scp_amt,
			chrgitm_lv, list_type, pric_uplmt_amt, selfpay_prop)
			VALUES ($1, $2, $3, $4, $5, $6::TEXT::DECIMAL(18,4), $7::TEXT::DECIMAL(18,4), $8::TEXT::DECIMAL(18,2), $9, false,
			$10::TEXT::DECIMAL(18,2), $11::TEXT::DECIMAL(18,2), $12::TEXT::DECIMAL(18,2), $13::TEXT::DECIMAL(18,2),
			$14, $15, $16::TEXT::DECIMAL(18,2), $17::TEXT::DECIMAL(6,4))`,
			l.MdtrtID, l.SN, l.ChrgBchno, l.Code, l.HospCode, l.Cnt, l.Pric, l.Amount.String(), l.FeeTime,
			l.Priced.Fulamt.String(), l.Priced.Over.String(), l.Priced.Pre.String(), l.Priced.Inscp.String(),
			string(l.Priced.Level), l.Priced.ListType, cap, l.Priced.SelfpayProp.Decimal().String())
	}
	return nil
}

func (t *tx) WithdrawBatch(ctx context.Context, mdtrtID, chrgBchno string) (int, error) {
	t.forget("lines:" + mdtrtID)
	tag, err := t.exec(ctx, `UPDATE fee_lines SET withdrawn = true
		WHERE mdtrt_id = $1 AND NOT withdrawn AND ($2 = '' OR chrg_bchno = $2)`, mdtrtID, chrgBchno)
	if err != nil {
		return 0, fmt.Errorf("withdrawing lines of %s: %w", mdtrtID, err)
	}
	return int(tag.RowsAffected()), nil
}

const settlementCols = `setl_id, mdtrt_id, psn_no, fixmedins_code, insuplc_admdvs, mdtrtarea_admvs, med_type, insutype,
	setl_time, year, medfee_sumamt::TEXT, fulamt_ownpay_amt::TEXT, overlmt_selfpay::TEXT, preselfpay_amt::TEXT,
	inscp_scp_amt::TEXT, act_pay_dedc::TEXT, hifp_pay::TEXT, pool_prop_selfpay::TEXT, hifmi_pay::TEXT, hifob_pay::TEXT,
	maf_pay::TEXT, fund_pay_sumamt::TEXT, psn_part_amt::TEXT, acct_pay::TEXT, psn_cash_pay::TEXT, balc::TEXT,
	setldetail, d_dedc_outpatient::TEXT, d_dedc_chronic::TEXT, d_fund_outpatient::TEXT, d_fund_inpatient::TEXT,
	d_burden::TEXT, d_supp::TEXT, d_maf::TEXT, d_acct::TEXT, d_admissions, status, reverses, msgid, ledger_txn_id, role`

// ScanSettlement reads one row selected with settlementCols.
func scanSettlement(row pgx.Row) (*settlement.Settlement, error) {
	var s settlement.Settlement
	var m [25]string
	var status, role string
	err := row.Scan(&s.SetlID, &s.MdtrtID, &s.PsnNo, &s.Institution, &s.InsuredRegion, &s.TreatmentRegion,
		&s.MedType, &s.Insutype, &s.SetlTime, &s.Year,
		&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8], &m[9], &m[10], &m[11], &m[12], &m[13], &m[14], &m[15],
		&m[16], &m[17], &m[18], &m[19], &m[20], &m[21], &m[22], &m[23], &m[24],
		&s.Delta.Admissions, &status, &s.Reverses, &s.Msgid, &s.LedgerTxnID, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading settlement: %w", err)
	}
	i, d := &s.Info, &s.Delta
	if err := scanMoney([]*rules.Money{&i.MedfeeSumamt, &i.FulamtOwnpayAmt, &i.OverlmtSelfpay, &i.PreselfpayAmt,
		&i.InscpScpAmt, &i.ActPayDedc, &i.HifpPay}, m[0:7]); err != nil {
		return nil, err
	}
	r, err := ratioText(m[7])
	if err != nil {
		return nil, err
	}
	i.PoolPropSelfpay = r
	if err := scanMoney([]*rules.Money{&i.HifmiPay, &i.HifobPay, &i.MafPay, &i.FundPaySumamt, &i.PsnPartAmt,
		&i.AcctPay, &i.PsnCashPay, &i.Balc}, m[8:16]); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(m[16]), &s.Detail); err != nil {
		return nil, fmt.Errorf("stored setldetail of %s: %w", s.SetlID, err)
	}
	if err := scanMoney([]*rules.Money{&d.DedcOutpatient, &d.DedcChronic, &d.FundOutpatient, &d.FundInpatient,
		&d.Burden, &d.Supp, &d.Maf, &d.Acct}, m[17:25]); err != nil {
		return nil, err
	}
	s.Status, s.Role = settlement.SettlementStatus(status), settlement.Role(role)
	return &s, nil
}

// ratioText reads a DECIMAL(6,4) as text ("0.8000").
func ratioText(s string) (rules.Ratio, error) {
	r, err := rules.ParseRatio(s)
	if err != nil {
		return 0, fmt.Errorf("stored ratio %q: %w", s, err)
	}
	return r, nil
}

func (t *tx) Settlement(ctx context.Context, setlID string) (*settlement.Settlement, error) {
	return scanSettlement(t.queryRow(ctx, `SELECT `+settlementCols+` FROM settlements WHERE setl_id = $1`, setlID))
}

func (t *tx) PutSettlement(ctx context.Context, s *settlement.Settlement) error {
	detail, err := json.Marshal(s.Detail)
	if err != nil {
		return err
	}
	i, d := &s.Info, &s.Delta
	args := []any{s.SetlID, s.MdtrtID, s.PsnNo, s.Institution, s.InsuredRegion, s.TreatmentRegion, s.MedType,
		s.Insutype, s.SetlTime, s.Year}
	for _, m := range []rules.Money{i.MedfeeSumamt, i.FulamtOwnpayAmt, i.OverlmtSelfpay, i.PreselfpayAmt,
		i.InscpScpAmt, i.ActPayDedc, i.HifpPay} {
		args = append(args, m.String())
	}
	args = append(args, i.PoolPropSelfpay.Decimal().String())
	for _, m := range []rules.Money{i.HifmiPay, i.HifobPay, i.MafPay, i.FundPaySumamt, i.PsnPartAmt, i.AcctPay,
		i.PsnCashPay, i.Balc} {
		args = append(args, m.String())
	}
	args = append(args, string(detail))
	for _, m := range []rules.Money{d.DedcOutpatient, d.DedcChronic, d.FundOutpatient, d.FundInpatient, d.Burden,
		d.Supp, d.Maf, d.Acct} {
		args = append(args, m.String())
	}
	role := s.Role
	if role == "" {
		role = settlement.RoleLocal
	}
	args = append(args, d.Admissions, string(s.Status), s.Reverses, s.Msgid, s.LedgerTxnID, string(role))
	t.queue(wrapErr("storing settlement %s", s.SetlID), insertSettlement, args...)
	return nil
}

// insertSettlement is PutSettlement's statement: its 41 parameters in the
// order of settlementCols, the amounts ($11-$26, $28-$35) as decimal text.
var insertSettlement = func() string {
	var ph strings.Builder
	for n := 1; n <= len(splitCols(settlementCols)); n++ {
		if n > 1 {
			ph.WriteString(", ")
		}
		ph.WriteString("$" + strconv.Itoa(n))
		if (n >= 11 && n <= 26) || (n >= 28 && n <= 35) {
			ph.WriteString("::TEXT::DECIMAL")
		}
	}
	return `INSERT INTO settlements (` + plainCols + `) VALUES (` + ph.String() + `)`
}()

var plainCols = func() string {
	// The insert lists the same columns as settlementCols, without the casts.
	out := ""
	for _, c := range splitCols(settlementCols) {
		if len(c) > 6 && c[len(c)-6:] == "::TEXT" {
			c = c[:len(c)-6]
		}
		if out != "" {
			out += ", "
		}
		out += c
	}
	return out
}()

func splitCols(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		switch r {
		case ',':
			out = append(out, cur)
			cur = ""
		case ' ', '\n', '\t':
		default:
			cur += string(r)
		}
	}
	return append(out, cur)
}

func (t *tx) SetSettlementStatus(ctx context.Context, setlID string, st settlement.SettlementStatus) error {
	t.queue(wrapErr("updating settlement %s", setlID), `UPDATE settlements SET status = $2 WHERE setl_id = $1`, setlID, string(st))
	return nil
}

const chainHeadSQL = `SELECT seq, hash FROM chain_heads WHERE chain = $1`

func (t *tx) ChainHead(ctx context.Context, chain string) (settlement.ChainHead, error) {
	if v, ok, err := t.take(ctx, "chain:"+chain); ok {
		h, _ := v.(settlement.ChainHead)
		return h, err
	}
	return scanChainHead(t.queryRow(ctx, chainHeadSQL, chain), chain)
}

func scanChainHead(row pgx.Row, chain string) (settlement.ChainHead, error) {
	var h settlement.ChainHead
	err := row.Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return settlement.ChainHead{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("reading chain head %s: %w", chain, err)
	}
	return h, nil
}

// insertEntries is the statement that appends n entries of a ledger txn:
// one multi-row VALUES list, the txn id $1, then ordinal, account and amount
// of each entry. Its text depends only on n, so it is built once per n
// (a settlement appends the same few counts again and again) and prepared
// once per connection.
func insertEntries(n int) string {
	if sql, ok := entriesSQL.Load(n); ok {
		return sql.(string)
	}
	var sql strings.Builder
	sql.WriteString(`INSERT INTO ledger_entries (txn_id, ordinal, account, amount) VALUES `)
	for i := range n {
		if i > 0 {
			sql.WriteString(", ")
		}
		p := 1 + 3*i
		fmt.Fprintf(&sql, "($1, $%d::INT8, $%d, $%d::TEXT::DECIMAL(18,2))", p+1, p+2, p+3)
	}
	v, _ := entriesSQL.LoadOrStore(n, sql.String())
	return v.(string)
}

var entriesSQL sync.Map // entry count → insertEntries(count)

func (t *tx) AppendLedger(ctx context.Context, lt *settlement.LedgerTxn, ev *settlement.Event) error {
	t.forget("chain:" + lt.Chain)
	// Advancing the head is conditional on it still being where this
	// transaction read it: a concurrent append to the chain makes this one
	// fail (and retry) instead of forking the chain. Both statements fail on
	// the server when the head is elsewhere (the insert on the primary key).
	if lt.Seq == 1 {
		t.queue(wrapErr("starting chain %s", lt.Chain), `INSERT INTO chain_heads (chain, seq, hash) VALUES ($1, $2, $3)`,
			lt.Chain, lt.Seq, lt.Hash)
	} else {
		t.queueOne("advancing chain %s past seq %d", []any{lt.Chain, lt.Seq - 1},
			`UPDATE chain_heads SET seq = $2, hash = $3 WHERE chain = $1 AND seq = $4`, lt.Chain, lt.Seq, lt.Hash, lt.Seq-1)
	}
	t.queue(wrapErr("appending ledger txn %s", lt.ID), `INSERT INTO ledger_txns (txn_id, chain, seq, prev_hash, hash, kind, setl_id, txn_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, lt.ID, lt.Chain, lt.Seq, lt.PrevHash, lt.Hash, lt.Kind, lt.SetlID, lt.Time)
	if len(lt.Entries) > 0 {
		args := make([]any, 0, 1+3*len(lt.Entries))
		args = append(args, lt.ID)
		for i, e := range lt.Entries {
			args = append(args, i, e.Account, e.Amount.String())
		}
		t.queue(wrapErr("appending the entries of ledger txn %s", lt.ID), insertEntries(len(lt.Entries)), args...)
	}
	if ev != nil {
		t.queue(wrapErr("writing event %s to the outbox", ev.ID), `INSERT INTO outbox_events (part, chain, seq, event_id, event_type, event_key, payload, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, settlement.OutboxPart(ev.Key), lt.Chain, lt.Seq, ev.ID, ev.Type, ev.Key,
			string(ev.Payload), lt.Time)
	}
	return nil
}

func (t *tx) SettlementsOf(ctx context.Context, q settlement.PeriodQuery) ([]settlement.Settlement, error) {
	from, to := q.Bounds()
	return t.settlements(ctx, `WHERE fixmedins_code = $1 AND setl_time >= $2 AND setl_time < $3 ORDER BY setl_time, setl_id`,
		q.Institution, from, to)
}

// settlements reads the settlements a WHERE clause selects.
func (t *tx) settlements(ctx context.Context, where string, args ...any) ([]settlement.Settlement, error) {
	rows, err := t.query(ctx, `SELECT `+settlementCols+` FROM settlements `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading settlements: %w", err)
	}
	defer rows.Close()
	var out []settlement.Settlement
	for rows.Next() {
		s, err := scanSettlement(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}
