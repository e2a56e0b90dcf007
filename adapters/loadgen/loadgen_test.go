package loadgen_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/loadgen"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

func TestMain(m *testing.M) { pgfixture.Main(m) }

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func registry(rs *rules.RuleSet) ([]settlement.Person, error) {
	raw, err := medsettle.Persons()
	if err != nil {
		return nil, err
	}
	return settlement.ParsePersons(bytes.NewReader(raw), rs)
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

// A short run against the real server: every flow completes, nothing is
// refused, and the ledger audits clean afterwards.
func TestRunAgainstServer(t *testing.T) {
	dsn := pgtest.NewDB(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn, quietLog())
	require.NoError(t, err)
	t.Cleanup(st.Close)
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	raw, err := medsettle.DevKeys()
	require.NoError(t, err)
	k, err := httpapi.LoadKeys(bytes.NewReader(raw))
	require.NoError(t, err)
	srv := httptest.NewServer((&httpapi.Server{Engine: &settlement.Engine{Rules: rs, Store: st}, Keys: k, Log: quietLog()}).Handler())
	t.Cleanup(srv.Close)

	keys, err := loadgen.ParseKeys(bytes.NewReader(raw))
	require.NoError(t, err)
	persons, err := registry(rs)
	require.NoError(t, err)
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
