package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// day is 10:00 at the counter on date (yyyy-mm-dd).
func day(t testing.TB, date string) time.Time {
	d, err := time.ParseInLocation("2006-01-02 15:04", date+" 10:00", rules.CST)
	require.NoError(t, err)
	return d
}

// midnight is the start of a day at the counter (yyyy-mm-dd).
func midnight(t testing.TB, date string) time.Time {
	d, err := time.ParseInLocation("2006-01-02", date, rules.CST)
	require.NoError(t, err)
	return d
}

// periodBounds is a month's [start, end) at the counter.
func periodBounds(p settlement.Period) (time.Time, time.Time) {
	end := p.End()
	return end.AddDate(0, -1, 0), end
}

// Every test database starts migrated and seeded with the 120 registry persons.
func TestMain(m *testing.M) { pgfixture.Main(m) }

type env struct {
	engine *settlement.Engine
	store  *postgres.Store
	clock  *pgfixture.Clock
	rules  *rules.RuleSet
	dsn    string
}

// newEnv gives a test its own database, store and engine, on 2026-03-15.
func newEnv(t testing.TB) *env {
	t.Helper()
	fx := pgfixture.NewEnv(t, day(t, "2026-03-15"))
	return &env{engine: fx.Engine, store: fx.Store, clock: fx.Clock, rules: fx.Rules, dsn: fx.DSN}
}

// count returns SELECT count(*) FROM table.
func (e *env) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, e.store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// rowCounts snapshots every table that a change would touch.
func (e *env) rowCounts(t testing.TB) map[string]int {
	out := map[string]int{}
	for _, tb := range []string{"messages", "visits", "fee_lines", "settlements", "ledger_txns", "ledger_entries",
		"chain_heads", "outbox_events", "person_counters"} {
		out[tb] = e.count(t, tb)
	}
	return out
}

func (e *env) audit(t testing.TB) *settlement.AuditReport {
	t.Helper()
	rep, err := e.store.Audit(context.Background())
	require.NoError(t, err)
	return rep
}

// outpatient registers a visit at inst for psn, uploads lines and returns the visit id.
func (e *env) outpatient(t testing.TB, inst, psn, medType string, lines ...settlement.LineInput) string {
	t.Helper()
	ctx := context.Background()
	v, err := e.engine.RegisterVisit(ctx, pgfixture.Msg(inst, "2201"), settlement.VisitInput{PsnNo: psn, Kind: settlement.VisitOutpatient, MedType: medType})
	require.NoError(t, err)
	_, err = e.engine.UploadLines(ctx, pgfixture.Msg(inst, "2204"), v.MdtrtID, psn, lines)
	require.NoError(t, err)
	return v.MdtrtID
}

func line(sn, code, cnt, pric, amount string) settlement.LineInput {
	return settlement.LineInput{SN: sn, ChrgBchno: "B1", Code: code, Cnt: cnt, Pric: pric, Amount: amount}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func decLine(sn, code, cnt, pric, amount string) rules.Line {
	return rules.Line{SN: sn, Code: code, Cnt: decimal.RequireFromString(cnt), Pric: decimal.RequireFromString(pric), Amount: decimal.RequireFromString(amount)}
}
