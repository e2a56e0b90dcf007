package pgfixture

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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
