package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
)

func migrateCommand(f *flags) func(context.Context, streams) error {
	db := database{migrate: true}
	db.flags(f)
	var seed bool
	var dataDir string
	f.Bool(&seed, "seed", false, "also load the embedded registry (persons.csv)")
	f.String(&dataDir, "data", "", "rules directory used to validate the seed (default: embedded)")
	return func(ctx context.Context, s streams) error { return migrate(ctx, db, seed, dataDir, s) }
}

func migrate(ctx context.Context, db database, seed bool, dataDir string, s streams) error {
	st, err := db.open(ctx, textLog(s.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(s.stdout, "schema up to date")
	if !seed {
		return nil
	}
	n, err := seedRegistry(ctx, st, dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "registry seeded: %d persons\n", n)
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

func auditVerifyCommand(f *flags) func(context.Context, streams) error {
	var db database
	db.flags(f)
	return func(ctx context.Context, s streams) error { return auditVerify(ctx, db, s) }
}

func auditVerify(ctx context.Context, db database, s streams) error {
	st, err := db.open(ctx, textLog(s.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.Audit(ctx)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(s.stdout, "BREAK:", p)
	}
	fmt.Fprintln(s.stdout, rep)
	if !rep.OK() {
		return exitStatus(1) // the breaks are printed
	}
	return nil
}
