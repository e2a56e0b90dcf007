package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/medsettle/medsettle/adapters/kafka"
)

// relayConfig is what `medsettle relay` runs with.
type relayConfig struct {
	platformConfig
	kafka             kafka.Config
	owner             string
	leaseTTL          time.Duration
	noRelay, noIntake bool
}

func relayCommand(f *flags) func(context.Context, streams) error {
	var c relayConfig
	c.platformConfig.flags(f, "the province this platform serves (empty: every region)", "apply schema migrations first")
	kafkaFlags(f, &c.kafka)
	f.String(&c.owner, "relay-owner", "",
		"this relay's name in the lease table, unique among running relays; a stable one (a pod name) resumes at once after a crash (default: host-pid-random)",
		"MEDSETTLE_RELAY_OWNER")
	f.Duration(&c.leaseTTL, "lease-ttl", 15*time.Second, "outbox lease duration: how long a dead relay's partitions wait")
	f.Bool(&c.noRelay, "no-relay", false, "run the claims intake only")
	f.Bool(&c.noIntake, "no-intake", false, "run the outbox relay only")
	return func(ctx context.Context, s streams) error { return relay(ctx, c, jsonLog(s.stderr), s.stdout) }
}

// kafkaFlags registers the flags of kafka.Config, each with its
// MEDSETTLE_KAFKA_* variable (the password is better given that way than on
// a command line).
func kafkaFlags(f *flags, c *kafka.Config) {
	f.String(&c.Brokers, "kafka-brokers", "", "Kafka bootstrap brokers, comma-separated host:port", "MEDSETTLE_KAFKA_BROKERS")
	f.Bool(&c.TLS, "kafka-tls", false, "connect to Kafka over TLS", "MEDSETTLE_KAFKA_TLS")
	f.String(&c.TLSCA, "kafka-tls-ca", "", "PEM file of the CA that signed the brokers' certificates, instead of the system's", "MEDSETTLE_KAFKA_TLS_CA")
	f.String(&c.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL", "MEDSETTLE_KAFKA_SASL_MECHANISM")
	f.String(&c.User, "kafka-user", "", "SASL user", "MEDSETTLE_KAFKA_USER")
	f.String(&c.Password, "kafka-password", "", "SASL password (preferred over the flag)", "MEDSETTLE_KAFKA_PASSWORD")
	f.String(&c.ClientID, "kafka-client-id", "medsettle", "Kafka client id", "MEDSETTLE_KAFKA_CLIENT_ID")
}

func relay(ctx context.Context, c relayConfig, log *slog.Logger, stdout io.Writer) error {
	if c.noRelay && c.noIntake {
		return errors.New("--no-relay and --no-intake leave nothing to run")
	}
	opts, err := c.kafka.Opts()
	if err != nil {
		return err
	}
	// Manual claims of persons insured in another province are refused
	// (claim there): the intake's engine needs no hub.
	e, st, err := c.platformConfig.open(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
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
