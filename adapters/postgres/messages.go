package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/medsettle/medsettle/settlement"
)

// Messages: each msgid's request and answer (the idempotency record).

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
