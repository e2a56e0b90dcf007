package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/medsettle/medsettle/adapters/httpserve"
	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/adapters/hubsim"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/workflows"
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
	temporal                                     temporal
}

func hubCommand(f *flags) func(context.Context, streams) error {
	c := hubCommandConfig{peers: hubPeerFlag{}}
	f.String(&c.listen, "listen", "127.0.0.1:8090", "listen address", "MEDSETTLE_HUB_LISTEN")
	f.Value(c.peers, "peer", "a province platform as province=URL, e.g. 150000=http://127.0.0.1:8081; repeat for each province")
	f.String(&c.tokensFile, "tokens", "", "tokens file: who,token rows", "MEDSETTLE_HUB_TOKENS")
	f.Bool(&c.devTokens, "dev-tokens", false, "use the guessable development tokens dev-P-to-hub, dev-hub-to-P, dev-hub-admin-token (one machine only)")
	rulesFlag(f, &c.dataDir, "rules directory: regions to provinces, institutions")
	f.Duration(&c.peerTimeout, "peer-timeout", hubhttp.DefaultPeerTimeout, "time-out of each call to a province; past it the outcome is unknown (keep it below the provinces' hub time-out, 8 s by default)")
	f.Duration(&c.delay, "delay", 2*time.Second, "how long an injected delay fault holds a delivery")
	c.temporal.flags(f, "", "Temporal frontend: the hub then runs the monthly clearing's worker", "temporal-namespace")
	f.String(&c.tlsCert, "tls-cert", "", "TLS certificate file", "MEDSETTLE_HUB_TLS_CERT")
	f.String(&c.tlsKey, "tls-key", "", "TLS key file", "MEDSETTLE_HUB_TLS_KEY")
	return func(ctx context.Context, s streams) error {
		if f.NArg() > 0 {
			return badUsage("unexpected arguments %q", f.Args())
		}
		return runHubServer(ctx, c, jsonLog(s.stderr), s.stdout)
	}
}

func (c *hubCommandConfig) check() error {
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
	return nil
}

// hubTokens reads the tokens file, or makes the development tokens of provs.
func (c *hubCommandConfig) hubTokens(provs []string) (hubhttp.Tokens, error) {
	if c.devTokens {
		return hubhttp.DevTokens(provs...), nil
	}
	f, err := os.Open(c.tokensFile)
	if err != nil {
		return hubhttp.Tokens{}, err
	}
	defer f.Close()
	tokens, err := hubhttp.LoadTokens(f)
	if err != nil {
		return hubhttp.Tokens{}, fmt.Errorf("%s: %w", c.tokensFile, err)
	}
	return tokens, nil
}

func runHubServer(ctx context.Context, c hubCommandConfig, log *slog.Logger, stdout io.Writer) error {
	if err := c.check(); err != nil {
		return err
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
	tokens, err := c.hubTokens(provs)
	if err != nil {
		return err
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
	if c.temporal.address != "" {
		// The monthly clearing (`medsettle clear`) runs here: the hub asks
		// each province over its /hub-peer/ endpoints.
		peers := map[string]settlement.ClearingPeer{}
		for _, p := range provs {
			peers[p] = &hubhttp.PeerClient{URL: c.peers[p], Token: tokens.Peer[p], Timeout: c.peerTimeout}
		}
		_, stop, err := c.temporal.startWorker(workflows.HubTaskQueue, "clearing", func(r worker.Registry) {
			workflows.RegisterHub(r, &workflows.ClearingActivities{Peers: peers})
		})
		if err != nil {
			return err
		}
		defer stop()
	}
	if tokens.Admin == "" {
		log.Info("no admin token: the fault and record endpoints refuse every request")
	}
	hs := httpserve.Platform(c.listen, srv.Handler())
	hs.WriteTimeout = hubhttp.WriteTimeout(c.peerTimeout, c.delay)
	hs.TLSCert, hs.TLSKey = c.tlsCert, c.tlsKey
	hs.Listening = func(url string) { c.banner(stdout, url, provs) }
	err = httpserve.Run(ctx, log, hs)
	// Deliveries held by a delay fault still happen: the insured side then
	// refuses them if the treatment side has reversed meanwhile.
	srv.Wait()
	return err
}

// banner prints where the hub listens and whom it calls.
func (c *hubCommandConfig) banner(stdout io.Writer, url string, provs []string) {
	fmt.Fprintf(stdout, "medsettle hub listening on %s%s\n", url, hubhttp.SettlePath)
	for _, p := range provs {
		fmt.Fprintf(stdout, "  province %s: %s%s\n", p, strings.TrimRight(c.peers[p], "/"), hubhttp.PeerPrefix)
	}
	if c.devTokens {
		fmt.Fprintf(stdout, "  development tokens: province P presents dev-P-to-hub (e.g. %s), the hub presents dev-hub-to-P (e.g. %s), admin %s\n",
			hubhttp.DevProvinceToken(provs[0]), hubhttp.DevPeerToken(provs[0]), hubhttp.DevAdminToken)
	}
}

// clearConfig is what `medsettle clear` runs with.
type clearConfig struct {
	period, provinces string
	temporal          temporal
	within            time.Duration
}

func clearCommand(f *flags) func(context.Context, streams) error {
	var c clearConfig
	f.String(&c.period, "period", "", "the month to clear, yyyy-mm (required)")
	c.temporal.flags(f, "127.0.0.1:7233", "Temporal frontend", "namespace")
	f.String(&c.provinces, "provinces", strings.Join(devProvinces, ","), "provinces taking part")
	f.Duration(&c.within, "confirm-within", 72*time.Hour, "how long an insured province has to confirm before escalation")
	return func(ctx context.Context, s streams) error { return clearPeriod(ctx, c, s) }
}

// clearPeriod starts the period's clearing workflow on the hub's queue and prints its result.
func clearPeriod(ctx context.Context, c clearConfig, s streams) error {
	p, err := settlement.ParsePeriod(c.period)
	if err != nil {
		return badUsage("%s", settlement.ErrorMessage(err))
	}
	tc, err := c.temporal.dial()
	if err != nil {
		return err
	}
	defer tc.Close()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ClearingID(p), TaskQueue: workflows.HubTaskQueue},
		workflows.ClearingWorkflow, workflows.ClearingInput{Period: p, Provinces: strings.Split(c.provinces, ","), ConfirmWithin: c.within})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.stderr, "clearing %s: workflow %s run %s\n", p, run.GetID(), run.GetRunID())
	var res workflows.ClearingResult
	if err := run.Get(ctx, &res); err != nil {
		return err
	}
	enc := json.NewEncoder(s.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
