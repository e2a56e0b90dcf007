package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The setup the subcommands share: rules, the database, Temporal, logs.

// loadRules reads dir, or the embedded rules when dir is empty.
func loadRules(dir string) (*rules.RuleSet, error) {
	if dir == "" {
		return rules.Load(medsettle.Rules())
	}
	return rules.Load(os.DirFS(dir))
}

// rulesFlag registers --data, the rules directory, read from $MEDSETTLE_RULES
// by the commands that run in production (serve, relay, hub, report).
func rulesFlag(f *flags, p *string, what string) {
	f.String(p, "data", "", what+" (default: embedded)", "MEDSETTLE_RULES")
}

// database is --dsn and, for the commands that run a platform, --migrate.
type database struct {
	dsn     string
	migrate bool
}

func (d *database) flags(f *flags) {
	f.String(&d.dsn, "dsn", "", "PostgreSQL/CockroachDB URL", "MEDSETTLE_DSN", "DATABASE_URL")
}

func (d *database) migrateFlag(f *flags, usage string) { f.Bool(&d.migrate, "migrate", false, usage) }

// open connects to the database and, with --migrate, applies the migrations.
func (d *database) open(ctx context.Context, log *slog.Logger) (*postgres.Store, error) {
	if d.dsn == "" {
		return nil, errors.New("no database: give --dsn or set MEDSETTLE_DSN")
	}
	st, err := postgres.Open(ctx, d.dsn, log)
	if err != nil {
		return nil, err
	}
	if d.migrate {
		if err := postgres.Migrate(ctx, st.Pool()); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// platformConfig is what serve and relay run a province's engine on: the
// database, the rules and the province ("" serves every region).
type platformConfig struct {
	db                database
	dataDir, province string
}

func (p *platformConfig) flags(f *flags, provinceUsage, migrateUsage string) {
	p.db.flags(f)
	rulesFlag(f, &p.dataDir, "rules directory")
	f.String(&p.province, "province", "", provinceUsage, "MEDSETTLE_PROVINCE")
	p.db.migrateFlag(f, migrateUsage)
}

// open loads the rules and opens the store (the caller closes it), and
// returns an engine on them with no hub.
func (p *platformConfig) open(ctx context.Context, log *slog.Logger) (*settlement.Engine, *postgres.Store, error) {
	rs, err := loadRules(p.dataDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := p.db.open(ctx, log)
	if err != nil {
		return nil, nil, err
	}
	return &settlement.Engine{Rules: rs, Store: st, Province: p.province}, st, nil
}

// temporal is --temporal-address and the namespace flag.
type temporal struct{ address, namespace string }

// flags registers the address with its default and help, and the namespace
// as nsFlag (clear calls it --namespace, the servers --temporal-namespace).
func (t *temporal) flags(f *flags, addrDefault, addrUsage, nsFlag string) {
	f.String(&t.address, "temporal-address", addrDefault, addrUsage, "MEDSETTLE_TEMPORAL")
	f.String(&t.namespace, nsFlag, "default", "Temporal namespace", "MEDSETTLE_TEMPORAL_NAMESPACE")
}

func (t *temporal) dial() (client.Client, error) {
	c, err := client.Dial(client.Options{HostPort: t.address, Namespace: t.namespace})
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal: %w", err)
	}
	return c, nil
}

// startWorker dials Temporal and runs a worker of queue with what register
// puts on it; stop stops the worker, then closes the client.
func (t *temporal) startWorker(queue, what string, register func(worker.Registry)) (c client.Client, stop func(), err error) {
	if c, err = t.dial(); err != nil {
		return nil, nil, err
	}
	w := worker.New(c, queue, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("starting the %s worker: %w", what, err)
	}
	return c, func() { w.Stop(); c.Close() }, nil
}

// jsonLog is the logger of the servers (serve, hub, relay): one JSON object a line.
func jsonLog(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// textLog is the logger of the one-shot commands and of dev.
func textLog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// lessGC runs the garbage collector less often than Go's default (GOGC=100)
// unless GOGC is set: dev and load allocate fast with a small live heap, so
// at the default the collector takes about a tenth of their CPU, on a
// machine they share with PostgreSQL and each other. At 400 it takes a
// quarter of that, for a few hundred megabytes more.
func lessGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
