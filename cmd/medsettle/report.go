package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/medsettle/medsettle/adapters/console"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
)

func init() {
	register("report", "write a bureau's monthly statement: --period YYYY-MM --region ADMDVS --out DIR (statement.csv, statement.html)", runReport)
}

func runReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := dsnFlag(fs)
	period := fs.String("period", "", "the month, YYYY-MM (required)")
	region := fs.String("region", "", "the bureau's pooling region (admdvs), e.g. 150100 (required)")
	out := fs.String("out", ".", "directory to write statement.csv and statement.html into")
	dataDir := fs.String("data", os.Getenv("MEDSETTLE_RULES"), "rules directory for names (env MEDSETTLE_RULES; default: embedded)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, err := settlement.ParsePeriod(*period)
	if err != nil || *region == "" {
		fmt.Fprintln(stderr, "medsettle report: give --period YYYY-MM and --region ADMDVS")
		return 2
	}
	rs, err := loadRules(*dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle report:", err)
		return 1
	}
	if rs.Regions[*region] == nil {
		fmt.Fprintf(stderr, "medsettle report: region %s is not a pooling region of the rules\n", *region)
		return 2
	}
	st, err := openStore(ctx, *dsn, textLog(stderr))
	if err != nil {
		fmt.Fprintln(stderr, "medsettle report:", err)
		return 1
	}
	defer st.Close()
	stmt, err := console.BuildStatement(ctx, st, rs, *region, p, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "medsettle report:", err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "medsettle report:", err)
		return 1
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"statement.csv", stmt.WriteCSV}, {"statement.html", stmt.WriteHTML}} {
		path := filepath.Join(*out, f.name)
		if err := writeFileWith(path, f.write); err != nil {
			fmt.Fprintln(stderr, "medsettle report:", err)
			return 1
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	fmt.Fprintf(stdout, "region %s %s: %d settlements of its insured, funds %s; receivables %s, payables %s; %d institutions billed %s\n",
		*region, p, stmt.Insured.Count, console.FormatMoney(stmt.Insured.Fund), console.FormatMoney(stmt.ReceivableTotal.Owed()),
		console.FormatMoney(stmt.PayableTotal.Owed()), len(stmt.Institutions), console.FormatMoney(stmt.Treated.Medfee))
	return 0
}

// writeFileWith writes a file whole: to a temporary name, then renamed.
func writeFileWith(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// withConsole mounts the bureau console (adapters/console) at /console/ in
// front of a platform's counter interface: `medsettle serve` and each
// province of `medsettle dev`. Its login sessions are signed with
// $MEDSETTLE_CONSOLE_SECRET (at least 32 bytes) when set, else with a random
// key (sessions then end when the process does). Until ctx ends it keeps the
// day totals of closed days summed in the background (console.KeepWarm).
func withConsole(ctx context.Context, api http.Handler, st *postgres.Store, e *settlement.Engine, keys *settlement.Keys, province string, tls bool, log *slog.Logger) (http.Handler, error) {
	var secret []byte
	if s := os.Getenv("MEDSETTLE_CONSOLE_SECRET"); s != "" {
		secret = []byte(s)
	}
	h, err := console.New(console.Config{Reader: st, Reconciler: e, Keys: keys, Rules: e.Rules, Province: province,
		Now: e.Now, Secret: secret, Secure: tls, Log: log})
	if err != nil {
		return nil, err
	}
	go h.KeepWarm(ctx)
	mux := http.NewServeMux()
	mux.Handle("/console/", h)
	mux.Handle("/console", h)
	mux.Handle("/", api)
	return mux, nil
}
