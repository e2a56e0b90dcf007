package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/pprof"
	"time"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/loadgen"
	"github.com/medsettle/medsettle/settlement"
)

func init() {
	register("load", "drive a running server with concurrent counters and report throughput and latency", runLoad)
}

const defaultKeysFile = "testdata/dev-keys.csv"

func runLoad(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("load", flag.ContinueOnError)
	flags.SetOutput(stderr)
	url := flags.String("url", "http://127.0.0.1:8080", "base URL of the server")
	keysFile := flags.String("keys", defaultKeysFile, "keys file: fixmedins_code,key rows (bureau rows are skipped); the embedded dev keys when the default is absent")
	counters := flags.Int("counters", 8, "concurrent counters, each an institution of the keys file in turn (with --rate: the most flows under way at once)")
	rate := flags.Float64("rate", 0, "open loop: start this many flows per second, evenly spaced whatever the answers' times; each flow settles once, so this is the target of settlements/s (0: closed loop, each counter starts its next flow when the last ends)")
	duration := flags.Duration("duration", 0, "run this long (default 30s unless --count is given)")
	count := flags.Int("count", 0, "run this many flows in all instead of a duration")
	mixFlag := flags.String("mix", loadgen.DefaultMix.String(), "flow weights")
	timeout := flags.Duration("timeout", 15*time.Second, "per-attempt time-out of a message")
	dataDir := flags.String("data", "", "rules directory for institutions and catalogs (default: embedded)")
	seed := flags.Uint64("seed", 0, "random seed (0: random)")
	cpuProfile := flags.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	lessGC()
	if *count > 0 && *duration > 0 {
		fmt.Fprintln(stderr, "medsettle load: give --duration or --count, not both")
		return 2
	}
	if *rate < 0 {
		fmt.Fprintln(stderr, "medsettle load: --rate must not be negative")
		return 2
	}
	if *count == 0 && *duration == 0 {
		*duration = 30 * time.Second
	}
	mix, err := loadgen.ParseMix(*mixFlag)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 2
	}
	raw, err := os.ReadFile(*keysFile)
	if errors.Is(err, os.ErrNotExist) && *keysFile == defaultKeysFile {
		raw, err = medsettle.DevKeys()
	}
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 1
	}
	keys, err := loadgen.ParseKeys(bytes.NewReader(raw))
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 1
	}
	rs, err := loadRules(*dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 1
	}
	var rulesFS fs.FS = medsettle.Rules()
	if *dataDir != "" {
		rulesFS = os.DirFS(*dataDir)
	}
	rawPersons, err := medsettle.Persons()
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 1
	}
	persons, err := settlement.ParsePersons(bytes.NewReader(rawPersons), rs)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "medsettle load:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "medsettle load:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: *url, Keys: keys, Counters: *counters, Duration: *duration, Count: *count, Rate: *rate,
		Mix: mix, Timeout: *timeout, Rules: rs, Catalogs: rulesFS, Persons: persons, Seed: *seed})
	if rep != nil {
		rep.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "medsettle load:", err)
		return 1
	}
	return 0
}
