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

	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
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

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := dsnFlag(fs)
	listen := fs.String("listen", envOr("MEDSETTLE_LISTEN", ":8080"), "listen address (env MEDSETTLE_LISTEN)")
	keysFile := fs.String("keys", os.Getenv("MEDSETTLE_KEYS"), "API keys file: principal,key rows (env MEDSETTLE_KEYS)")
	tlsCert := fs.String("tls-cert", os.Getenv("MEDSETTLE_TLS_CERT"), "TLS certificate file (env MEDSETTLE_TLS_CERT)")
	tlsKey := fs.String("tls-key", os.Getenv("MEDSETTLE_TLS_KEY"), "TLS key file (env MEDSETTLE_TLS_KEY)")
	dataDir := fs.String("data", os.Getenv("MEDSETTLE_RULES"), "rules directory (env MEDSETTLE_RULES; default: embedded)")
	migrate := fs.Bool("migrate", false, "apply schema migrations before serving")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if *keysFile == "" {
		fmt.Fprintln(stderr, "medsettle serve: --keys (or MEDSETTLE_KEYS) is required")
		return 2
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(stderr, "medsettle serve: give both --tls-cert and --tls-key, or neither")
		return 2
	}
	raw, err := os.ReadFile(*keysFile)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle serve:", err)
		return 1
	}
	rs, err := loadRules(*dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle serve:", err)
		return 1
	}
	st, err := openStore(ctx, *dsn, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle serve:", err)
		return 1
	}
	defer st.Close()
	if *migrate {
		if err := postgres.Migrate(ctx, st.Pool()); err != nil {
			fmt.Fprintln(stderr, "medsettle serve:", err)
			return 1
		}
	}
	srv, err := newServer(&settlement.Engine{Rules: rs, Store: st}, st, raw, log)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle serve:", err)
		return 1
	}
	return listenAndServe(ctx, srv, *listen, *tlsCert, *tlsKey, log, stdout)
}

// newServer wires the engine, the store and the keys into the HTTP server.
func newServer(e *settlement.Engine, st *postgres.Store, keys []byte, log *slog.Logger) (*httpapi.Server, error) {
	k, err := httpapi.LoadKeys(bytes.NewReader(keys))
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
func listenAndServe(ctx context.Context, srv *httpapi.Server, addr, cert, key string, log *slog.Logger, stdout io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("listen", "addr", addr, "err", err)
		return 1
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
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
	fmt.Fprintln(stdout, httpapi.HashKey(key))
	return 0
}
