package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Msg identifies a counter message for idempotency: the same ID and Digest
// replays the first answer; the same ID with another Digest is refused.
type Msg struct {
	ID          string
	Infno       string
	Institution string // the authenticated caller (fixmedins_code)
	Digest      string
}

// errNotHere rolls back the transaction of an operation that found it is
// not this province's to carry out (the person is insured in another
// province). The Store port rolls back on an error and on nothing else, so
// update returns it to the store and turns it back into here == false; the
// decision itself, and what it needs, travel as values (see priced).
var errNotHere = errors.New("settlement: not this province's to carry out")

// update runs fn in one Store transaction, after telling the transaction
// what keys name (read ahead, when the store can). fn reports whether the
// operation was carried out here: when it was not, the transaction is rolled
// back, whatever it claimed or wrote, and update returns here == false.
func update(ctx context.Context, st Store, keys Prefetch, fn func(ctx context.Context, tx Tx) (bool, error)) (bool, error) {
	err := st.Update(ctx, func(ctx context.Context, tx Tx) error {
		if keys != (Prefetch{}) {
			prefetch(tx, keys)
		}
		here, err := fn(ctx, tx)
		if err == nil && !here {
			return errNotHere
		}
		return err
	})
	if errors.Is(err, errNotHere) {
		return false, nil
	}
	return err == nil, err
}

// once is a message's one transaction: op runs once per msgid (a repeat
// replays the stored answer), and its answer is stored with the ref op gives.
func once[T any](ctx context.Context, st Store, msg Msg, now time.Time, keys Prefetch,
	op func(ctx context.Context, tx Tx) (T, string, error)) (T, error) {
	out, _, err := onceHere(ctx, st, msg, now, keys, func(ctx context.Context, tx Tx) (T, string, bool, error) {
		out, ref, err := op(ctx, tx)
		return out, ref, true, err
	})
	return out, err
}

// onceHere is once for an operation that may find it is another province's
// to carry out (here == false): then nothing is written, the msgid claim
// included, and the caller goes through the hub.
func onceHere[T any](ctx context.Context, st Store, msg Msg, now time.Time, keys Prefetch,
	op func(ctx context.Context, tx Tx) (T, string, bool, error)) (T, bool, error) {
	var out T
	here, err := update(ctx, st, keys, func(ctx context.Context, tx Tx) (bool, error) {
		var here bool
		var err error
		out, here, err = idempotent(ctx, tx, msg, now, func() (T, string, bool, error) { return op(ctx, tx) })
		return here, err
	})
	return out, here, err
}

// settleHere is onceHere for an operation that makes settlement setlID and
// answers with it (see settleOnce).
func settleHere(ctx context.Context, st Store, msg Msg, now time.Time, keys Prefetch, setlID string,
	op func(ctx context.Context, tx Tx) (*Settlement, bool, error)) (SettleAnswer, bool, error) {
	var out SettleAnswer
	here, err := update(ctx, st, keys, func(ctx context.Context, tx Tx) (bool, error) {
		var here bool
		var err error
		out, here, err = settleOnce(ctx, tx, msg, now, setlID, func() (*Settlement, bool, error) { return op(ctx, tx) })
		return here, err
	})
	return out, here, err
}

// idempotent runs op once per msgid inside tx. A stored answer is replayed.
// A refusal rolls the transaction back, the msgid claim included: a refused
// request writes nothing, and the same msgid may be tried again.
func idempotent[T any](ctx context.Context, tx Tx, msg Msg, now time.Time, op func() (T, string, bool, error)) (T, bool, error) {
	var zero T
	m, err := claim(ctx, tx, msg, &Message{Created: now})
	if err != nil {
		return zero, false, err
	}
	if m != nil {
		out, err := replay[T](m)
		return out, true, err
	}
	out, ref, here, err := op()
	if err != nil || !here {
		return zero, here, err
	}
	answer, err := json.Marshal(out)
	if err != nil {
		return zero, true, fmt.Errorf("storing answer of msgid %s: %w", msg.ID, err)
	}
	err = tx.PutMessage(ctx, &Message{Msgid: msg.ID, Infno: msg.Infno, Institution: msg.Institution,
		Digest: msg.Digest, Status: MessageDone, Ref: ref, Answer: answer, Created: now})
	return out, true, err
}

// settleOnce is idempotent for an operation that makes settlement setlID
// and answers with it: the msgid is claimed in its final form (done, ref
// setlID), so the message row is written once, and a replay reads the
// settlement back rather than a stored copy of the answer. (Messages that
// do carry an answer are replayed from it.)
func settleOnce(ctx context.Context, tx Tx, msg Msg, now time.Time, setlID string, op func() (*Settlement, bool, error)) (SettleAnswer, bool, error) {
	m, err := claim(ctx, tx, msg, &Message{Status: MessageDone, Ref: setlID, Created: now})
	if err != nil {
		return SettleAnswer{}, false, err
	}
	if m != nil && len(m.Answer) > 0 {
		out, err := replay[SettleAnswer](m)
		return out, true, err
	}
	if m != nil {
		s, err := tx.Settlement(ctx, m.Ref)
		if err != nil {
			return SettleAnswer{}, true, err
		}
		if s == nil {
			return SettleAnswer{}, true, fmt.Errorf("replaying msgid %s: its settlement %s is missing", msg.ID, m.Ref)
		}
		s.SetlTime = s.SetlTime.UTC() // as it was answered, whatever zone the store reads times in
		return answerOf(s), true, nil
	}
	s, here, err := op()
	if err != nil || !here {
		return SettleAnswer{}, here, err
	}
	if s.SetlID != setlID {
		return SettleAnswer{}, true, fmt.Errorf("msgid %s claimed settlement %s but made %s", msg.ID, setlID, s.SetlID)
	}
	return answerOf(s), true, nil
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
