// Package hubsim simulates the national cross-region hub (国家平台) between
// province deployments: it routes each request to the insured person's
// province, keeps its own record of every message, and injects faults on
// demand (delay, drop the request, drop the answer, duplicate delivery) so
// that tests can show both sides agree whatever the network does.
package hubsim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Fault is what happens to the next settle requests.
type Fault int

const (
	None        Fault = iota
	DropRequest       // the request never reaches the insured side
	DropAnswer        // the insured side acts, the answer is lost
	Delay             // delivery waits past the caller's deadline, then happens
	Duplicate         // the request is delivered twice
)

func (f Fault) String() string {
	return [...]string{"none", "drop-request", "drop-answer", "delay", "duplicate"}[f]
}

// Record is one message as the hub saw it.
type Record struct {
	At     time.Time
	Kind   string // settle, reverse
	From   string // sending province
	To     string // receiving province
	Msgid  string
	Fault  Fault
	Result string // ok, refused: ..., dropped, unknown
}

// Sim is an in-process hub.
type Sim struct {
	Rules *rules.RuleSet
	// DelayBy is how long a Delay fault holds a delivery (default 2 s).
	DelayBy time.Duration

	mu      sync.Mutex
	peers   map[string]settlement.HubPeer
	faults  []Fault
	failRev int // reversals still to fail with an unknown outcome
	records []Record
	pending sync.WaitGroup
}

// New returns a hub that routes by the rules' region-to-province map.
func New(rs *rules.RuleSet) *Sim {
	return &Sim{Rules: rs, peers: map[string]settlement.HubPeer{}, DelayBy: 2 * time.Second}
}

// Register connects a province's deployment.
func (s *Sim) Register(province string, peer settlement.HubPeer) {
	s.mu.Lock()
	s.peers[province] = peer
	s.mu.Unlock()
}

// Inject makes the next len(faults) settle requests suffer the given faults, in order.
func (s *Sim) Inject(faults ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, faults...)
	s.mu.Unlock()
}

// FailReverses makes the next n reversals fail with an unknown outcome, as
// an unreachable insured province would.
func (s *Sim) FailReverses(n int) {
	s.mu.Lock()
	s.failRev += n
	s.mu.Unlock()
}

// Records returns a copy of the hub's message record.
func (s *Sim) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records...)
}

// Wait blocks until delayed deliveries have happened.
func (s *Sim) Wait() { s.pending.Wait() }

// For returns the hub as province sees it.
func (s *Sim) For(province string) settlement.Hub { return &endpoint{sim: s, from: province} }

func (s *Sim) route(region string) (string, settlement.HubPeer, error) {
	prov := s.Rules.Province(region)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[prov]
	if p == nil {
		return prov, nil, settlement.Errorf(settlement.ENOTFOUND, "hub: no platform of province %q (region %s) is connected", prov, region)
	}
	return prov, p, nil
}

func (s *Sim) nextFault(preview bool) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if preview || len(s.faults) == 0 {
		return None
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

func (s *Sim) record(r Record) {
	s.mu.Lock()
	r.At = time.Now()
	s.records = append(s.records, r)
	s.mu.Unlock()
}

type endpoint struct {
	sim  *Sim
	from string
}

func outcome(err error) string {
	if err != nil {
		return "refused: " + err.Error()
	}
	return "ok"
}

func (e *endpoint) Settle(ctx context.Context, c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	to, peer, err := e.sim.route(c.InsuredRegion)
	if err != nil {
		return settlement.RemoteAnswer{}, err
	}
	f := e.sim.nextFault(c.Preview)
	rec := Record{Kind: "settle", From: e.from, To: to, Msgid: c.Msgid, Fault: f}
	switch f {
	case DropRequest:
		rec.Result = "dropped"
		e.sim.record(rec)
		return settlement.RemoteAnswer{}, fmt.Errorf("hub: request %s dropped: %w", c.Msgid, settlement.ErrUnknownOutcome)
	case DropAnswer:
		_, err := peer.SettleForHub(context.WithoutCancel(ctx), c)
		rec.Result = "answer dropped after " + outcome(err)
		e.sim.record(rec)
		return settlement.RemoteAnswer{}, fmt.Errorf("hub: answer to %s lost: %w", c.Msgid, settlement.ErrUnknownOutcome)
	case Delay:
		e.sim.pending.Add(1)
		go func() {
			defer e.sim.pending.Done()
			time.Sleep(e.sim.DelayBy)
			_, err := peer.SettleForHub(context.Background(), c)
			r := rec
			r.Result = "delivered late: " + outcome(err)
			e.sim.record(r)
		}()
		select {
		case <-ctx.Done():
		case <-time.After(e.sim.DelayBy / 2):
		}
		rec.Result = "timed out"
		e.sim.record(rec)
		return settlement.RemoteAnswer{}, fmt.Errorf("hub: %s timed out: %w", c.Msgid, settlement.ErrUnknownOutcome)
	case Duplicate:
		first, err1 := peer.SettleForHub(ctx, c)
		a, err := peer.SettleForHub(ctx, c)
		rec.Result = "delivered twice: " + outcome(err1) + ", " + outcome(err)
		e.sim.record(rec)
		if err == nil && first.SetlID != a.SetlID {
			return a, fmt.Errorf("hub: duplicate delivery of %s settled twice (%s, %s)", c.Msgid, first.SetlID, a.SetlID)
		}
		return a, err
	}
	a, err := peer.SettleForHub(ctx, c)
	rec.Result = outcome(err)
	e.sim.record(rec)
	return a, err
}

func (e *endpoint) Reverse(ctx context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	to, peer, err := e.sim.route(r.InsuredRegion)
	if err != nil {
		return settlement.RemoteReverseAnswer{}, err
	}
	e.sim.mu.Lock()
	fail := e.sim.failRev > 0
	if fail {
		e.sim.failRev--
	}
	e.sim.mu.Unlock()
	if fail {
		e.sim.record(Record{Kind: "reverse", From: e.from, To: to, Msgid: r.Msgid, Result: "dropped"})
		return settlement.RemoteReverseAnswer{}, fmt.Errorf("hub: reversal %s dropped: %w", r.Msgid, settlement.ErrUnknownOutcome)
	}
	a, err := peer.ReverseForHub(ctx, r)
	e.sim.record(Record{Kind: "reverse", From: e.from, To: to, Msgid: r.Msgid, Result: outcome(err)})
	return a, err
}
