// Package hubsim is the national hub (settlement/national) with faults
// injected on demand: delay, drop the request, drop the answer, duplicate
// delivery, failed reversals, so that tests and demonstrations can show both
// sides agree whatever the network does. It implements the same port,
// settlement.Hub, by wrapping a national.Hub: routing and the record of
// every message are the hub's own.
package hubsim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
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

// ParseFault returns the fault named name (Fault's String form).
func ParseFault(name string) (Fault, error) {
	for f := None; f <= Duplicate; f++ {
		if f.String() == name {
			return f, nil
		}
	}
	return None, fmt.Errorf("unknown fault %q (none, drop-request, drop-answer, delay, duplicate)", name)
}

// Sim is the hub with fault injection. Register, Records and Rules are
// the wrapped hub's.
type Sim struct {
	*national.Hub
	// DelayBy is how long a Delay fault holds a delivery (default 2 s).
	DelayBy time.Duration

	mu      sync.Mutex
	faults  []Fault
	failRev int // reversals still to fail with an unknown outcome
	pending sync.WaitGroup
}

// New returns a simulated hub that routes by the rules' region-to-province map.
func New(rs *rules.RuleSet) *Sim { return Wrap(national.New(rs)) }

// Wrap returns hub with fault injection.
func Wrap(hub *national.Hub) *Sim { return &Sim{Hub: hub, DelayBy: 2 * time.Second} }

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

// InjectNamed is Inject with the faults by name (spaces trimmed), then
// FailReverses(failReverses): what the hub's admin endpoint is asked. An
// unknown name injects nothing.
func (s *Sim) InjectNamed(names []string, failReverses int) error {
	fs := make([]Fault, len(names))
	for i, n := range names {
		f, err := ParseFault(strings.TrimSpace(n))
		if err != nil {
			return fmt.Errorf("faults[%d]: %w", i, err)
		}
		fs[i] = f
	}
	s.Inject(fs...)
	if failReverses > 0 {
		s.FailReverses(failReverses)
	}
	return nil
}

// Wait blocks until delayed deliveries have happened.
func (s *Sim) Wait() { s.pending.Wait() }

// For returns the hub as province sees it, faults included.
func (s *Sim) For(province string) settlement.Hub {
	return &endpoint{sim: s, from: province, hub: s.Hub.For(province)}
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

func (s *Sim) failReverse() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := s.failRev > 0
	if fail {
		s.failRev--
	}
	return fail
}

type endpoint struct {
	sim  *Sim
	from string
	hub  settlement.Hub // the national hub's endpoint: what happens without a fault
}

func (e *endpoint) Settle(ctx context.Context, c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	to, peer, err := e.sim.Route(c.InsuredRegion)
	if err != nil {
		return settlement.RemoteAnswer{}, err
	}
	f := e.sim.nextFault(c.Preview)
	rec := national.Record{Kind: "settle", From: e.from, To: to, Msgid: c.Msgid, Fault: f.String()}
	switch f {
	case None:
		return e.hub.Settle(ctx, c)
	case DropRequest:
		rec.Result = "dropped"
		e.sim.Record(rec)
		return settlement.RemoteAnswer{}, fmt.Errorf("hub: request %s dropped: %w", c.Msgid, settlement.ErrUnknownOutcome)
	case DropAnswer:
		_, err := peer.SettleForHub(context.WithoutCancel(ctx), c)
		rec.Result = "answer dropped after " + national.Outcome(err)
		e.sim.Record(rec)
		return settlement.RemoteAnswer{}, fmt.Errorf("hub: answer to %s lost: %w", c.Msgid, settlement.ErrUnknownOutcome)
	case Delay:
		return e.delay(ctx, peer, c, rec)
	default: // Duplicate
		first, err1 := peer.SettleForHub(ctx, c)
		a, err := peer.SettleForHub(ctx, c)
		rec.Result = "delivered twice: " + national.Outcome(err1) + ", " + national.Outcome(err)
		e.sim.Record(rec)
		if err == nil && first.SetlID != a.SetlID {
			return a, fmt.Errorf("hub: duplicate delivery of %s settled twice (%s, %s)", c.Msgid, first.SetlID, a.SetlID)
		}
		return a, err
	}
}

// delay delivers c after DelayBy, while the caller is told, after half of
// it or at its deadline, that the outcome is unknown.
func (e *endpoint) delay(ctx context.Context, peer settlement.HubPeer, c settlement.RemoteClaim, rec national.Record) (settlement.RemoteAnswer, error) {
	e.sim.pending.Add(1)
	go func() {
		defer e.sim.pending.Done()
		time.Sleep(e.sim.DelayBy)
		_, err := peer.SettleForHub(context.Background(), c)
		r := rec
		r.Result = "delivered late: " + national.Outcome(err)
		e.sim.Record(r)
	}()
	select {
	case <-ctx.Done():
	case <-time.After(e.sim.DelayBy / 2):
	}
	rec.Result = "timed out"
	e.sim.Record(rec)
	return settlement.RemoteAnswer{}, fmt.Errorf("hub: %s timed out: %w", c.Msgid, settlement.ErrUnknownOutcome)
}

func (e *endpoint) Reverse(ctx context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	to, _, err := e.sim.Route(r.InsuredRegion)
	if err != nil {
		return settlement.RemoteReverseAnswer{}, err
	}
	if e.sim.failReverse() {
		e.sim.Record(national.Record{Kind: "reverse", From: e.from, To: to, Msgid: r.Msgid, Result: "dropped"})
		return settlement.RemoteReverseAnswer{}, fmt.Errorf("hub: reversal %s dropped: %w", r.Msgid, settlement.ErrUnknownOutcome)
	}
	return e.hub.Reverse(ctx, r)
}
