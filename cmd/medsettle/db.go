package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
)

func init() {
	register("migrate", "apply the database schema (and seed the registry with --seed)", runMigrate)
	register("audit verify", "recompute hash chains, balances, settlement amounts and counters", runAuditVerify)
}

func runMigrate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f := newFlags("migrate", stderr)
	db := database{migrate: true}
	db.flags(f)
	var seed bool
	var dataDir string
	f.Bool(&seed, "seed", false, "also load the embedded registry (persons.csv)")
	f.String(&dataDir, "data", "", "rules directory used to validate the seed (default: embedded)")
	if err := f.parse(args); err != nil {
		return 2
	}
	return f.exit(migrate(ctx, db, seed, dataDir, stderr, stdout))
}

func migrate(ctx context.Context, db database, seed bool, dataDir string, stderr, stdout io.Writer) error {
	st, err := db.open(ctx, textLog(stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "schema up to date")
	if !seed {
		return nil
	}
	n, err := seedRegistry(ctx, st, dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registry seeded: %d persons\n", n)
	return nil
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

// errAuditBreaks is the exit status 1 of an audit that found breaks; they
// have been printed already.
var errAuditBreaks = errors.New("the audit found breaks")

func runAuditVerify(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f := newFlags("audit verify", stderr)
	var db database
	db.flags(f)
	if err := f.parse(args); err != nil {
		return 2
	}
	err := auditVerify(ctx, db, stderr, stdout)
	if errors.Is(err, errAuditBreaks) {
		return 1
	}
	return f.exit(err)
}

func auditVerify(ctx context.Context, db database, stderr, stdout io.Writer) error {
	st, err := db.open(ctx, textLog(stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.Audit(ctx)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "BREAK:", p)
	}
	fmt.Fprintln(stdout, rep)
	if !rep.OK() {
		return errAuditBreaks
	}
	return nil
}
