package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/httpserve"
	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/localpg"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
	"github.com/medsettle/medsettle/workflows"
)

// devProvinces are the platforms `medsettle dev` runs, one database each.
var devProvinces = []string{"150000", "420000", "230000"}

// platform is one province's running deployment.
type platform struct {
	province string
	store    *postgres.Store
	engine   *settlement.Engine
	server   *httpapi.Server
	addr     string
}

// devConfig is what `medsettle dev` runs with.
type devConfig struct {
	listen, dataDir, pprof, consoleSecret string
	firstPort, pgPort, kafkaPort          int
}

func devCommand(f *flags) func(context.Context, streams) error {
	var c devConfig
	f.String(&c.listen, "listen", "127.0.0.1:8080", "address of the counter interface for every province (routed by fixmedins_code)")
	f.Int(&c.firstPort, "province-port", 8081, "the provinces also listen on this port and the next two (150000, 420000, 230000)")
	f.String(&c.dataDir, "data-dir", "", "keep the databases in this directory across runs (default: a temporary one, removed on exit)")
	f.Int(&c.pgPort, "pg-port", 0, "PostgreSQL port (default: a free one)")
	f.Int(&c.kafkaPort, "kafka-port", 9092, "port of the in-process Kafka broker (kfake), for standard Kafka tools")
	f.String(&c.pprof, "pprof", "", "serve net/http/pprof on this address, e.g. 127.0.0.1:6060 (default: off)")
	consoleSecretVar(f, &c.consoleSecret)
	return func(ctx context.Context, s streams) error {
		lessGC()
		log := textLog(s.stderr)
		stopPprof, err := startPprof(c.pprof, log)
		if err != nil {
			return err
		}
		defer stopPprof()
		return dev(ctx, c, log, s.stdout)
	}
}

func dev(ctx context.Context, c devConfig, log *slog.Logger, stdout io.Writer) error {
	rs, err := loadRules("")
	if err != nil {
		return err
	}
	keys, err := medsettle.DevKeys()
	if err != nil {
		return err
	}
	start, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cluster, err := localpg.StartWith(start, localpg.Options{Dir: c.dataDir, Durable: c.dataDir != "", Port: c.pgPort})
	if err != nil {
		return err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			log.Error("stopping PostgreSQL", "err", err)
		}
	}()

	// Temporal runs in-process: the reversal of interrupted cross-province
	// settlements and the monthly clearing are workflows on it.
	ts := temporaltest.NewServer()
	defer stopTemporal(ts, log)
	tc := ts.GetDefaultClient()

	hub := national.New(rs)
	platforms := make([]*platform, 0, len(devProvinces))
	peers := map[string]settlement.ClearingPeer{}
	for i, prov := range devProvinces {
		p, err := startPlatform(start, log, cluster, rs, prov, keys, hub, tc)
		if err != nil {
			return fmt.Errorf("province %s: %w", prov, err)
		}
		defer p.store.Close()
		p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.firstPort+i))
		platforms = append(platforms, p)
		peers[prov] = p.engine
		ts.NewWorker(workflows.TaskQueue(prov), func(r worker.Registry) {
			workflows.Register(r, &workflows.Activities{Hub: hub.For(prov)})
		})
	}
	brokers, stop, err := startEvents(ctx, log, platforms, c.kafkaPort)
	if err != nil {
		return err
	}
	defer stop()
	ts.NewWorker(workflows.HubTaskQueue, func(r worker.Registry) {
		workflows.RegisterHub(r, &workflows.ClearingActivities{Peers: peers})
	})
	servers, err := devServers(ctx, c, log, rs, platforms)
	if err != nil {
		return err
	}
	// The banner once every listener is open: scripts/demo.sh starts on its last line but one.
	servers[len(servers)-1].Listening = func(string) {
		fmt.Fprintf(stdout, "medsettle dev: %d provinces on one PostgreSQL (%s, data in %s), 120 persons each, %d institutions, dev keys of testdata/dev-keys.csv\n",
			len(platforms), cluster.DSN("postgres"), cluster.Dir, len(rs.Institutions))
		for _, p := range platforms {
			fmt.Fprintf(stdout, "  province %s: http://%s%s  database %s\n", p.province, p.addr, httpapi.Path, cluster.DSN(dbName(p.province)))
		}
		fmt.Fprintf(stdout, "  Temporal: %s namespace %s (monthly clearing: medsettle clear --temporal-address %s --namespace %s --period YYYY-MM)\n",
			ts.GetFrontendHostPort(), ts.GetDefaultNamespace(), ts.GetFrontendHostPort(), ts.GetDefaultNamespace())
		fmt.Fprintf(stdout, "  Kafka (in-process, kfake): %s topics %s, %s, %s\n", strings.Join(brokers, ","),
			kafka.TopicSettlements, kafka.TopicClaims, kafka.MonitorAlertsTopic)
		fmt.Fprintf(stdout, "medsettle listening on http://%s%s (every province, routed by fixmedins_code)\n", c.listen, httpapi.Path)
		fmt.Fprintf(stdout, "  bureau console: http://%s/console/ (province %s; each province's on its own port) with a bureau key of testdata/dev-keys.csv\n", c.listen, platforms[0].province)
	}
	return httpserve.Run(ctx, log, servers...)
}

// startEvents runs the events of dev on an in-process Kafka broker: each
// province's outbox relay publishes its settlements there, each province's
// supervision monitor reads every province's, and manual claims on
// medsettle.claims are settled by Inner Mongolia's platform (in production
// each province runs `medsettle relay` on its own claims topic). stop closes
// the relays, the intake and the broker.
func startEvents(ctx context.Context, log *slog.Logger, platforms []*platform, port int) (brokers []string, stop func(), err error) {
	brokers, stopKafka, err := kafka.StartDevBroker(ctx, port)
	if err != nil {
		return nil, nil, err
	}
	closers := []func(){stopKafka}
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	for _, p := range platforms {
		relay, err := kafka.NewRelay(p.store, opts, kafka.RelayConfig{Owner: "dev-" + p.province, Log: log.With("province", p.province)})
		if err != nil {
			stop()
			return nil, nil, err
		}
		closers = append(closers, relay.Close)
		go runUntilDone(ctx, log, "relay "+p.province, relay.Run)
		alerts := postgres.NewAlertStore(p.store)
		p.server.Alerts = alerts
		mon := &kafka.MonitorConsumer{Brokers: brokers, Group: kafka.MonitorGroup + "-" + p.province, Store: alerts,
			Log: log.With("province", p.province)}
		go runUntilDone(ctx, log, "monitor "+p.province, mon.Run)
	}
	intake, err := kafka.NewIntake(platforms[0].engine, opts, kafka.IntakeConfig{Log: log.With("province", platforms[0].province)})
	if err != nil {
		stop()
		return nil, nil, err
	}
	closers = append(closers, intake.Close)
	go runUntilDone(ctx, log, "intake", intake.Run)
	return brokers, stop, nil
}

// devServers are a listener per province (its counter interface and
// console) and the router in front of all of them.
func devServers(ctx context.Context, c devConfig, log *slog.Logger, rs *rules.RuleSet, platforms []*platform) ([]*httpserve.Server, error) {
	router := &httpapi.ProvinceRouter{Rules: rs, Provinces: map[string]http.Handler{}}
	var servers []*httpserve.Server
	for _, p := range platforms {
		h, err := withConsole(ctx, p.server.Handler(), p.store, p.engine, p.server.Keys, p.province, false, c.consoleSecret, log.With("province", p.province))
		if err != nil {
			return nil, err
		}
		router.Provinces[p.province] = h
		if router.Default == nil {
			router.Default = h // health and metrics of the first platform
		}
		servers = append(servers, devServer(p.addr, h))
	}
	return append(servers, devServer(c.listen, router)), nil
}

// devServer has the counter interface's time-outs but none for idle
// connections (they close after ReadTimeout), as dev always had.
func devServer(addr string, h http.Handler) *httpserve.Server {
	s := httpserve.Platform(addr, h)
	s.IdleTimeout = 0
	return s
}

func dbName(province string) string { return "prov_" + province }

// startPlatform creates, migrates and seeds a province's database and wires its engine and server.
func startPlatform(ctx context.Context, log *slog.Logger, cluster *localpg.Cluster, rs *rules.RuleSet, prov string, keys []byte,
	hub *national.Hub, tc client.Client) (*platform, error) {
	admin, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return nil, err
	}
	var exists bool
	err = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, dbName(prov)).Scan(&exists)
	if err == nil && !exists {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName(prov)}.Sanitize())
	}
	_ = admin.Close(ctx)
	if err != nil {
		return nil, err
	}
	st, err := postgres.Open(ctx, cluster.DSN(dbName(prov)), log)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, st.Pool()); err != nil {
		st.Close()
		return nil, err
	}
	// Every platform knows every insured person's identity (the national
	// registry); counters and accounts live only at the insured province.
	if _, err := seedRegistry(ctx, st, ""); err != nil {
		st.Close()
		return nil, err
	}
	e := &settlement.Engine{Rules: rs, Store: st, Province: prov, Hub: hub.For(prov),
		Reverser: &workflows.Reverser{Client: tc, Province: prov}}
	hub.Register(prov, e)
	srv, err := newServer(e, st, keys, log.With("province", prov))
	if err != nil {
		st.Close()
		return nil, err
	}
	return &platform{province: prov, store: st, engine: e, server: srv}, nil
}

// stopTemporal stops the in-process server; temporaltest reports a failed
// stop through a testing.T it does not have here, so that panic is contained.
func stopTemporal(ts *temporaltest.TestServer, log *slog.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Warn("stopping Temporal", "err", r)
		}
	}()
	ts.Stop()
}

// runUntilDone runs a background part of dev until ctx ends, logging a failure.
func runUntilDone(ctx context.Context, log *slog.Logger, what string, run func(context.Context) error) {
	if err := run(ctx); err != nil && ctx.Err() == nil {
		log.Error(what+" stopped", "err", err)
	}
}
