// Package settlement is the engine behind the counter: visits, fee lines,
// pre-settlement, settlement, cancellation and reversal, the person's year
// counters, the double-entry ledger with its hash chains, idempotency by
// msgid, reconciliation, cross-province settlement through the national hub
// and the monthly clearing between provinces. It prices with package rules
// and reaches storage, the hub and the workflow engine only through the
// ports it declares (Store, Tx, Hub, HubPeer, Reverser).
//
// Files: engine.go (the Engine, idempotency), visit.go (visits and lines),
// settle.go (settle and cancel), direct.go (pharmacy sales and manual
// claims), reverse.go (2601), cross.go (across provinces), clearing.go,
// reconcile.go, ledger.go, audit.go.
package settlement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// China Standard Time: a settlement's date, and so its policy version and its
// counters' year, is the date at the counter.
var cst = time.FixedZone("CST", 8*3600)

// DateOf is the calendar day of t at the counter.
func DateOf(t time.Time) rules.Date {
	y, m, d := t.In(cst).Date()
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

// Msg identifies a counter message for idempotency: the same ID and Digest
// replays the first answer; the same ID with another Digest is refused.
type Msg struct {
	ID          string
	Infno       string
	Institution string // the authenticated caller (fixmedins_code)
	Digest      string
}

// idempotent runs op once per msgid inside tx. A stored answer is replayed.
// A refusal rolls the transaction back, the msgid claim included: a refused
// request writes nothing, and the same msgid may be tried again.
func idempotent[T any](ctx context.Context, tx Tx, msg Msg, now time.Time, op func() (T, string, error)) (T, error) {
	var zero T
	m, err := claim(ctx, tx, msg, &Message{Created: now})
	if err != nil {
		return zero, err
	}
	if m != nil {
		return replay[T](m)
	}
	out, ref, err := op()
	if err != nil {
		return zero, err
	}
	answer, err := json.Marshal(out)
	if err != nil {
		return zero, fmt.Errorf("storing answer of msgid %s: %w", msg.ID, err)
	}
	err = tx.PutMessage(ctx, &Message{Msgid: msg.ID, Infno: msg.Infno, Institution: msg.Institution,
		Digest: msg.Digest, Status: MessageDone, Ref: ref, Answer: answer, Created: now})
	return out, err
}

// settleOnce is idempotent for an operation that makes settlement setlID
// and answers with it: the msgid is claimed in its final form (done, ref
// setlID), so the message row is written once, and a replay reads the
// settlement back rather than a stored copy of the answer. (Messages that
// do carry an answer are replayed from it.)
func settleOnce(ctx context.Context, tx Tx, msg Msg, now time.Time, setlID string, op func() (*Settlement, error)) (SettleAnswer, error) {
	m, err := claim(ctx, tx, msg, &Message{Status: MessageDone, Ref: setlID, Created: now})
	if err != nil {
		return SettleAnswer{}, err
	}
	if m != nil && len(m.Answer) > 0 {
		return replay[SettleAnswer](m)
	}
	if m != nil {
		s, err := tx.Settlement(ctx, m.Ref)
		if err != nil {
			return SettleAnswer{}, err
		}
		if s == nil {
			return SettleAnswer{}, fmt.Errorf("replaying msgid %s: its settlement %s is missing", msg.ID, m.Ref)
		}
		s.SetlTime = s.SetlTime.UTC() // as it was answered, whatever zone the store reads times in
		return answerOf(s), nil
	}
	s, err := op()
	if err != nil {
		return SettleAnswer{}, err
	}
	if s.SetlID != setlID {
		return SettleAnswer{}, fmt.Errorf("msgid %s claimed settlement %s but made %s", msg.ID, setlID, s.SetlID)
	}
	return answerOf(s), nil
}

// claim records msg's msgid as taken, with the status, ref and answer of m.
// When the msgid is taken already it returns that message, once it is sure
// it may be replayed to msg.
func claim(ctx context.Context, tx Tx, msg Msg, m *Message) (*Message, error) {
	if msg.ID == "" {
		return nil, Errorf(EINVALID, "msgid is required")
	}
	m.Msgid, m.Infno, m.Institution, m.Digest = msg.ID, msg.Infno, msg.Institution, msg.Digest
	prev, err := tx.ClaimMessage(ctx, m)
	if err != nil || prev == nil {
		return nil, err
	}
	switch {
	case prev.Institution != msg.Institution:
		return nil, Errorf(ECONFLICT, "msgid %s belongs to another institution", msg.ID)
	case prev.Status == MessageReversed:
		return nil, Errorf(ECONFLICT, "msgid %s was reversed (2601) and never takes effect", msg.ID)
	case prev.Infno != msg.Infno || prev.Digest != msg.Digest:
		return nil, Errorf(ECONFLICT, "msgid %s was already used with a different request", msg.ID)
	}
	return prev, nil
}

// replay is the answer stored with m.
func replay[T any](m *Message) (T, error) {
	var out T
	if err := json.Unmarshal(m.Answer, &out); err != nil {
		return out, fmt.Errorf("replaying msgid %s: %w", m.Msgid, err)
	}
	return out, nil
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
