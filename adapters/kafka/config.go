package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config is how the commands reach Kafka. Register its flags with
// RegisterFlags, then turn it into client options with Opts.
type Config struct {
	Brokers       string // comma-separated host:port
	TLS           bool
	TLSCA         string // PEM file of the CA to trust instead of the system's
	SASLMechanism string // "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	User          string
	Password      string
	ClientID      string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// RegisterFlags registers --kafka-brokers, --kafka-tls, --kafka-tls-ca,
// --kafka-sasl-mechanism, --kafka-user and --kafka-password, each defaulting
// to its MEDSETTLE_KAFKA_* environment variable (the password is better
// given that way than on a command line).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Brokers, "kafka-brokers", os.Getenv("MEDSETTLE_KAFKA_BROKERS"),
		"Kafka bootstrap brokers, comma-separated host:port (env MEDSETTLE_KAFKA_BROKERS)")
	fs.BoolVar(&c.TLS, "kafka-tls", os.Getenv("MEDSETTLE_KAFKA_TLS") == "1" || os.Getenv("MEDSETTLE_KAFKA_TLS") == "true",
		"connect to Kafka over TLS (env MEDSETTLE_KAFKA_TLS=1)")
	fs.StringVar(&c.TLSCA, "kafka-tls-ca", os.Getenv("MEDSETTLE_KAFKA_TLS_CA"),
		"PEM file of the CA that signed the brokers' certificates, instead of the system's (env MEDSETTLE_KAFKA_TLS_CA)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", os.Getenv("MEDSETTLE_KAFKA_SASL_MECHANISM"),
		"SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL (env MEDSETTLE_KAFKA_SASL_MECHANISM)")
	fs.StringVar(&c.User, "kafka-user", os.Getenv("MEDSETTLE_KAFKA_USER"), "SASL user (env MEDSETTLE_KAFKA_USER)")
	fs.StringVar(&c.Password, "kafka-password", os.Getenv("MEDSETTLE_KAFKA_PASSWORD"),
		"SASL password (env MEDSETTLE_KAFKA_PASSWORD, preferred over the flag)")
	fs.StringVar(&c.ClientID, "kafka-client-id", envOr("MEDSETTLE_KAFKA_CLIENT_ID", "medsettle"),
		"Kafka client id (env MEDSETTLE_KAFKA_CLIENT_ID)")
}

// Enabled reports whether brokers were given.
func (c *Config) Enabled() bool { return strings.TrimSpace(c.Brokers) != "" }

// BrokerList is Brokers split, without blanks.
func (c *Config) BrokerList() []string {
	var out []string
	for _, b := range strings.Split(c.Brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Opts returns the client options for the brokers, TLS and SASL. Relay and
// Intake add their own producer and consumer options to these.
func (c *Config) Opts() ([]kgo.Opt, error) {
	brokers := c.BrokerList()
	if len(brokers) == 0 {
		return nil, errors.New("kafka: no brokers: give --kafka-brokers")
	}
	for _, b := range brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, fmt.Errorf("kafka: broker %q: want host:port", b)
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.TLSCA != "" && !c.TLS {
		return nil, errors.New("kafka: --kafka-tls-ca needs --kafka-tls")
	}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("kafka: reading the TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka: %s holds no PEM certificate", c.TLSCA)
			}
			tc.RootCAs = pool
		}
		// Each broker's certificate is checked against its own host name.
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	mech := strings.ToUpper(strings.TrimSpace(c.SASLMechanism))
	if mech == "" {
		if c.User != "" {
			return nil, errors.New("kafka: --kafka-user needs --kafka-sasl-mechanism")
		}
		return opts, nil
	}
	if c.User == "" || c.Password == "" {
		return nil, fmt.Errorf("kafka: SASL %s needs --kafka-user and --kafka-password", mech)
	}
	switch mech {
	case "PLAIN":
		// PLAIN sends the password as is: use it with --kafka-tls
		// unless the network to the brokers is trusted.
		opts = append(opts, kgo.SASL(plain.Auth{User: c.User, Pass: c.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	return opts, nil
}

// Ping checks that the brokers answer, within timeout.
func Ping(ctx context.Context, opts []kgo.Opt, timeout time.Duration) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: brokers do not answer: %w", err)
	}
	return nil
}

// The zero value of a field of IntakeConfig, RelayConfig or MonitorConsumer
// means its default; these set it.

// orDefault sets *p to def when *p is the zero value.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// positiveOr sets *p to def when *p is zero or negative.
func positiveOr[T int | int64 | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// lingerOr is how long a producer lingers: zero means def, a negative value
// not at all.
func lingerOr(linger, def time.Duration) time.Duration {
	switch {
	case linger == 0:
		return def
	case linger < 0:
		return 0
	}
	return linger
}
