// Package pgfixture gives tests a store on a real PostgreSQL database that
// is migrated and seeded with the 120 registry persons of testdata, cloned
// per test from a template built once per test binary (see pgtest), and
// the engine over it: the harness the tests of postgres, httpapi, kafka,
// loadgen and console share.
package pgfixture

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// Main runs a package's tests with the seeded template; call it from TestMain.
func Main(m *testing.M) { pgtest.Main(m, pgtest.WithTemplate(Prepare)) }

// Prepare migrates and seeds the database at dsn.
func Prepare(ctx context.Context, dsn string) error {
	st, err := postgres.Open(ctx, dsn, Quiet())
	if err != nil {
		return err
	}
	defer st.Close()
	if err := postgres.Migrate(ctx, st.Pool()); err != nil {
		return err
	}
	rs, err := rules.Load(medsettle.Rules())
	if err != nil {
		return err
	}
	persons, err := storetest.Registry(rs)
	if err != nil {
		return err
	}
	return st.SeedPersons(ctx, persons)
}

// Quiet is a logger for tests: warnings and errors only.
func Quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Store opens a store on a fresh seeded database, closed when the test ends.
func Store(t testing.TB) *postgres.Store { return NewEnv(t, time.Time{}).Store }

// Env is one test's platform core: a fresh seeded database, its store, the
// rule set of testdata and the engine over them.
type Env struct {
	DSN    string
	Store  *postgres.Store
	Rules  *rules.RuleSet
	Engine *settlement.Engine
	// Clock is the engine's time source, set at start; nil (and the engine
	// reads time.Now) when NewEnv was given the zero time.
	Clock *Clock
}

// NewEnv opens Env on a fresh seeded database, closed when the test ends,
// with the engine's clock at start (the wall clock when start is zero).
func NewEnv(t testing.TB, start time.Time) *Env {
	t.Helper()
	e := &Env{DSN: pgtest.NewDB(t), Rules: storetest.Rules(t)}
	st, err := postgres.Open(context.Background(), e.DSN, Quiet())
	if err != nil {
		t.Fatalf("opening the test store: %v", err)
	}
	t.Cleanup(st.Close)
	e.Store = st
	e.Engine = &settlement.Engine{Rules: e.Rules, Store: st}
	if !start.IsZero() {
		e.Clock = NewClock(start)
		e.Engine.Now = e.Clock.Now
	}
	return e
}
