package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
)

func init() {
	register("migrate", "apply the database schema (and seed the registry with --seed)", runMigrate)
	register("audit verify", "recompute hash chains, balances, settlement amounts and counters", runAuditVerify)
}

// dsnFlag registers --dsn, defaulting to $MEDSETTLE_DSN, then $DATABASE_URL.
func dsnFlag(fs *flag.FlagSet) *string {
	return fs.String("dsn", defaultDSN(), "PostgreSQL/CockroachDB URL (env MEDSETTLE_DSN or DATABASE_URL)")
}

func defaultDSN() string {
	if dsn := os.Getenv("MEDSETTLE_DSN"); dsn != "" {
		return dsn
	}
	return os.Getenv("DATABASE_URL")
}

func openStore(ctx context.Context, dsn string, log *slog.Logger) (*postgres.Store, error) {
	if dsn == "" {
		return nil, fmt.Errorf("no database: give --dsn or set MEDSETTLE_DSN")
	}
	return postgres.Open(ctx, dsn, log)
}

func runMigrate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := dsnFlag(fs)
	seed := fs.Bool("seed", false, "also load the embedded registry (persons.csv)")
	dataDir := fs.String("data", "", "rules directory used to validate the seed (default: embedded)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	st, err := openStore(ctx, *dsn, textLog(stderr))
	if err != nil {
		fmt.Fprintln(stderr, "medsettle migrate:", err)
		return 1
	}
	defer st.Close()
	if err := postgres.Migrate(ctx, st.Pool()); err != nil {
		fmt.Fprintln(stderr, "medsettle migrate:", err)
		return 1
	}
	fmt.Fprintln(stdout, "schema up to date")
	if *seed {
		n, err := seedRegistry(ctx, st, *dataDir)
		if err != nil {
			fmt.Fprintln(stderr, "medsettle migrate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "registry seeded: %d persons\n", n)
	}
	return 0
}

// seedRegistry loads the embedded persons, validated against the rules.
func seedRegistry(ctx context.Context, st *postgres.Store, dataDir string) (int, error) {
	rs, err := loadRules(dataDir)
	if err != nil {
		return 0, err
	}
	raw, err := medsettle.Persons()
	if err != nil {
		return 0, err
	}
	persons, err := settlement.ParsePersons(bytes.NewReader(raw), rs)
	if err != nil {
		return 0, err
	}
	return len(persons), st.SeedPersons(ctx, persons)
}

func runAuditVerify(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := dsnFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	st, err := openStore(ctx, *dsn, textLog(stderr))
	if err != nil {
		fmt.Fprintln(stderr, "medsettle audit verify:", err)
		return 1
	}
	defer st.Close()
	rep, err := st.Audit(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle audit verify:", err)
		return 1
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "BREAK:", p)
	}
	fmt.Fprintln(stdout, rep)
	if !rep.OK() {
		return 1
	}
	return 0
}

// textLog is the logger of the one-shot commands.
func textLog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
