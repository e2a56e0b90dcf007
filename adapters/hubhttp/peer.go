package hubhttp

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/medsettle/medsettle/settlement"
)

// PeerHandler is what a province serves to the hub: POST
// /hub-peer/v1/settle and /hub-peer/v1/reverse, the insured side of
// cross-province settlements (peer is the province's *settlement.Engine).
// Requests must carry `Authorization: Bearer <hubToken>`, the hub's token at
// this province; with an empty hubToken every request is refused. Mount it
// at PeerPrefix next to the counter interface.
//
// Refusals of the engine are 200 {"error":...}; a failure that is not a
// refusal (the database) is 500, an unknown outcome to the hub, because the
// transaction may have committed before the failure was seen.
func PeerHandler(peer settlement.HubPeer, hubToken string) http.Handler {
	return PeerHandlerWithLog(peer, hubToken, nil)
}

// PeerHandlerWithLog is PeerHandler logging failures to log (nil: slog.Default()).
func PeerHandlerWithLog(peer settlement.HubPeer, hubToken string, log *slog.Logger) http.Handler {
	h := &peerHandler{peer: peer, token: hubToken, log: logger(log)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PeerSettlePath, h.settle)
	mux.HandleFunc("POST "+PeerReversePath, h.reverse)
	if cp, ok := peer.(settlement.ClearingPeer); ok {
		mountClearing(mux, h, cp, h.log)
	}
	return mux
}

type peerHandler struct {
	peer  settlement.HubPeer
	token string
	log   *slog.Logger
}

func (h *peerHandler) auth(w http.ResponseWriter, r *http.Request) bool {
	if !tokenMatches(h.token, bearer(r)) {
		writeError(w, http.StatusUnauthorized, settlement.EFORBIDDEN, "not the hub: missing or wrong token")
		return false
	}
	return true
}

func (h *peerHandler) settle(w http.ResponseWriter, r *http.Request) {
	if !h.auth(w, r) {
		return
	}
	c, ok := decodeClaim(w, r)
	if !ok {
		return
	}
	a, err := h.peer.SettleForHub(r.Context(), c)
	writeResult(w, h.log, "settle for hub msgid "+c.Msgid, a, err, http.StatusInternalServerError)
}

func (h *peerHandler) reverse(w http.ResponseWriter, r *http.Request) {
	if !h.auth(w, r) {
		return
	}
	var rev settlement.RemoteReverse
	if !decodeBody(w, r, &rev) {
		return
	}
	a, err := h.peer.ReverseForHub(r.Context(), rev)
	writeResult(w, h.log, "reverse for hub msgid "+rev.Msgid, a, err, http.StatusInternalServerError)
}

// PeerClient is a province's platform as the hub sees it, over HTTP: a
// settlement.HubPeer calling the province's PeerHandler. Errors follow the
// package rules: a refusal is a *settlement.Error, anything that may have
// reached the province without an answer wraps settlement.ErrUnknownOutcome.
type PeerClient struct {
	URL   string // the province platform's base URL, e.g. http://127.0.0.1:8081
	Token string // the hub's token at that province
	// Timeout bounds one request (default DefaultPeerTimeout).
	Timeout time.Duration
	// HTTPClient sends the requests (default: http.DefaultTransport, no redirects).
	HTTPClient *http.Client
}

var _ settlement.HubPeer = (*PeerClient)(nil)

func (p *PeerClient) call(path, what string) *call {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPeerTimeout
	}
	return &call{http: p.HTTPClient, timeout: timeout, url: strings.TrimRight(p.URL, "/") + path, token: p.Token, what: what,
		to: "the province platform at " + p.URL}
}

// SettleForHub implements settlement.HubPeer.
func (p *PeerClient) SettleForHub(ctx context.Context, c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	return sendClaim(ctx, p.call, PeerSettlePath, c)
}

// ReverseForHub implements settlement.HubPeer.
func (p *PeerClient) ReverseForHub(ctx context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	return sendReverse(ctx, p.call, PeerReversePath, r)
}
