package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/medsettle/medsettle/adapters/kafka"
)

func parseConfig(t *testing.T, args ...string) (*kafka.Config, error) {
	t.Helper()
	var c kafka.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	_, err := c.Opts()
	return &c, err
}

func TestConfigRefusesIncompleteOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no brokers"},
		{[]string{"--kafka-brokers", "kafka1"}, "want host:port"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-user", "u"}, "needs --kafka-user and --kafka-password"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-sasl-mechanism", "GSSAPI", "--kafka-user", "u", "--kafka-password", "p"}, "want PLAIN"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-user", "u"}, "needs --kafka-sasl-mechanism"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-tls-ca", "/nonexistent"}, "needs --kafka-tls"},
		{[]string{"--kafka-brokers", "k:9092", "--kafka-tls", "--kafka-tls-ca", "/nonexistent"}, "reading the TLS CA"},
	} {
		_, err := parseConfig(t, tc.args...)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	c, err := parseConfig(t, "--kafka-brokers", " a:1, b:2 ,", "--kafka-sasl-mechanism", "scram-sha-512",
		"--kafka-user", "u", "--kafka-password", "p", "--kafka-tls")
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2"}, c.BrokerList())
}

// selfSigned writes a CA-less certificate for 127.0.0.1 and returns the
// server's TLS config and the PEM file to trust.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(file, certPEM, 0o600))
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, file
}

// Each SASL mechanism, over TLS, against a broker that requires it.
func TestConfigConnectsWithTLSAndSASL(t *testing.T) {
	srvTLS, ca := selfSigned(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "medsettle", "s3cret"),
				kfake.TLS(srvTLS))
			require.NoError(t, err)
			defer c.Close()
			ctx := context.Background()
			args := []string{"--kafka-brokers", c.ListenAddrs()[0], "--kafka-tls", "--kafka-tls-ca", ca,
				"--kafka-sasl-mechanism", mech, "--kafka-user", "medsettle"}
			cfg, _ := parseConfig(t, append(args, "--kafka-password", "s3cret")...)
			opts, err := cfg.Opts()
			require.NoError(t, err)
			require.NoError(t, kafka.Ping(ctx, opts, 10*time.Second))

			bad, _ := parseConfig(t, append(args, "--kafka-password", "wrong")...)
			opts, err = bad.Opts()
			require.NoError(t, err)
			require.Error(t, kafka.Ping(ctx, opts, 3*time.Second), "a wrong password is refused")
		})
	}
}
