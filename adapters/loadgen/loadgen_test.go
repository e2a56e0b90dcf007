package loadgen_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/loadgen"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// quietLog logs errors only: a load run's refusals are its report's.
func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func TestParseMixAndKeys(t *testing.T) {
	m, err := loadgen.ParseMix("outpatient=5, pharmacy=2,reverse=1")
	require.NoError(t, err)
	require.Equal(t, loadgen.Mix{Outpatient: 5, Pharmacy: 2, Reverse: 1}, m)
	again, err := loadgen.ParseMix(m.String())
	require.NoError(t, err)
	require.Equal(t, m, again)
	for _, bad := range []string{"", "outpatient=0", "surgery=1", "outpatient", "outpatient=-1"} {
		_, err := loadgen.ParseMix(bad)
		require.Error(t, err, bad)
	}

	raw, err := medsettle.DevKeys()
	require.NoError(t, err)
	keys, err := loadgen.ParseKeys(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Len(t, keys, 18, "the institution rows of the dev keys, bureaus skipped")
	for _, k := range keys {
		require.False(t, strings.HasPrefix(k.Institution, "bureau:"))
	}
	_, err = loadgen.ParseKeys(strings.NewReader("bureau:150100,dev-bureau-150100-secret\n"))
	require.Error(t, err)
}

func TestMain(m *testing.M) { pgfixture.Main(m) }

// startServer starts the counter interface on a database of its own, and
// returns it with the dev keys and the registry the load generator needs.
func startServer(t *testing.T) (*postgres.Store, *httptest.Server, *rules.RuleSet, []loadgen.Key, []settlement.Person) {
	t.Helper()
	fx := pgfixture.NewEnv(t, time.Time{})
	st := fx.Store
	rs, keys, persons := devFixture(t)
	_, k, _ := storetest.DevKeys(t)
	srv := httptest.NewServer((&httpapi.Server{Engine: fx.Engine, Keys: k, Log: quietLog()}).Handler())
	t.Cleanup(srv.Close)
	return st, srv, rs, keys, persons
}

// devFixture is what a load run needs: the rules, the dev keys as the
// load generator parses them, and the registry.
func devFixture(t *testing.T) (*rules.RuleSet, []loadgen.Key, []settlement.Person) {
	t.Helper()
	raw, _, _ := storetest.DevKeys(t)
	keys, err := loadgen.ParseKeys(bytes.NewReader(raw))
	require.NoError(t, err)
	return storetest.Rules(t), keys, storetest.Persons(t)
}

// A short run against the real server: every flow completes, nothing is
// refused, and the ledger audits clean afterwards.
func TestRunAgainstServer(t *testing.T) {
	ctx := context.Background()
	st, srv, rs, keys, persons := startServer(t)
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: srv.URL, Keys: keys, Counters: 6, Count: 60,
		Mix:   loadgen.Mix{Outpatient: 4, Inpatient: 2, Pharmacy: 4, Cancel: 1, Reverse: 1},
		Rules: rs, Catalogs: medsettle.Rules(), Persons: persons, Seed: 7})
	require.NoError(t, err)
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	require.Zero(t, rep.Refusals(), out.String())
	require.NotContains(t, out.String(), "unanswered (")
	require.Positive(t, rep.Settlements())
	require.Greater(t, rep.Transactions(), rep.Settlements())

	var settled int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE reverses = ''`).Scan(&settled))
	require.Equal(t, rep.Settlements(), settled, "one settlement per settling message answered")
	audit, err := st.Audit(ctx)
	require.NoError(t, err)
	require.True(t, audit.OK(), "%v", audit.Problems)
}

// An open-loop run at a low rate against the real server: the flows are
// scheduled at the rate whatever the answers' times, so the settlements made
// match the rate times the duration (a closed loop of 8 counters would make
// hundreds), none is dropped, and every one settles once.
func TestRunAtRateAgainstServer(t *testing.T) {
	ctx := context.Background()
	st, srv, rs, keys, persons := startServer(t)
	const rate, dur = 15.0, 2 * time.Second
	began := time.Now()
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: srv.URL, Keys: keys, Counters: 8, Duration: dur, Rate: rate,
		Mix:   loadgen.Mix{Outpatient: 4, Inpatient: 1, Pharmacy: 4, Cancel: 1, Reverse: 1},
		Rules: rs, Catalogs: medsettle.Rules(), Persons: persons, Seed: 11})
	require.NoError(t, err)
	took := time.Since(began)
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	require.Contains(t, out.String(), "rate: target 15/s")

	want := int(rate * dur.Seconds()) // flows at 0, 1/15 s, ... before 2 s
	require.Equal(t, want, rep.Scheduled, "flows scheduled over the duration at the rate")
	require.Zero(t, rep.Dropped, "8 counters keep up with 15 flows/s")
	require.Equal(t, want, rep.Started())
	require.Equal(t, want, rep.Settlements(), "every flow settles once")
	require.Zero(t, rep.Refusals(), out.String())
	// The last flow is scheduled at (want-1)/rate and ends soon after: the
	// run lasts about the duration, neither much shorter (flows run
	// back to back) nor much longer.
	require.GreaterOrEqual(t, took, time.Duration(float64(want-1)/rate*float64(time.Second)))
	require.Less(t, took, dur+3*time.Second)

	var settled int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM settlements WHERE reverses = ''`).Scan(&settled))
	require.Equal(t, rep.Settlements(), settled)
}

// When every counter is busy and the queue is full, scheduled flows are
// dropped, counted, and never started: the rate is not silently lowered.
func TestRunAtRateDropsWhenCountersAreBusy(t *testing.T) {
	// A server that holds every message 300 ms: one counter finishes a
	// flow in over a second, far slower than 50 flows/s.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"infcode":-1,"err_msg":"busy","output":null}`)
	}))
	t.Cleanup(slow.Close)
	rs, keys, persons := devFixture(t)
	rep, err := loadgen.Run(context.Background(), loadgen.Config{URL: slow.URL, Keys: keys, Counters: 2, Duration: time.Second,
		Rate: 50, Mix: loadgen.Mix{Pharmacy: 1, Outpatient: 1}, Rules: rs, Catalogs: medsettle.Rules(), Persons: persons, Seed: 3})
	require.NoError(t, err)
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	require.Equal(t, 50, rep.Scheduled)
	// 2 counters take 2 flows at once and the queue holds 2 more; the
	// first message of each is refused after 300 ms, ending the flow, so
	// about 4 flows start every 300 ms at most.
	require.Equal(t, rep.Scheduled, rep.Started()+rep.Dropped)
	require.Greater(t, rep.Dropped, 25)
	require.Positive(t, rep.Late, "queued flows start behind schedule")
	require.Zero(t, rep.Settlements())
}
