package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/settlement"
)

// sale settles a pharmacy sale for psn and returns its setl_id.
func (e *env) sale(t *testing.T, psn, amount string) string {
	t.Helper()
	in := settlement.PharmacyInput{PsnNo: psn, Lines: []settlement.LineInput{line("1", "XA10BAG046A001010100111", "1", amount, amount)}}
	a, err := e.engine.PharmacySettle(context.Background(), pgfixture.Msg(hohhotPharmacy, "2102"), in)
	require.NoError(t, err)
	return a.SetlID
}

func TestOutboxPendingInCommitOrderAndMarkedUnderLease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s1 := e.sale(t, hohhotEmployee, "10.00")
	e.sale(t, hohhotEmployee, "20.00")
	_, err := e.engine.Cancel(ctx, pgfixture.Msg(hohhotPharmacy, "2103"), settlement.CancelInput{SetlID: s1})
	require.NoError(t, err)

	part := settlement.OutboxPart(hohhotEmployee)
	evs, err := e.store.PendingOutbox(ctx, part, 100)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	for i, ev := range evs {
		require.Equal(t, settlement.ChainOf(hohhotEmployee), ev.Chain)
		require.Equal(t, int64(i+1), ev.Seq, "a person's events in commit order")
		require.Equal(t, hohhotEmployee, ev.Key)
		require.Equal(t, part, ev.Part)
	}
	require.Equal(t, []string{settlement.EventSettled, settlement.EventSettled, settlement.EventCancelled},
		[]string{evs[0].Type, evs[1].Type, evs[2].Type})
	limited, err := e.store.PendingOutbox(ctx, part, 2)
	require.NoError(t, err)
	require.Equal(t, evs[:2], limited)

	// No lease: nothing is marked.
	_, err = e.store.MarkOutboxPublished(ctx, "relay-a", part, []settlement.OutboxRef{evs[0].Ref()})
	require.ErrorIs(t, err, settlement.ErrLeaseLost)

	parts, err := e.store.LeaseOutbox(ctx, "relay-a", time.Minute)
	require.NoError(t, err)
	require.Len(t, parts, settlement.OutboxParts, "a lone relay holds every partition")
	n, err := e.store.MarkOutboxPublished(ctx, "relay-a", part, []settlement.OutboxRef{evs[0].Ref(), evs[1].Ref()})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = e.store.MarkOutboxPublished(ctx, "relay-a", part, []settlement.OutboxRef{evs[1].Ref()})
	require.NoError(t, err)
	require.Zero(t, n, "marking twice changes nothing")
	rest, err := e.store.PendingOutbox(ctx, part, 100)
	require.NoError(t, err)
	require.Equal(t, evs[2:], rest, "the relay resumes right after the last mark")
	backlog, err := e.store.OutboxBacklog(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, backlog)
}

func TestOutboxLeasesAreSharedAndTakenOverOnExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.store.LeaseOutbox(ctx, "relay-a", 2*time.Second)
	require.NoError(t, err)
	require.Len(t, a, 16)

	// B arrives: everything is taken until A gives up its surplus.
	b, err := e.store.LeaseOutbox(ctx, "relay-b", time.Minute)
	require.NoError(t, err)
	require.Empty(t, b)
	a, err = e.store.LeaseOutbox(ctx, "relay-a", 2*time.Second)
	require.NoError(t, err)
	require.Len(t, a, 8, "fair share of two relays")
	b, err = e.store.LeaseOutbox(ctx, "relay-b", time.Minute)
	require.NoError(t, err)
	require.Len(t, b, 8)
	require.Empty(t, intersect(a, b), "no partition has two owners")

	// A stops renewing: when its lease and heartbeat expire, B takes all.
	time.Sleep(2200 * time.Millisecond)
	b, err = e.store.LeaseOutbox(ctx, "relay-b", time.Minute)
	require.NoError(t, err)
	require.Len(t, b, 16)
	_, err = e.store.MarkOutboxPublished(ctx, "relay-a", a[0], []settlement.OutboxRef{{Chain: "psn:nobody", Seq: 1}})
	require.True(t, errors.Is(err, settlement.ErrLeaseLost), "a late mark of a lost partition is refused: %v", err)
	a, err = e.store.LeaseOutbox(ctx, "relay-a", time.Minute)
	require.NoError(t, err)
	require.Empty(t, a, "B's leases are unexpired")

	// B stops cleanly: A gets everything at once.
	require.NoError(t, e.store.ReleaseOutbox(ctx, "relay-b"))
	a, err = e.store.LeaseOutbox(ctx, "relay-a", time.Minute)
	require.NoError(t, err)
	require.Len(t, a, 16)
	leases, err := e.store.OutboxLeases(ctx)
	require.NoError(t, err)
	require.Len(t, leases, 16)
	for _, l := range leases {
		require.Equal(t, "relay-a", l.Owner)
		require.True(t, l.Live)
	}
}

func TestOutboxLeasesUnderConcurrentRelays(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owners := []string{"r1", "r2", "r3"}
	held := make([][]int, len(owners))
	for round := 0; round < 6; round++ {
		errc := make(chan error, len(owners))
		for i, o := range owners {
			go func() {
				p, err := e.store.LeaseOutbox(ctx, o, time.Minute)
				held[i] = p
				errc <- err
			}()
		}
		for range owners {
			require.NoError(t, <-errc)
		}
		all := slices.Concat(held...)
		slices.Sort(all)
		require.Equal(t, len(all), len(slices.Compact(slices.Clone(all))), "round %d: a partition with two owners: %v", round, held)
	}
	// Settled: every partition held, at most ceil(16/3) each.
	total := 0
	for _, h := range held {
		require.LessOrEqual(t, len(h), 6)
		total += len(h)
	}
	require.Equal(t, 16, total)
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Migration 0009 turns the outbox into a queue: the events not yet
// published move to outbox_events, the published ones go with the old
// table. Run again (as after a crash between its DROP and its record in
// schema_migrations), it succeeds and changes nothing.
func TestMigrationToOutboxQueueKeepsUnpublishedEvents(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	// The outbox as 0001 and 0002 made it, with one published and two
	// unpublished events.
	for _, sql := range []string{
		`DROP TABLE outbox_events`,
		`CREATE TABLE outbox (chain TEXT NOT NULL, seq BIGINT NOT NULL, part INT NOT NULL,
			event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, event_key TEXT NOT NULL,
			payload TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, published_at TIMESTAMPTZ,
			PRIMARY KEY (chain, seq))`,
		`CREATE INDEX outbox_pending ON outbox (part, chain, seq) WHERE published_at IS NULL`,
		`INSERT INTO outbox VALUES
			('psn:a', 1, 3, 'E-1', 'settlement.settled', 'a', '{"n":1}', now(), now()),
			('psn:a', 2, 3, 'E-2', 'settlement.cancelled', 'a', '{"n":2}', now(), NULL),
			('psn:b', 1, 7, 'E-3', 'settlement.settled', 'b', '{"n":3}', now(), NULL)`,
	} {
		_, err := pool.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	events := func() []string {
		rows, err := pool.Query(ctx, `SELECT part, chain, seq, event_id, event_type, event_key, payload FROM outbox_events ORDER BY part, chain, seq`)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var part int
			var seq int64
			var chain, id, typ, key, payload string
			err := r.Scan(&part, &chain, &seq, &id, &typ, &key, &payload)
			return fmt.Sprintf("%d %s %d %s %s %s %s", part, chain, seq, id, typ, key, payload), err
		})
		require.NoError(t, err)
		return out
	}
	want := []string{
		`3 psn:a 2 E-2 settlement.cancelled a {"n":2}`,
		`7 psn:b 1 E-3 settlement.settled b {"n":3}`,
	}
	for range 2 {
		_, err = pool.Exec(ctx, `DELETE FROM schema_migrations WHERE version = '0009_outbox_queue'`)
		require.NoError(t, err)
		require.NoError(t, postgres.Migrate(ctx, pool))
		require.Equal(t, want, events())
		var old *string
		require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('outbox')::TEXT`).Scan(&old))
		require.Nil(t, old, "the old outbox is dropped")
	}
}
