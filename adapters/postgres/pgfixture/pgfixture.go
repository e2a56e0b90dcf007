// Package pgfixture gives tests a store on a real PostgreSQL database that
// is migrated and seeded with the 120 registry persons of testdata, cloned
// per test from a template built once per test binary (see pgtest).
package pgfixture

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
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
	raw, err := medsettle.Persons()
	if err != nil {
		return err
	}
	persons, err := settlement.ParsePersons(bytes.NewReader(raw), rs)
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
func Store(t testing.TB) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.NewDB(t), Quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}
