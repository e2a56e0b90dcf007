// Package postgres stores the settlement engine's data in PostgreSQL or
// CockroachDB over pgx, in the SQL the two share.
//
// Every transaction runs SERIALIZABLE and is retried whole: crdb.ExecuteCtx
// around a transaction from BEGIN to COMMIT, so a serialization failure at
// any statement, the COMMIT included, starts the transaction again from
// BEGIN. (crdb.ExecuteTx's savepoint protocol is CockroachDB-only: on
// PostgreSQL its retries reuse the failed snapshot and never succeed.) Tools
// run pgx.BeginTxFunc; the engine's transactions (Update, View) pipeline
// BEGIN with their first statements and COMMIT with their last writes, as
// pgjdbc does, and check COMMIT's outcome themselves (see pipelined).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/medsettle/medsettle/settlement"
)

//go:embed migrations/*.sql
var migrations embed.FS

// The engine's ports this package implements (the outbox's and the
// bureau's are asserted next to their code).
var (
	_ settlement.Store         = (*Store)(nil)
	_ settlement.Tx            = (*tx)(nil)
	_ settlement.ClearingStore = (*tx)(nil)
	_ settlement.Prefetcher    = (*tx)(nil)
)

// Store implements settlement.Store.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	prep *prepared

	retries atomic.Int64 // transactions attempted again after a retryable failure
	commits atomic.Int64
}

// Open connects to dsn (a postgres:// URL or key=value DSN). The pool size
// comes from the DSN's pool_max_conns when given.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing DSN: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// A few connections per core: more only queue inside the database,
		// where under SERIALIZABLE they also abort each other more often.
		cfg.MaxConns = int32(4 * runtime.GOMAXPROCS(0))
	}
	prep := &prepared{}
	cfg.BeforeClose = prep.forget
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Store{pool: pool, log: log, prep: prep}, nil
}

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// Pool is the connection pool, for tools (audit, seeding) that read directly.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Stats are counters for /metrics and benchmarks.
type Stats struct {
	Commits int64 // transactions committed
	Retries int64 // attempts that hit a serialization failure or deadlock and ran again
}

// Stats returns the counters since Open.
func (s *Store) Stats() Stats { return Stats{Commits: s.commits.Load(), Retries: s.retries.Load()} }

// Migrate applies the embedded migrations not yet applied, in order. Each
// file is a list of idempotent statements, run one by one outside a
// transaction (CockroachDB does not mix schema changes and writes in one).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
		for i, stmt := range splitStatements(string(body)) {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate %s statement %d: %w", version, i+1, err)
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now()) ON CONFLICT (version) DO NOTHING`, version); err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
	}
	return nil
}

// splitStatements splits a migration on semicolons at line ends, dropping comments.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// retryable marks a PostgreSQL deadlock (40P01) as retryable for crdb.ExecuteCtx,
// which retries only 40001: both mean "this attempt lost, run it again".
type retryable struct{ err error }

func (r retryable) Error() string    { return r.err.Error() }
func (r retryable) Unwrap() error    { return r.err }
func (r retryable) SQLState() string { return "40001" }

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// maxAttempts bounds retries of one transaction; contention that outlasts it
// is reported, not hidden.
const maxAttempts = 100

// Update implements settlement.Store.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	return s.run(ctx, pgx.ReadWrite, fn)
}

// View implements settlement.Store.
func (s *Store) View(ctx context.Context, fn func(ctx context.Context, tx settlement.Tx) error) error {
	return s.run(ctx, pgx.ReadOnly, fn)
}

func (s *Store) run(ctx context.Context, mode pgx.TxAccessMode, fn func(ctx context.Context, tx settlement.Tx) error) error {
	begin := "BEGIN ISOLATION LEVEL SERIALIZABLE"
	if mode == pgx.ReadOnly {
		begin += " READ ONLY"
	}
	return s.retry(ctx, mode == pgx.ReadOnly, func(ctx context.Context) error {
		return s.pipelined(ctx, begin, fn)
	})
}

// pipelined runs fn in one transaction on a pooled connection, saving two
// round trips of pgx.BeginTxFunc's four for a typical settlement: BEGIN is
// queued rather than sent, so it travels with fn's first statements (a
// settlement's msgid claim and its reads), and COMMIT travels with fn's
// queued writes. COMMIT's outcome is checked as pgx's does it: an error
// fails the attempt (and a serialization failure retries it), and a COMMIT
// answered ROLLBACK (the transaction had failed) is an error, never a
// success. Any failure rolls back; a connection left inside a transaction
// is destroyed by the pool rather than reused.
func (s *Store) pipelined(ctx context.Context, begin string, fn func(ctx context.Context, tx settlement.Tx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: acquiring a connection: %w", err)
	}
	defer conn.Release()
	t := &tx{tx: conn.Conn(), prepare: func(ctx context.Context, b *pgx.Batch) error {
		return s.prep.prepare(ctx, conn.Conn(), b)
	}}
	t.queue(wrapErr("beginning a transaction"), begin)
	err = fn(ctx, t)
	if err == nil {
		if len(t.results) == 1 && !t.begun {
			return nil // fn sent nothing: there is no transaction to end
		}
		t.queue(func(tag pgconn.CommandTag, err error) error {
			if err == nil && tag.String() != "COMMIT" {
				err = pgx.ErrTxCommitRollback
			}
			if err != nil {
				return fmt.Errorf("committing: %w", err)
			}
			return nil
		}, "COMMIT")
		if err = t.flush(ctx); err == nil {
			return nil
		}
	}
	if code := sqlState(err); code == "0A000" || code == "26000" {
		// A statement prepared by name went stale (its table changed shape)
		// or missing: prepare afresh on the next use.
		defer s.prep.reset(context.WithoutCancel(ctx), conn.Conn())
	}
	return t.abort(ctx, conn, err)
}

// abort rolls back what t began and returns err.
func (t *tx) abort(ctx context.Context, conn *pgxpool.Conn, err error) error {
	if t.begun && conn.Conn().PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(rctx, "ROLLBACK") // when this fails too, Release destroys the connection
	}
	return err
}

// txn runs fn in one pgx transaction, retried whole as retry does.
func (s *Store) txn(ctx context.Context, opts pgx.TxOptions, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return s.retry(ctx, opts.AccessMode == pgx.ReadOnly, func(ctx context.Context) error {
		return pgx.BeginTxFunc(ctx, s.pool, opts, func(ptx pgx.Tx) error { return fn(ctx, ptx) })
	})
}

// retry runs one transaction attempt after another until one commits, on a
// serialization failure or deadlock (40001, and 40P01 mapped to it), with
// jittered backoff: every transaction of the store goes through here.
func (s *Store) retry(ctx context.Context, readOnly bool, attemptFn func(ctx context.Context) error) error {
	attempt := 0
	err := crdb.ExecuteCtx(crdb.WithMaxRetries(ctx, maxAttempts), func(ctx context.Context, _ ...any) error {
		if attempt > 0 {
			s.retries.Add(1)
			d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		attempt++
		err := attemptFn(ctx)
		if sqlState(err) == "40P01" {
			return retryable{err}
		}
		return err
	})
	if err == nil && !readOnly {
		s.commits.Add(1)
	}
	var mre *crdb.MaxRetriesExceededError
	if errors.As(err, &mre) {
		s.log.Error("transaction gave up after retries", "attempts", attempt, "err", err)
	}
	return err
}
