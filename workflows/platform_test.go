package workflows_test

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// platform is provinces on a real Temporal server (in process): each has its
// own database and engine, and a hub joins them.
type platform struct {
	rules     *rules.RuleSet
	server    *temporaltest.TestServer
	client    client.Client
	provinces []string // in the order opened
	stores    map[string]*postgres.Store
	engines   map[string]*settlement.Engine
}

// crossHub is what both the national hub and the fault-injecting simulator
// around it offer the provinces.
type crossHub interface {
	For(province string) settlement.Hub
	Register(province string, peer settlement.HubPeer)
}

// newPlatform loads the rules and starts a Temporal server; open adds the
// provinces, on a hub made with the rules.
func newPlatform(t *testing.T) *platform {
	t.Helper()
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	return &platform{rules: rs, server: ts, client: ts.GetDefaultClient(),
		stores: map[string]*postgres.Store{}, engines: map[string]*settlement.Engine{}}
}

// open gives each province a fresh database and an engine on hub at now's
// time, whose remote reversals go to the Reverser that reverser makes for it.
func (p *platform) open(t *testing.T, hub crossHub, now func() time.Time,
	reverser func(e *settlement.Engine) settlement.Reverser, provinces ...string) {
	t.Helper()
	for _, prov := range provinces {
		st := pgfixture.Store(t)
		e := &settlement.Engine{Rules: p.rules, Store: st, Province: prov, Hub: hub.For(prov), Now: now}
		e.Reverser = reverser(e)
		hub.Register(prov, e)
		p.provinces = append(p.provinces, prov)
		p.stores[prov], p.engines[prov] = st, e
	}
}

// pairs yields every ordered pair of two different provinces.
func (p *platform) pairs() iter.Seq2[string, string] {
	return func(yield func(a, b string) bool) {
		for _, a := range p.provinces {
			for _, b := range p.provinces {
				if a != b && !yield(a, b) {
					return
				}
			}
		}
	}
}

// audited checks that every province's audit is clean.
func (p *platform) audited(t *testing.T, ctx context.Context) {
	t.Helper()
	for prov, st := range p.stores {
		rep, err := st.Audit(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%s: %v", prov, rep.Problems)
	}
}
