package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/medsettle/medsettle/settlement"
)

// Read-ahead: the reads a transaction names in advance (settlement.Prefetch)
// travel with its first statements, and their rows wait for the getters.

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
