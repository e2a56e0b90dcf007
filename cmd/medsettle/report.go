package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/medsettle/medsettle/adapters/console"
	"github.com/medsettle/medsettle/settlement"
)

// reportConfig is what `medsettle report` runs with.
type reportConfig struct {
	db                           database
	period, region, out, dataDir string
}

func reportCommand(f *flags) func(context.Context, streams) error {
	var c reportConfig
	c.db.flags(f)
	f.String(&c.period, "period", "", "the month, YYYY-MM (required)")
	f.String(&c.region, "region", "", "the bureau's pooling region (admdvs), e.g. 150100 (required)")
	f.String(&c.out, "out", ".", "directory to write statement.csv and statement.html into")
	rulesFlag(f, &c.dataDir, "rules directory for names")
	return func(ctx context.Context, s streams) error { return report(ctx, c, s.stderr, s.stdout) }
}

func report(ctx context.Context, c reportConfig, stderr, stdout io.Writer) error {
	p, err := settlement.ParsePeriod(c.period)
	if err != nil || c.region == "" {
		return badUsage("give --period YYYY-MM and --region ADMDVS")
	}
	rs, err := loadRules(c.dataDir)
	if err != nil {
		return err
	}
	if rs.Regions[c.region] == nil {
		return badUsage("region %s is not a pooling region of the rules", c.region)
	}
	st, err := c.db.open(ctx, textLog(stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	stmt, err := console.BuildStatement(ctx, st, rs, c.region, p, time.Now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"statement.csv", stmt.WriteCSV}, {"statement.html", stmt.WriteHTML}} {
		path := filepath.Join(c.out, f.name)
		if err := writeFileWith(path, f.write); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	fmt.Fprintf(stdout, "region %s %s: %d settlements of its insured, funds %s; receivables %s, payables %s; %d institutions billed %s\n",
		c.region, p, stmt.Insured.Count, console.FormatMoney(stmt.Insured.Fund), console.FormatMoney(stmt.ReceivableTotal.Owed()),
		console.FormatMoney(stmt.PayableTotal.Owed()), len(stmt.Institutions), console.FormatMoney(stmt.Treated.Medfee))
	return nil
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
