package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
)

func init() {
	register("clear", "run the monthly clearing between provinces for a period, on Temporal", runClear)
}

func runClear(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("clear", flag.ContinueOnError)
	fs.SetOutput(stderr)
	period := fs.String("period", "", "the month to clear, yyyy-mm (required)")
	addr := fs.String("temporal-address", envOr("MEDSETTLE_TEMPORAL", "127.0.0.1:7233"), "Temporal frontend (env MEDSETTLE_TEMPORAL)")
	ns := fs.String("namespace", envOr("MEDSETTLE_TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env MEDSETTLE_TEMPORAL_NAMESPACE)")
	provinces := fs.String("provinces", strings.Join(devProvinces, ","), "provinces taking part")
	within := fs.Duration("confirm-within", 72*time.Hour, "how long an insured province has to confirm before escalation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, err := settlement.ParsePeriod(*period)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle clear:", settlement.ErrorMessage(err))
		return 2
	}
	c, err := client.Dial(client.Options{HostPort: *addr, Namespace: *ns})
	if err != nil {
		fmt.Fprintln(stderr, "medsettle clear:", err)
		return 1
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ClearingID(p), TaskQueue: workflows.HubTaskQueue},
		workflows.ClearingWorkflow, workflows.ClearingInput{Period: p, Provinces: strings.Split(*provinces, ","), ConfirmWithin: *within})
	if err != nil {
		fmt.Fprintln(stderr, "medsettle clear:", err)
		return 1
	}
	fmt.Fprintf(stderr, "clearing %s: workflow %s run %s\n", p, run.GetID(), run.GetRunID())
	var res workflows.ClearingResult
	if err := run.Get(ctx, &res); err != nil {
		fmt.Fprintln(stderr, "medsettle clear:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "medsettle clear:", err)
		return 1
	}
	return 0
}
