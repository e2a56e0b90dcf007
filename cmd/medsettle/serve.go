package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/worker"

	"github.com/medsettle/medsettle/adapters/console"
	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/httpserve"
	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
)

// serveConfig is what `medsettle serve` runs with.
type serveConfig struct {
	platformConfig
	listen, keysFile, tlsCert, tlsKey string
	hubURL, hubToken, hubPeerToken    string
	temporal                          temporal
	pprof                             string // net/http/pprof listener; "" none
	consoleSecret                     string
}

func serveCommand(f *flags) func(context.Context, streams) error {
	var c serveConfig
	c.platformConfig.flags(f, "the province this platform serves, e.g. 150000 (empty: every region, no hub)", "apply schema migrations before serving")
	f.String(&c.listen, "listen", ":8080", "listen address", "MEDSETTLE_LISTEN")
	f.String(&c.keysFile, "keys", "", "API keys file: principal,key rows", "MEDSETTLE_KEYS")
	f.String(&c.tlsCert, "tls-cert", "", "TLS certificate file", "MEDSETTLE_TLS_CERT")
	f.String(&c.tlsKey, "tls-key", "", "TLS key file", "MEDSETTLE_TLS_KEY")
	f.String(&c.hubURL, "hub-url", "", "the national hub", "MEDSETTLE_HUB_URL")
	f.String(&c.hubToken, "hub-token", "", "this province's token at the hub", "MEDSETTLE_HUB_TOKEN")
	f.String(&c.hubPeerToken, "hub-peer-token", "", "the hub's token at this platform, for its calls to /hub-peer/", "MEDSETTLE_HUB_PEER_TOKEN")
	c.temporal.flags(f, "", "Temporal frontend for durable reversals", "temporal-namespace")
	f.String(&c.pprof, "pprof", "", "serve net/http/pprof on this separate address, e.g. 127.0.0.1:6060 (default: off)", "MEDSETTLE_PPROF")
	consoleSecretVar(f, &c.consoleSecret)
	return func(ctx context.Context, s streams) error { return serve(ctx, c, jsonLog(s.stderr), s.stdout) }
}

func serve(ctx context.Context, c serveConfig, log *slog.Logger, stdout io.Writer) error {
	switch {
	case c.keysFile == "":
		return errors.New("--keys (or MEDSETTLE_KEYS) is required")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return errors.New("give both --tls-cert and --tls-key, or neither")
	case c.hubURL != "" && c.province == "":
		return errors.New("--hub-url needs --province: the hub routes between province platforms")
	case c.hubURL != "" && c.hubToken == "":
		return errors.New("--hub-url needs --hub-token (env MEDSETTLE_HUB_TOKEN)")
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
	e, st, err := c.platformConfig.open(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.hubURL != "" {
		e.Hub = &hubhttp.Client{URL: c.hubURL, Province: c.province, Token: c.hubToken}
	}
	if c.temporal.address != "" && e.Hub != nil {
		// Interrupted cross-province settlements are reversed by a workflow
		// that survives restarts; this process also runs its worker.
		tc, stop, err := c.temporal.startWorker(workflows.TaskQueue(c.province), "reversal", func(r worker.Registry) {
			workflows.Register(r, &workflows.Activities{Hub: e.Hub})
		})
		if err != nil {
			return err
		}
		defer stop()
		e.Reverser = &workflows.Reverser{Client: tc, Province: c.province}
	} else if e.Hub != nil {
		log.Warn("no --temporal-address: reversals after a lost hub answer are retried in-process only")
		e.Reverser = &settlement.InlineReverser{Hub: e.Hub}
	}
	srv, err := newServer(e, st, raw, log)
	if err != nil {
		return err
	}
	handler, err := withConsole(ctx, srv.Handler(), st, e, srv.Keys, c.province, c.tlsCert != "", c.consoleSecret, log)
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
	hs := httpserve.Platform(c.listen, handler)
	hs.TLSCert, hs.TLSKey = c.tlsCert, c.tlsKey
	hs.Listening = func(url string) { fmt.Fprintf(stdout, "medsettle listening on %s%s\n", url, httpapi.Path) }
	return httpserve.Run(ctx, log, hs)
}

// startPprof is --pprof of serve and dev.
func startPprof(addr string, log *slog.Logger) (stop func(), err error) {
	stop, err = httpserve.StartPprof(addr, log)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	return stop, nil
}

// newServer wires the engine, the store and the keys into the HTTP server,
// with the store's transaction counts among its metrics.
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

// consoleSecretVar reads $MEDSETTLE_CONSOLE_SECRET for withConsole.
func consoleSecretVar(f *flags, p *string) {
	f.EnvOnly(p, "MEDSETTLE_CONSOLE_SECRET", "signs the bureau console's sessions (at least 32 bytes); unset: a random key, sessions end with the process")
}

// withConsole mounts the bureau console (adapters/console) at /console/ in
// front of a platform's counter interface: `medsettle serve` and each
// province of `medsettle dev`. Its login sessions are signed with secret
// ($MEDSETTLE_CONSOLE_SECRET, at least 32 bytes) when set, else with a random
// key (sessions then end when the process does). Until ctx ends it keeps the
// day totals of closed days summed in the background (console.KeepWarm).
func withConsole(ctx context.Context, api http.Handler, st *postgres.Store, e *settlement.Engine, keys *settlement.Keys,
	province string, tls bool, secret string, log *slog.Logger) (http.Handler, error) {
	var key []byte
	if secret != "" {
		key = []byte(secret)
	}
	h, err := console.New(console.Config{Reader: st, Reconciler: e, Keys: keys, Rules: e.Rules, Province: province,
		Now: e.Now, Secret: key, Secure: tls, Log: log})
	if err != nil {
		return nil, err
	}
	go h.KeepWarm(ctx)
	mux := http.NewServeMux()
	mux.Handle("/console/", h)
	mux.Handle("/console", h)
	mux.Handle("/", api)
	return mux, nil
}

func keysHashCommand(*flags) func(context.Context, streams) error { return keysHash }

func keysHash(_ context.Context, s streams) error {
	b, err := io.ReadAll(io.LimitReader(s.stdin, 4096))
	if err != nil {
		return err
	}
	key := string(bytes.TrimSpace(b))
	if len(key) < 16 {
		return badUsage("a key must have at least 16 characters")
	}
	fmt.Fprintln(s.stdout, settlement.HashKey(key))
	return nil
}
