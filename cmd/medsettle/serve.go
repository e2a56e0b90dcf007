package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
)

func init() {
	register("serve", "serve the counter interface (production: --dsn, --keys, TLS)", runServe)
	register("keys hash", "print the sha256: form of a key read on stdin, for a production keys file", runKeysHash)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// serveConfig is what `medsettle serve` runs with.
type serveConfig struct {
	dsn, listen, keysFile, tlsCert, tlsKey, dataDir string
	migrate                                         bool
	province                                        string // "" serves every region, with no hub
	hubURL, hubToken, hubPeerToken                  string
	temporal, namespace                             string
	pprof                                           string // net/http/pprof listener; "" none
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c serveConfig
	fs.StringVar(&c.dsn, "dsn", defaultDSN(), "PostgreSQL/CockroachDB URL (env MEDSETTLE_DSN or DATABASE_URL)")
	fs.StringVar(&c.listen, "listen", envOr("MEDSETTLE_LISTEN", ":8080"), "listen address (env MEDSETTLE_LISTEN)")
	fs.StringVar(&c.keysFile, "keys", os.Getenv("MEDSETTLE_KEYS"), "API keys file: principal,key rows (env MEDSETTLE_KEYS)")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("MEDSETTLE_TLS_CERT"), "TLS certificate file (env MEDSETTLE_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("MEDSETTLE_TLS_KEY"), "TLS key file (env MEDSETTLE_TLS_KEY)")
	fs.StringVar(&c.dataDir, "data", os.Getenv("MEDSETTLE_RULES"), "rules directory (env MEDSETTLE_RULES; default: embedded)")
	fs.BoolVar(&c.migrate, "migrate", false, "apply schema migrations before serving")
	fs.StringVar(&c.province, "province", os.Getenv("MEDSETTLE_PROVINCE"), "the province this platform serves, e.g. 150000 (env MEDSETTLE_PROVINCE; empty: every region, no hub)")
	fs.StringVar(&c.hubURL, "hub-url", os.Getenv("MEDSETTLE_HUB_URL"), "the national hub (env MEDSETTLE_HUB_URL)")
	fs.StringVar(&c.hubToken, "hub-token", os.Getenv("MEDSETTLE_HUB_TOKEN"), "this province's token at the hub (env MEDSETTLE_HUB_TOKEN)")
	fs.StringVar(&c.hubPeerToken, "hub-peer-token", os.Getenv("MEDSETTLE_HUB_PEER_TOKEN"), "the hub's token at this platform, for its calls to /hub-peer/ (env MEDSETTLE_HUB_PEER_TOKEN)")
	fs.StringVar(&c.temporal, "temporal-address", os.Getenv("MEDSETTLE_TEMPORAL"), "Temporal frontend for durable reversals (env MEDSETTLE_TEMPORAL)")
	fs.StringVar(&c.namespace, "temporal-namespace", envOr("MEDSETTLE_TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env MEDSETTLE_TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.pprof, "pprof", os.Getenv("MEDSETTLE_PPROF"), "serve net/http/pprof on this separate address, e.g. 127.0.0.1:6060 (env MEDSETTLE_PPROF; default: off)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := serve(ctx, c, log, stdout); err != nil {
		fmt.Fprintln(stderr, "medsettle serve:", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, c serveConfig, log *slog.Logger, stdout io.Writer) error {
	switch {
	case c.keysFile == "":
		return errors.New("--keys (or MEDSETTLE_KEYS) is required")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return errors.New("give both --tls-cert and --tls-key, or neither")
	case c.hubURL != "" && c.province == "":
		return errors.New("--hub-url needs --province: the hub routes between province platforms")
	}
	raw, err := os.ReadFile(c.keysFile)
	if err != nil {
		return err
	}
	stopPprof, err := startPprof(c.pprof, log)
	if err != nil {
		return err
	}
	defer stopPprof()
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
	e := &settlement.Engine{Rules: rs, Store: st, Province: c.province}
	if c.hubURL != "" {
		if e.Hub, err = hubClient(c); err != nil {
			return err
		}
	}
	if c.temporal != "" && e.Hub != nil {
		// Interrupted cross-province settlements are reversed by a workflow
		// that survives restarts; this process also runs its worker.
		tc, err := client.Dial(client.Options{HostPort: c.temporal, Namespace: c.namespace})
		if err != nil {
			return fmt.Errorf("connecting to Temporal: %w", err)
		}
		defer tc.Close()
		w := worker.New(tc, workflows.TaskQueue(c.province), worker.Options{})
		workflows.Register(w, &workflows.Activities{Hub: e.Hub})
		if err := w.Start(); err != nil {
			return fmt.Errorf("starting the reversal worker: %w", err)
		}
		defer w.Stop()
		e.Reverser = &workflows.Reverser{Client: tc, Province: c.province}
	} else if e.Hub != nil {
		log.Warn("no --temporal-address: reversals after a lost hub answer are retried in-process only")
		e.Reverser = &settlement.InlineReverser{Hub: e.Hub}
	}
	srv, err := newServer(e, st, raw, log)
	if err != nil {
		return err
	}
	// console: the bureau console at /console/ beside the counter interface (adapters/console; withConsole in report.go)
	handler, err := withConsole(ctx, srv.Handler(), st, e, srv.Keys, c.province, c.tlsCert != "", log)
	if err != nil {
		return err
	}
	if c.province != "" && c.hubPeerToken != "" {
		// The hub calls in here for the insured side of cross-province settlements.
		mux := http.NewServeMux()
		mux.Handle(hubhttp.PeerPrefix, hubhttp.PeerHandlerWithLog(e, c.hubPeerToken, log))
		mux.Handle("/", handler)
		handler = mux
	}
	if code := listenAndServe(ctx, handler, c.listen, c.tlsCert, c.tlsKey, log, stdout); code != 0 {
		return errors.New("the server stopped with an error")
	}
	return nil
}

// newServer wires the engine, the store and the keys into the HTTP server.
func newServer(e *settlement.Engine, st *postgres.Store, keys []byte, log *slog.Logger) (*httpapi.Server, error) {
	k, err := settlement.LoadKeys(bytes.NewReader(keys))
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "medsettle_tx_retries_total",
		Help: "Database transactions run again after a serialization failure or deadlock."},
		func() float64 { return float64(st.Stats().Retries) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "medsettle_tx_commits_total",
		Help: "Database write transactions committed."},
		func() float64 { return float64(st.Stats().Commits) }))
	return &httpapi.Server{
		Engine:   e,
		Keys:     k,
		Log:      log,
		Registry: reg,
		Ready:    func(ctx context.Context) error { return st.Pool().Ping(ctx) },
	}, nil
}

// listenAndServe serves until ctx ends, then drains requests in flight.
func listenAndServe(ctx context.Context, handler http.Handler, addr, cert, key string, log *slog.Logger, stdout io.Writer) int { // console: takes the handler (API + console)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("listen", "addr", addr, "err", err)
		return 1
	}
	hs := &http.Server{
		Handler:           handler, // console
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "medsettle listening on %s://%s%s\n", scheme, ln.Addr(), httpapi.Path)
	errc := make(chan error, 1)
	go func() {
		if cert != "" {
			errc <- hs.ServeTLS(ln, cert, key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func runKeysHash(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	b, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		fmt.Fprintln(stderr, "medsettle keys hash:", err)
		return 1
	}
	key := string(bytes.TrimSpace(b))
	if len(key) < 16 {
		fmt.Fprintln(stderr, "medsettle keys hash: a key must have at least 16 characters")
		return 2
	}
	fmt.Fprintln(stdout, settlement.HashKey(key))
	return 0
}
