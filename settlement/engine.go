// Package settlement is the engine behind the counter: visits, fee lines,
// pre-settlement, settlement, cancellation and reversal, the person's year
// counters, the double-entry ledger with its hash chains, idempotency by
// msgid, reconciliation, cross-province settlement through the national hub
// and the monthly clearing between provinces. It prices with package rules
// and reaches storage, the hub and the workflow engine only through the
// ports it declares (Store, Tx, Hub, HubPeer, Reverser).
//
// Files: engine.go (the Engine), once.go (one transaction per message,
// idempotent by msgid), visit.go (visits and lines), settle.go (pricing and
// settling), cancel.go (cancellation), direct.go (pharmacy sales), manual.go
// (manual claims), reverse.go (2601), commit.go (what every settlement
// writes, and the invariants asserted before), hub.go (the hub's port and
// messages), cross.go (the treatment side across provinces), insured.go (the
// insured side), clearing.go, reconcile.go, ledger.go, audit.go.
package settlement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// DateOf is the calendar day of t at the counter.
func DateOf(t time.Time) rules.Date {
	y, m, d := t.In(rules.CST).Date()
	return rules.Date(y*10000 + int(m)*100 + d)
}

// Engine settles claims: the service behind the counter interface. All of its
// methods are safe for concurrent use; every change is one Store transaction.
type Engine struct {
	Rules *rules.RuleSet
	Store Store
	// Province is the province this deployment serves ("150000"); persons
	// insured elsewhere are settled through Hub. Empty: every region is local.
	Province string
	Hub      Hub
	Reverser Reverser
	// Now is the clock (time.Now when nil); tests and replays set it.
	Now func() time.Time
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// NewID returns a random identifier: random, not sequential, so that inserts
// spread over a CockroachDB keyspace instead of piling onto one range.
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return prefix + hex.EncodeToString(b[:])
}

// PersonInfo is 1101: the person and this year's counters.
type PersonInfo struct {
	Person   Person
	Counters rules.Counters
	Year     int
}

// FindPerson returns a person by certificate (02 ID number, 03 card) with the
// counters of the current year. Any caller may ask; ENOTFOUND when unknown.
func (e *Engine) FindPerson(ctx context.Context, certType, certNo string) (*PersonInfo, error) {
	var out *PersonInfo
	year := DateOf(e.now()).Year()
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		var p *Person
		var err error
		switch certType {
		case "02", "03":
			prefetch(tx, Prefetch{CertType: certType, CertNo: certNo, Year: year})
			p, err = tx.PersonByCert(ctx, certType, certNo)
		case "01":
			p, err = tx.Person(ctx, certNo)
		default:
			return Errorf(EINVALID, "mdtrt_cert_type %q: want 01 (e-voucher), 02 (ID) or 03 (card)", certType)
		}
		if err != nil {
			return err
		}
		if p == nil {
			return Errorf(ENOTFOUND, "mdtrt_cert_no %q: no insured person", certNo)
		}
		yc, err := tx.Counters(ctx, p.PsnNo, year)
		if err != nil {
			return err
		}
		out = &PersonInfo{Person: *p, Counters: yc.Counters, Year: year}
		return nil
	})
	return out, err
}

// YearCountersOf is 5206: a person's counters for year.
func (e *Engine) YearCountersOf(ctx context.Context, psnNo string, year int) (rules.Counters, error) {
	var out rules.Counters
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		p, err := tx.Person(ctx, psnNo)
		if err != nil {
			return err
		}
		if p == nil {
			return Errorf(ENOTFOUND, "psn_no %q: no insured person", psnNo)
		}
		yc, err := tx.Counters(ctx, psnNo, year)
		out = yc.Counters
		return err
	})
	return out, err
}
