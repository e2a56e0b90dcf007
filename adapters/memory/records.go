package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Messages, persons and their counters, visits and their lines.

func (t *tx) Message(_ context.Context, msgid string) (*settlement.Message, error) {
	return read(t, t.d.messages, msgid, readMessage)
}

// readMessage is a message as read back: its answer a copy of the text.
func readMessage(m settlement.Message) *settlement.Message {
	m.Answer = []byte(string(m.Answer))
	m.Created = stamp(m.Created)
	return &m
}

// ClaimMessage inserts m unless its msgid is taken (an empty status stored
// as "pending", as the PostgreSQL store does), else returns the taker.
func (t *tx) ClaimMessage(ctx context.Context, m *settlement.Message) (*settlement.Message, error) {
	if err := t.write("claiming message " + m.Msgid); err != nil {
		return nil, err
	}
	if _, taken := t.d.messages[m.Msgid]; taken {
		return t.Message(ctx, m.Msgid)
	}
	c := *m
	c.Status = settlement.MessageStatus(cmp.Or(string(m.Status), "pending"))
	c.Answer = []byte(string(m.Answer))
	put(t, t.d.messages, c.Msgid, c)
	return nil, nil
}

// PutMessage inserts m, or updates the status, ref and answer of its msgid.
func (t *tx) PutMessage(_ context.Context, m *settlement.Message) error {
	return upsert(t, "storing message "+m.Msgid, t.d.messages, m.Msgid, *m, func(c *settlement.Message) {
		c.Status, c.Ref, c.Answer = m.Status, m.Ref, []byte(string(m.Answer))
	})
}

func (t *tx) Person(_ context.Context, psnNo string) (*settlement.Person, error) {
	return read(t, t.d.persons, psnNo, readPerson)
}

// readPerson is a registry row as read back: a registration's end is read
// only with its beginning (a NULL reg_begn reads as no registration).
func readPerson(p settlement.Person) *settlement.Person {
	if p.RegBegin == 0 {
		p.RegEnd = 0
	}
	return &p
}

func (t *tx) PersonByCert(ctx context.Context, certType, certNo string) (*settlement.Person, error) {
	idx := t.d.certnos
	if certType == "03" {
		idx = t.d.cardNos
	}
	psnNo, ok, err := get(t, idx, certNo)
	if !ok {
		return nil, err
	}
	return t.Person(ctx, psnNo)
}

// putPerson upserts a registry row: a person on record keeps the opening
// balance; certno and card_no stay unique.
func (t *tx) putPerson(p *settlement.Person) error {
	if err := t.write("storing person " + p.PsnNo); err != nil {
		return err
	}
	c := *p
	prev, had := t.d.persons[p.PsnNo]
	if had {
		c.OpeningBalc = prev.OpeningBalc
	} else if c.OpeningBalc < 0 {
		return t.fail(fmt.Errorf("storing person %s: opening_balc %s is negative", p.PsnNo, c.OpeningBalc))
	}
	for _, u := range []struct {
		idx       map[string]string
		old, new_ string
		col       string
	}{{t.d.certnos, prev.Certno, c.Certno, "certno"}, {t.d.cardNos, prev.CardNo, c.CardNo, "card_no"}} {
		if other, taken := u.idx[u.new_]; taken && other != c.PsnNo {
			return t.fail(fmt.Errorf("storing person %s: %s %s belongs to %s", p.PsnNo, u.col, u.new_, other))
		}
		if had && u.old != u.new_ {
			old := u.old
			prevOwner := u.idx[old]
			idx := u.idx
			t.undo = append(t.undo, func() { idx[old] = prevOwner })
			delete(u.idx, old)
		}
		put(t, u.idx, u.new_, c.PsnNo)
	}
	put(t, t.d.persons, c.PsnNo, c)
	return nil
}

// Counters returns the stored counters of year, or opens the year with the
// balance the last year on record closed with, or else the registry's
// opening balance (zero counters for an unknown person).
func (t *tx) Counters(_ context.Context, psnNo string, year int) (settlement.YearCounters, error) {
	yc := settlement.YearCounters{PsnNo: psnNo, Year: year}
	if err := t.check(); err != nil {
		return yc, err
	}
	if c, ok := t.d.counters[yearKey{psnNo, year}]; ok {
		return c, nil
	}
	last := 0
	for k, c := range t.d.counters {
		if k.psnNo == psnNo && k.year < year && k.year > last {
			last, yc.OpeningBalc = k.year, c.Counters.AcctBalc
		}
	}
	if last == 0 {
		p, ok := t.d.persons[psnNo]
		if !ok {
			return yc, nil
		}
		yc.OpeningBalc = p.OpeningBalc
	}
	yc.Counters.AcctBalc = yc.OpeningBalc
	return yc, nil
}

// PutCounters upserts a year's counters; a year on record keeps the
// balance it opened with. The account balance may not go negative.
func (t *tx) PutCounters(_ context.Context, yc settlement.YearCounters) error {
	what := fmt.Sprintf("storing counters of %s for %d", yc.PsnNo, yc.Year)
	if err := t.write(what); err != nil {
		return err
	}
	if yc.Counters.AcctBalc < 0 {
		return t.fail(fmt.Errorf("%s: acct_balc %s is negative", what, yc.Counters.AcctBalc))
	}
	k := yearKey{yc.PsnNo, yc.Year}
	if prev, ok := t.d.counters[k]; ok {
		yc.OpeningBalc = prev.OpeningBalc
	}
	put(t, t.d.counters, k, yc)
	return nil
}

func (t *tx) Visit(_ context.Context, mdtrtID string) (*settlement.Visit, error) {
	return read(t, t.d.visits, mdtrtID, func(v settlement.Visit) *settlement.Visit {
		v.Begin, v.End = stamp(v.Begin), stamp(v.End)
		return &v
	})
}

// PutVisit inserts a visit, or updates the med_type, end, status and
// diagnosis of one on record (its other columns stay as first written).
func (t *tx) PutVisit(_ context.Context, v *settlement.Visit) error {
	return upsert(t, "storing visit "+v.MdtrtID, t.d.visits, v.MdtrtID, *v, func(c *settlement.Visit) {
		c.MedType, c.End, c.Status, c.DiseCodg, c.DiseName = v.MedType, v.End, v.Status, v.DiseCodg, v.DiseName
	})
}

// Lines returns the visit's lines not withdrawn, in the order they were
// charged (fee time, then feedetl_sn byte by byte).
func (t *tx) Lines(_ context.Context, mdtrtID string) ([]settlement.FeeLine, error) {
	return list(t, slices.Values(t.d.lines[mdtrtID]), func(r *lineRow) bool { return !r.l.Withdrawn },
		func(r lineRow) settlement.FeeLine { return readLine(r.l) },
		func(a, b settlement.FeeLine) int {
			return cmp.Or(a.FeeTime.Compare(b.FeeTime), strings.Compare(a.SN, b.SN))
		})
}

// readLine is a line as read back: its pricing only as far as the columns
// keep it.
func readLine(l settlement.FeeLine) settlement.FeeLine {
	l.FeeTime = stamp(l.FeeTime)
	p := l.Priced
	l.Priced = rules.LineResult{SN: l.SN, Amount: l.Amount, Fulamt: p.Fulamt, Over: p.Over, Pre: p.Pre, Inscp: p.Inscp,
		Level: p.Level, ListType: p.ListType, HasCap: p.HasCap, SelfpayProp: p.SelfpayProp}
	if p.HasCap {
		l.Priced.PriceCap = p.PriceCap
	}
	return l
}

// PutLines inserts lines, not withdrawn; a feedetl_sn already stored for
// the visit (withdrawn or not) is refused.
func (t *tx) PutLines(_ context.Context, lines []settlement.FeeLine) error {
	for i := range lines {
		l := lines[i]
		what := fmt.Sprintf("storing line %s of %s", l.SN, l.MdtrtID)
		if err := t.write(what); err != nil {
			return err
		}
		rows := t.d.lines[l.MdtrtID]
		if slices.ContainsFunc(rows, func(r lineRow) bool { return r.l.SN == l.SN }) {
			return t.fail(fmt.Errorf("%s: the visit has line %s already", what, l.SN))
		}
		var err error
		if l.Cnt, err = quantity(l.Cnt); err != nil {
			return t.fail(fmt.Errorf("%s: cnt: %w", what, err))
		}
		if l.Pric, err = quantity(l.Pric); err != nil {
			return t.fail(fmt.Errorf("%s: pric: %w", what, err))
		}
		l.Withdrawn = false
		put(t, t.d.lines, l.MdtrtID, append(slices.Clip(rows), lineRow{l}))
	}
	return nil
}

// quantity is a DECIMAL(18,4) as the database gives it back: four decimals.
func quantity(s string) (string, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return "", err
	}
	return d.StringFixed(4), nil
}

// WithdrawBatch withdraws the visit's lines of a charge batch ("" = all)
// not withdrawn yet, and says how many.
func (t *tx) WithdrawBatch(_ context.Context, mdtrtID, chrgBchno string) (int, error) {
	if err := t.write("withdrawing lines of " + mdtrtID); err != nil {
		return 0, err
	}
	rows := slices.Clone(t.d.lines[mdtrtID])
	n := 0
	for i := range rows {
		if !rows[i].l.Withdrawn && (chrgBchno == "" || rows[i].l.ChrgBchno == chrgBchno) {
			rows[i].l.Withdrawn = true
			n++
		}
	}
	if n > 0 {
		put(t, t.d.lines, mdtrtID, rows)
	}
	return n, nil
}
