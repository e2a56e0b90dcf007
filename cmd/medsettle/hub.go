package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/adapters/hubsim"
	"github.com/medsettle/medsettle/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

// `medsettle hub` runs the national hub (国家平台) between province
// platforms over HTTP: provinces call it at /hub/v1/settle and
// /hub/v1/reverse, it calls each province at <URL>/hub-peer/v1/...
//
//	medsettle hub --listen 127.0.0.1:8090 \
//	    --peer 150000=http://127.0.0.1:8081 --peer 420000=http://127.0.0.1:8082 --peer 230000=http://127.0.0.1:8083 \
//	    --tokens hub-tokens.csv
//
// The tokens file (see hubhttp.LoadTokens) has a row per direction:
//
//	150000,<token>        what province 150000 presents to the hub (or sha256:<hex>)
//	hub:150000,<token>    what the hub presents to province 150000's /hub-peer/ endpoints
//	admin,<token>         the admin endpoints (fault injection, records); no row: no admin endpoints
//
// --dev-tokens instead uses guessable development tokens, for one machine
// only: province P presents "dev-P-to-hub", the hub presents "dev-hub-to-P",
// the admin token is "dev-hub-admin-token". A province platform then runs
// with --hub-url http://127.0.0.1:8090 --hub-token dev-P-to-hub, and accepts
// the hub with the token dev-hub-to-P.
//
// The hub's fault injection (POST /hub/v1/faults) is for test
// environments: anyone holding the admin token can make settlements fail.

func init() {
	register("hub", "run the national hub between province platforms over HTTP (--peer province=URL, --tokens or --dev-tokens)", runHubCommand)
}

// hubPeerFlag collects repeated --peer province=URL flags.
type hubPeerFlag map[string]string

func (p hubPeerFlag) String() string {
	rows := make([]string, 0, len(p))
	for prov, u := range p {
		rows = append(rows, prov+"="+u)
	}
	sort.Strings(rows)
	return strings.Join(rows, ",")
}

func (p hubPeerFlag) Set(v string) error {
	prov, u, ok := strings.Cut(v, "=")
	prov, u = strings.TrimSpace(prov), strings.TrimSpace(u)
	if !ok || prov == "" || u == "" {
		return errors.New("want province=URL, e.g. 150000=http://127.0.0.1:8081")
	}
	if _, dup := p[prov]; dup {
		return fmt.Errorf("province %s given twice", prov)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("province %s: %q is not an http(s) URL", prov, u)
	}
	p[prov] = u
	return nil
}

// hubCommandConfig is what `medsettle hub` runs with.
type hubCommandConfig struct {
	listen, tokensFile, dataDir, tlsCert, tlsKey string
	devTokens                                    bool
	peers                                        hubPeerFlag
	peerTimeout, delay                           time.Duration
	temporal, namespace                          string
}

func runHubCommand(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := hubCommandConfig{peers: hubPeerFlag{}}
	fs.StringVar(&c.listen, "listen", envOr("MEDSETTLE_HUB_LISTEN", "127.0.0.1:8090"), "listen address (env MEDSETTLE_HUB_LISTEN)")
	fs.Var(c.peers, "peer", "a province platform as province=URL, e.g. 150000=http://127.0.0.1:8081; repeat for each province")
	fs.StringVar(&c.tokensFile, "tokens", os.Getenv("MEDSETTLE_HUB_TOKENS"), "tokens file: who,token rows (env MEDSETTLE_HUB_TOKENS)")
	fs.BoolVar(&c.devTokens, "dev-tokens", false, "use the guessable development tokens dev-P-to-hub, dev-hub-to-P, dev-hub-admin-token (one machine only)")
	fs.StringVar(&c.dataDir, "data", os.Getenv("MEDSETTLE_RULES"), "rules directory: regions to provinces, institutions (env MEDSETTLE_RULES; default: embedded)")
	fs.DurationVar(&c.peerTimeout, "peer-timeout", hubhttp.DefaultPeerTimeout, "time-out of each call to a province; past it the outcome is unknown (keep it below the provinces' hub time-out, 8 s by default)")
	fs.DurationVar(&c.delay, "delay", 2*time.Second, "how long an injected delay fault holds a delivery")
	fs.StringVar(&c.temporal, "temporal-address", os.Getenv("MEDSETTLE_TEMPORAL"), "Temporal frontend: the hub then runs the monthly clearing's worker (env MEDSETTLE_TEMPORAL)")
	fs.StringVar(&c.namespace, "temporal-namespace", envOr("MEDSETTLE_TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env MEDSETTLE_TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("MEDSETTLE_HUB_TLS_CERT"), "TLS certificate file (env MEDSETTLE_HUB_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("MEDSETTLE_HUB_TLS_KEY"), "TLS key file (env MEDSETTLE_HUB_TLS_KEY)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "medsettle hub: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := runHubServer(ctx, c, log, stdout); err != nil {
		fmt.Fprintln(stderr, "medsettle hub:", err)
		return 1
	}
	return 0
}

func runHubServer(ctx context.Context, c hubCommandConfig, log *slog.Logger, stdout io.Writer) error {
	switch {
	case len(c.peers) == 0:
		return errors.New("give each province platform with --peer province=URL")
	case c.tokensFile == "" && !c.devTokens:
		return errors.New("give --tokens FILE (or MEDSETTLE_HUB_TOKENS), or --dev-tokens on a development machine")
	case c.tokensFile != "" && c.devTokens:
		return errors.New("give --tokens or --dev-tokens, not both")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return errors.New("give both --tls-cert and --tls-key, or neither")
	case c.peerTimeout <= 0 || c.delay < 0:
		return errors.New("--peer-timeout must be positive and --delay not negative")
	}
	rs, err := loadRules(c.dataDir)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range rs.Regions {
		known[r.Province] = true
	}
	provs := make([]string, 0, len(c.peers))
	for p := range c.peers {
		if !known[p] {
			return fmt.Errorf("--peer %s: not a province of the rules' regions", p)
		}
		provs = append(provs, p)
	}
	sort.Strings(provs)
	var tokens hubhttp.Tokens
	if c.devTokens {
		tokens = hubhttp.DevTokens(provs...)
	} else {
		f, err := os.Open(c.tokensFile)
		if err != nil {
			return err
		}
		tokens, err = hubhttp.LoadTokens(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", c.tokensFile, err)
		}
	}

	sim := hubsim.New(rs)
	sim.DelayBy = c.delay
	srv := hubhttp.NewServer(sim.Hub, tokens)
	srv.Faults = sim // the admin endpoint injects faults
	srv.PeerTimeout = c.peerTimeout
	srv.Log = log
	for _, p := range provs {
		if tokens.Province[p] == "" {
			return fmt.Errorf("province %s has no token to call the hub with (a %s,<token> row)", p, p)
		}
		if err := srv.Connect(p, c.peers[p]); err != nil {
			return err
		}
	}
	if c.temporal != "" {
		// The monthly clearing (`medsettle clear`) runs here: the hub asks
		// each province over its /hub-peer/ endpoints.
		tc, err := client.Dial(client.Options{HostPort: c.temporal, Namespace: c.namespace})
		if err != nil {
			return fmt.Errorf("connecting to Temporal: %w", err)
		}
		defer tc.Close()
		peers := map[string]workflows.ClearingPeer{}
		for _, p := range provs {
			peers[p] = &hubhttp.PeerClient{URL: c.peers[p], Token: tokens.Peer[p], Timeout: c.peerTimeout}
		}
		w := worker.New(tc, workflows.HubTaskQueue, worker.Options{})
		workflows.RegisterHub(w, &workflows.ClearingActivities{Peers: peers})
		if err := w.Start(); err != nil {
			return fmt.Errorf("starting the clearing worker: %w", err)
		}
		defer w.Stop()
	}
	if tokens.Admin == "" {
		log.Info("no admin token: the fault and record endpoints refuse every request")
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// A duplicate delivery calls the province twice; a dropped answer
		// waits for the province before answering.
		WriteTimeout: 2*c.peerTimeout + c.delay + 5*time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "medsettle hub listening on %s://%s%s\n", scheme, ln.Addr(), hubhttp.SettlePath)
	for _, p := range provs {
		fmt.Fprintf(stdout, "  province %s: %s%s\n", p, strings.TrimRight(c.peers[p], "/"), hubhttp.PeerPrefix)
	}
	if c.devTokens {
		fmt.Fprintf(stdout, "  development tokens: province P presents dev-P-to-hub (e.g. %s), the hub presents dev-hub-to-P (e.g. %s), admin %s\n",
			hubhttp.DevProvinceToken(provs[0]), hubhttp.DevPeerToken(provs[0]), hubhttp.DevAdminToken)
	}
	errc := make(chan error, 1)
	go func() {
		if c.tlsCert != "" {
			errc <- hs.ServeTLS(ln, c.tlsCert, c.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = hs.Shutdown(shutdown)
	// Deliveries held by a delay fault still happen: the insured side then
	// refuses them if the treatment side has reversed meanwhile.
	srv.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
