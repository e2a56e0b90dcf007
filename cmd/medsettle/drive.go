package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/demo"
	"github.com/medsettle/medsettle/adapters/loadgen"
	"github.com/medsettle/medsettle/settlement"
)

// The commands that drive a running platform as an HIS would: demo and load.

func demoCommand(f *flags) func(context.Context, streams) error {
	var url string
	f.String(&url, "url", "http://127.0.0.1:8080", "the platform's address")
	return func(ctx context.Context, s streams) error { return runDay(ctx, url, s.stdout) }
}

// runDay runs the scripted day with the institutions' development keys.
func runDay(ctx context.Context, url string, stdout io.Writer) error {
	raw, err := medsettle.DevKeys()
	if err != nil {
		return err
	}
	r := csv.NewReader(bytes.NewReader(raw))
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		return err
	}
	keys := demo.Keys{}
	for _, row := range rows {
		if len(row) == 2 && !strings.HasPrefix(row[0], "bureau:") {
			keys[row[0]] = row[1]
		}
	}
	d := &demo.Day{URL: url, Keys: keys, Out: stdout}
	return d.Run(ctx)
}

const defaultKeysFile = "testdata/dev-keys.csv"

// loadConfig is what `medsettle load` runs with.
type loadConfig struct {
	url, keysFile, mix, dataDir, cpuProfile string
	counters, count                         int
	rate                                    float64
	duration, timeout                       time.Duration
	seed                                    uint64
}

func loadCommand(f *flags) func(context.Context, streams) error {
	var c loadConfig
	f.String(&c.url, "url", "http://127.0.0.1:8080", "base URL of the server")
	f.String(&c.keysFile, "keys", defaultKeysFile, "keys file: fixmedins_code,key rows (bureau rows are skipped); the embedded dev keys when the default is absent")
	f.Int(&c.counters, "counters", 8, "concurrent counters, each an institution of the keys file in turn (with --rate: the most flows under way at once)")
	f.Float64(&c.rate, "rate", 0, "open loop: start this many flows per second, evenly spaced whatever the answers' times; each flow settles once, so this is the target of settlements/s (0: closed loop, each counter starts its next flow when the last ends)")
	f.Duration(&c.duration, "duration", 0, "run this long (default 30s unless --count is given)")
	f.Int(&c.count, "count", 0, "run this many flows in all instead of a duration")
	f.String(&c.mix, "mix", loadgen.DefaultMix.String(), "flow weights")
	f.Duration(&c.timeout, "timeout", 15*time.Second, "per-attempt time-out of a message")
	f.String(&c.dataDir, "data", "", "rules directory for institutions and catalogs (default: embedded)")
	f.Uint64(&c.seed, "seed", 0, "random seed (0: random)")
	f.String(&c.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	return func(ctx context.Context, s streams) error {
		lessGC()
		return load(ctx, c, s.stdout)
	}
}

func load(ctx context.Context, c loadConfig, stdout io.Writer) error {
	if c.count > 0 && c.duration > 0 {
		return badUsage("give --duration or --count, not both")
	}
	if c.rate < 0 {
		return badUsage("--rate must not be negative")
	}
	if c.count == 0 && c.duration == 0 {
		c.duration = 30 * time.Second
	}
	mix, err := loadgen.ParseMix(c.mix)
	if err != nil {
		return usageError{err}
	}
	raw, err := os.ReadFile(c.keysFile)
	if errors.Is(err, os.ErrNotExist) && c.keysFile == defaultKeysFile {
		raw, err = medsettle.DevKeys()
	}
	if err != nil {
		return err
	}
	keys, err := loadgen.ParseKeys(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	rs, err := loadRules(c.dataDir)
	if err != nil {
		return err
	}
	var rulesFS fs.FS = medsettle.Rules()
	if c.dataDir != "" {
		rulesFS = os.DirFS(c.dataDir)
	}
	rawPersons, err := medsettle.Persons()
	if err != nil {
		return err
	}
	persons, err := settlement.ParsePersons(bytes.NewReader(rawPersons), rs)
	if err != nil {
		return err
	}
	if c.cpuProfile != "" {
		stop, err := startCPUProfile(c.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: c.url, Keys: keys, Counters: c.counters, Duration: c.duration, Count: c.count, Rate: c.rate,
		Mix: mix, Timeout: c.timeout, Rules: rs, Catalogs: rulesFS, Persons: persons, Seed: c.seed})
	if rep != nil {
		rep.Print(stdout)
	}
	return err
}

// startCPUProfile profiles this process into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
