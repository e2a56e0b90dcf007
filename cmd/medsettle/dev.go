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
	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/localpg"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
	"github.com/medsettle/medsettle/workflows"
)

func init() {
	register("dev", "run three provinces, the hub and Temporal on this machine: a throwaway PostgreSQL, seeded, dev keys, :8080", runDev)
}

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

func runDev(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the counter interface for every province (routed by fixmedins_code)")
	firstPort := fs.Int("province-port", 8081, "the provinces also listen on this port and the next two (150000, 420000, 230000)")
	dataDir := fs.String("data-dir", "", "keep the databases in this directory across runs (default: a temporary one, removed on exit)")
	pgPort := fs.Int("pg-port", 0, "PostgreSQL port (default: a free one)")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the in-process Kafka broker (kfake), for standard Kafka tools")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address, e.g. 127.0.0.1:6060 (default: off)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	lessGC()
	log := textLog(stderr)
	stopPprof, err := startPprof(*pprofAddr, log)
	if err != nil {
		fmt.Fprintln(stderr, "medsettle dev:", err)
		return 1
	}
	defer stopPprof()
	if err := dev(ctx, log, stdout, *listen, *firstPort, *dataDir, *pgPort, *kafkaPort); err != nil {
		fmt.Fprintln(stderr, "medsettle dev:", err)
		return 1
	}
	return 0
}

func dev(ctx context.Context, log *slog.Logger, stdout io.Writer, listen string, firstPort int, dataDir string, pgPort, kafkaPort int) error {
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
	cluster, err := localpg.StartWith(start, localpg.Options{Dir: dataDir, Durable: dataDir != "", Port: pgPort})
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
	peers := map[string]workflows.ClearingPeer{}
	for i, prov := range devProvinces {
		p, err := startPlatform(start, log, cluster, rs, prov, keys, hub, tc)
		if err != nil {
			return fmt.Errorf("province %s: %w", prov, err)
		}
		defer p.store.Close()
		p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(firstPort+i))
		platforms = append(platforms, p)
		peers[prov] = p.engine
		w := ts.NewWorker(workflows.TaskQueue(prov), func(r worker.Registry) {
			workflows.Register(r, &workflows.Activities{Hub: hub.For(prov)})
		})
		_ = w
	}
	// Events: an in-process Kafka broker; each province's outbox relay
	// publishes its settlements there, each province's supervision monitor
	// reads every province's, and manual claims on medsettle.claims are
	// settled by Inner Mongolia's platform (in production each province runs
	// `medsettle relay` on its own claims topic).
	brokers, stopKafka, err := kafka.StartDevBroker(ctx, kafkaPort)
	if err != nil {
		return err
	}
	defer stopKafka()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	for _, p := range platforms {
		relay, err := kafka.NewRelay(p.store, opts, kafka.RelayConfig{Owner: "dev-" + p.province, Log: log.With("province", p.province)})
		if err != nil {
			return err
		}
		defer relay.Close()
		go runUntilDone(ctx, log, "relay "+p.province, relay.Run)
		alerts := postgres.NewAlertStore(p.store)
		p.server.Alerts = alerts
		mon := &kafka.MonitorConsumer{Brokers: brokers, Group: kafka.MonitorGroup + "-" + p.province, Store: alerts,
			Log: log.With("province", p.province)}
		go runUntilDone(ctx, log, "monitor "+p.province, mon.Run)
	}
	intake, err := kafka.NewIntake(platforms[0].engine, opts, kafka.IntakeConfig{Log: log.With("province", platforms[0].province)})
	if err != nil {
		return err
	}
	defer intake.Close()
	go runUntilDone(ctx, log, "intake", intake.Run)

	ts.NewWorker(workflows.HubTaskQueue, func(r worker.Registry) {
		workflows.RegisterHub(r, &workflows.ClearingActivities{Peers: peers})
	})

	router := &httpapi.ProvinceRouter{Rules: rs, Provinces: map[string]http.Handler{}}
	errc := make(chan error, len(platforms)+1)
	var servers []*http.Server
	for _, p := range platforms {
		h := p.server.Handler()
		// console: the province's bureau console at /console/ (adapters/console; see withConsole in report.go)
		if h, err = withConsole(ctx, h, p.store, p.engine, p.server.Keys, p.province, false, log.With("province", p.province)); err != nil {
			return err
		}
		router.Provinces[p.province] = h
		if router.Default == nil {
			router.Default = h // health and metrics of the first platform
		}
		servers = append(servers, serveOn(p.addr, h, log, errc))
	}
	servers = append(servers, serveOn(listen, router, log, errc))

	fmt.Fprintf(stdout, "medsettle dev: %d provinces on one PostgreSQL (%s, data in %s), 120 persons each, %d institutions, dev keys of testdata/dev-keys.csv\n",
		len(platforms), cluster.DSN("postgres"), cluster.Dir, len(rs.Institutions))
	for _, p := range platforms {
		fmt.Fprintf(stdout, "  province %s: http://%s%s  database %s\n", p.province, p.addr, httpapi.Path, cluster.DSN(dbName(p.province)))
	}
	fmt.Fprintf(stdout, "  Temporal: %s namespace %s (monthly clearing: medsettle clear --temporal-address %s --namespace %s --period YYYY-MM)\n",
		ts.GetFrontendHostPort(), ts.GetDefaultNamespace(), ts.GetFrontendHostPort(), ts.GetDefaultNamespace())
	fmt.Fprintf(stdout, "  Kafka (in-process, kfake): %s topics %s, %s, %s\n", strings.Join(brokers, ","),
		kafka.TopicSettlements, kafka.TopicClaims, kafka.MonitorAlertsTopic)
	fmt.Fprintf(stdout, "medsettle listening on http://%s%s (every province, routed by fixmedins_code)\n", listen, httpapi.Path)
	fmt.Fprintf(stdout, "  bureau console: http://%s/console/ (province %s; each province's on its own port) with a bureau key of testdata/dev-keys.csv\n", listen, platforms[0].province) // console

	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight")
	shutdown, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	for _, s := range servers {
		if serr := s.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			log.Error("shutdown", "err", serr)
		}
	}
	return err
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

func serveOn(addr string, h http.Handler, log *slog.Logger, errc chan<- error) *http.Server {
	hs := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("listening on %s: %w", addr, err)
		}
	}()
	return hs
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
