package pgfixture

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/medsettle/medsettle/settlement"
)

// Clock is a settable time source, so that settlements fall on chosen days.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock is a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the time set last.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Columns are the columns of a table of the current schema, in their order:
// for tests that copy rows with INSERT … SELECT and change a few columns.
func Columns(ctx context.Context, t testing.TB, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatalf("columns of %s: %v", table, err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("columns of %s: %v", table, err)
	}
	return cols
}

// msgSeq numbers the messages Msg makes in this process.
var msgSeq atomic.Int64

// Msg is a message identity of inst for infno in the national msgid shape
// (fixmedins_code, the time to the second, a 4-digit sequence number):
// unique within the process as long as it makes fewer than 10,000 a second,
// each with a digest of its own.
func Msg(inst, infno string) settlement.Msg {
	n := msgSeq.Add(1)
	return settlement.Msg{ID: fmt.Sprintf("%s%s%04d", inst, time.Now().Format("20060102150405"), n%10000),
		Infno: infno, Institution: inst, Digest: fmt.Sprint(n)}
}
