package postgres_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// A settlement updates three rows in place: its visit, the person's counters
// of the year and the person's chain head. Those updates must be HOT (no new
// index entries; migration 0008) even when the rows were inserted densely,
// as they are when visits are registered and persons first settle: an update
// that leaves its page adds an entry to every index of the table, and under
// SERIALIZABLE those entries collide with the index pages concurrent
// settlements have read. (Without 0008, 87-95% of them were HOT here, and
// 300 settlements took 301-313 updates of a table: retries.)
func TestSettlementUpdatesAreHOT(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	rs := storetest.Rules(t)
	persons := syntheticPersons(t, rs, 300)
	byRegion, all := hospitalsByRegion(rs)
	who := make([]*settlement.Person, len(persons))
	for i := range persons {
		who[i] = &persons[i]
	}
	ids := &msgids{}
	r := rand.New(rand.NewPCG(3, 4))

	// round settles one visit for each person with a store of its own, and
	// closes it: a backend reports its table statistics when it exits. It
	// settles one at a time: the room fillfactor leaves holds part of a
	// page's new versions, the rest fit once the old ones are pruned, and a
	// concurrent transaction's snapshot can delay that pruning (under load
	// a few of 300 updates then leave the page), which would make the
	// count depend on timing rather than on the pages.
	round := func(seed bool) {
		st, err := postgres.Open(ctx, dsn, quietLog())
		require.NoError(t, err)
		defer st.Close()
		if seed {
			require.NoError(t, st.SeedPersons(ctx, persons))
		}
		eng := &settlement.Engine{Rules: rs, Store: st, Now: newTickClock().Now}
		require.NoError(t, settleAll(eng, ids, prepareVisits(t, eng, ids, r, who, byRegion, all), 1))
	}
	type updates struct{ all, hot int64 }
	stats := func() map[string]updates {
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
			WHERE relname IN ('visits', 'person_counters', 'chain_heads')`)
		require.NoError(t, err)
		out := map[string]updates{}
		for rows.Next() {
			var name string
			var u updates
			require.NoError(t, rows.Scan(&name, &u.all, &u.hot))
			out[name] = u
		}
		require.NoError(t, rows.Err())
		return out
	}
	// settled waits until the exited backends' statistics show at least n
	// more visit updates than before and have stopped changing.
	settled := func(before map[string]updates, n int64) map[string]updates {
		var last map[string]updates
		require.Eventually(t, func() bool {
			now := stats()
			stable := maps.Equal(now, last)
			last = now
			return stable && now["visits"].all-before["visits"].all >= n
		}, 10*time.Second, 200*time.Millisecond)
		return last
	}

	round(true) // the counters and chain heads are inserted: the persons' first settlements
	before := settled(map[string]updates{}, int64(len(persons)))
	round(false) // every row updated again
	after := settled(before, int64(len(persons)))
	for _, table := range []string{"visits", "person_counters", "chain_heads"} {
		all, hot := after[table].all-before[table].all, after[table].hot-before[table].hot
		require.GreaterOrEqual(t, all, int64(len(persons)), table)
		require.GreaterOrEqual(t, float64(hot)/float64(all), 0.99, "%s: %d of %d updates HOT", table, hot, all)
	}
}
