// Package national is the national cross-region hub (国家平台) between
// province deployments: it routes each request to the insured person's
// province and keeps its own record of every message. adapters/hubhttp puts
// it on the network; adapters/hubsim wraps it to inject faults in tests and
// demonstrations.
package national

import (
	"context"
	"sync"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Record is one message as the hub saw it.
type Record struct {
	At    time.Time
	Kind  string // settle, reverse
	From  string // sending province
	To    string // receiving province
	Msgid string
	// Fault names what a fault-injecting wrapper did to the message
	// (adapters/hubsim: drop-request, ...); empty when nothing.
	Fault  string
	Result string // ok, refused: ..., dropped, unknown
}

// Hub routes between the provinces registered with it.
type Hub struct {
	Rules *rules.RuleSet

	mu      sync.Mutex
	peers   map[string]settlement.HubPeer
	records []Record
}

// New returns a hub that routes by the rules' region-to-province map.
func New(rs *rules.RuleSet) *Hub {
	return &Hub{Rules: rs, peers: map[string]settlement.HubPeer{}}
}

// Register connects a province's deployment.
func (h *Hub) Register(province string, peer settlement.HubPeer) {
	h.mu.Lock()
	h.peers[province] = peer
	h.mu.Unlock()
}

// Records returns a copy of the hub's message record.
func (h *Hub) Records() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Record(nil), h.records...)
}

// Route returns the province of region and its deployment; ENOTFOUND when
// that province is not connected.
func (h *Hub) Route(region string) (string, settlement.HubPeer, error) {
	prov := h.Rules.Province(region)
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peers[prov]
	if p == nil {
		return prov, nil, settlement.Errorf(settlement.ENOTFOUND, "hub: no platform of province %q (region %s) is connected", prov, region)
	}
	return prov, p, nil
}

// Record adds r, stamped now, to the hub's record.
func (h *Hub) Record(r Record) {
	h.mu.Lock()
	r.At = time.Now()
	h.records = append(h.records, r)
	h.mu.Unlock()
}

// Outcome is how the record states the result of a delivery.
func Outcome(err error) string {
	if err != nil {
		return "refused: " + err.Error()
	}
	return "ok"
}

// For returns the hub as province sees it.
func (h *Hub) For(province string) settlement.Hub { return &endpoint{hub: h, from: province} }

type endpoint struct {
	hub  *Hub
	from string
}

func (e *endpoint) Settle(ctx context.Context, c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	return forward(e, "settle", c.InsuredRegion, c.Msgid, func(p settlement.HubPeer) (settlement.RemoteAnswer, error) {
		return p.SettleForHub(ctx, c)
	})
}

func (e *endpoint) Reverse(ctx context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	return forward(e, "reverse", r.InsuredRegion, r.Msgid, func(p settlement.HubPeer) (settlement.RemoteReverseAnswer, error) {
		return p.ReverseForHub(ctx, r)
	})
}

// forward sends a message to the insured region's province and records it
// (a message that cannot be routed is refused, unrecorded).
func forward[A any](e *endpoint, kind, insuredRegion, msgid string, send func(settlement.HubPeer) (A, error)) (A, error) {
	to, peer, err := e.hub.Route(insuredRegion)
	if err != nil {
		var zero A
		return zero, err
	}
	a, err := send(peer)
	e.hub.Record(Record{Kind: kind, From: e.from, To: to, Msgid: msgid, Result: Outcome(err)})
	return a, err
}
