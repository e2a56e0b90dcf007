package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
)

func init() {
	register("relay", "publish settlement events to Kafka and settle the manual claims it sends (--dsn, --kafka-brokers)", runRelay)
}

// relayConfig is what `medsettle relay` runs with.
type relayConfig struct {
	dsn, dataDir, province string
	migrate                bool
	kafka                  kafka.Config
	owner                  string
	leaseTTL               time.Duration
	noRelay, noIntake      bool
}

func runRelay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c relayConfig
	fs.StringVar(&c.dsn, "dsn", defaultDSN(), "PostgreSQL/CockroachDB URL (env MEDSETTLE_DSN or DATABASE_URL)")
	fs.StringVar(&c.dataDir, "data", os.Getenv("MEDSETTLE_RULES"), "rules directory (env MEDSETTLE_RULES; default: embedded)")
	fs.StringVar(&c.province, "province", os.Getenv("MEDSETTLE_PROVINCE"), "the province this platform serves (env MEDSETTLE_PROVINCE; empty: every region)")
	fs.BoolVar(&c.migrate, "migrate", false, "apply schema migrations first")
	c.kafka.RegisterFlags(fs)
	fs.StringVar(&c.owner, "relay-owner", os.Getenv("MEDSETTLE_RELAY_OWNER"),
		"this relay's name in the lease table, unique among running relays; a stable one (a pod name) resumes at once after a crash (default: host-pid-random)")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", 15*time.Second, "outbox lease duration: how long a dead relay's partitions wait")
	fs.BoolVar(&c.noRelay, "no-relay", false, "run the claims intake only")
	fs.BoolVar(&c.noIntake, "no-intake", false, "run the outbox relay only")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := relay(ctx, c, log, stdout); err != nil {
		fmt.Fprintln(stderr, "medsettle relay:", err)
		return 1
	}
	return 0
}

func relay(ctx context.Context, c relayConfig, log *slog.Logger, stdout io.Writer) error {
	if c.noRelay && c.noIntake {
		return errors.New("--no-relay and --no-intake leave nothing to run")
	}
	opts, err := c.kafka.Opts()
	if err != nil {
		return err
	}
	rs, err := loadRules(c.dataDir)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, c.dsn, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.migrate {
		if err := postgres.Migrate(ctx, st.Pool()); err != nil {
			return err
		}
	}
	if err := kafka.Ping(ctx, opts, 10*time.Second); err != nil {
		return err
	}
	// Both are made before either starts, so that a failure leaves nothing running.
	var r *kafka.Relay
	var in *kafka.Intake
	if !c.noRelay {
		if r, err = kafka.NewRelay(st, opts, kafka.RelayConfig{Owner: c.owner, LeaseTTL: c.leaseTTL, Log: log}); err != nil {
			return err
		}
		defer r.Close()
	}
	if !c.noIntake {
		// Manual claims of persons insured in another province are refused
		// (claim there): the intake needs no hub.
		e := &settlement.Engine{Rules: rs, Store: st, Province: c.province}
		if in, err = kafka.NewIntake(e, opts, kafka.IntakeConfig{Log: log}); err != nil {
			return err
		}
		defer in.Close()
	}
	var wg sync.WaitGroup
	if r != nil {
		fmt.Fprintf(stdout, "medsettle relay %s: publishing the outbox to %s on %s\n", r.Owner(), kafka.TopicSettlements, c.kafka.Brokers)
		wg.Go(func() { _ = r.Run(ctx) }) // Run returns nil when ctx ends
	}
	if in != nil {
		fmt.Fprintf(stdout, "medsettle relay: settling manual claims from %s, answering on %s (dead letters: %s)\n",
			kafka.TopicClaims, kafka.TopicClaimResults, kafka.TopicClaimsDLQ)
		wg.Go(func() { _ = in.Run(ctx) })
	}
	<-ctx.Done()
	log.Info("stopping: marking what was published, releasing leases")
	wg.Wait()
	return nil
}
