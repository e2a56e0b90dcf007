package hubhttp

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/national"
)

// Server is the national hub over HTTP. It routes and records exactly as
// its *national.Hub does (and injects faults as its Faults do, when it has
// them); it adds the network on both sides
// (provinces call it with a Client, it calls provinces with PeerClients) and
// checks who is calling:
//
//	POST /hub/v1/settle, /hub/v1/reverse   provinces: Bearer Tokens.Province[p] with X-Medsettle-Province: p;
//	                                       p may only send as itself (treatment_province = p, an institution of p)
//	POST /hub/v1/faults                    admin: {"faults":["drop-answer",...],"fail_reverses":n}
//	GET  /hub/v1/records[?msgid=X]         admin: the hub's record of every message
//	GET  /healthz                          anyone
//
// Fault semantics are adapters/hubsim's: drop-request never calls the
// insured province, drop-answer calls it and discards the answer, delay
// delivers after a while the caller gets no answer, duplicate delivers
// twice. Every fault but duplicate answers the caller 504 (or not at all),
// which its Client reports as settlement.ErrUnknownOutcome.
type Server struct {
	Hub *national.Hub
	// Faults, when set, wraps Hub (adapters/hubsim.Wrap(Hub)): requests are
	// routed through it, and POST /hub/v1/faults drives it. Without it that
	// endpoint answers 404.
	Faults Faults
	Tokens Tokens
	// PeerTimeout bounds each call to a province (default DefaultPeerTimeout);
	// set it before Connect.
	PeerTimeout time.Duration
	// HTTPClient calls the provinces (default: http.DefaultTransport, no redirects); set it before Connect.
	HTTPClient *http.Client
	Log        *slog.Logger

	mu        sync.RWMutex
	connected map[string]bool
}

// Faults is a hub that injects faults around the server's national.Hub.
type Faults interface {
	// For is the hub as province sees it, faults included.
	For(province string) settlement.Hub
	// InjectNamed makes the next settle requests suffer the faults named
	// (none, drop-request, drop-answer, delay, duplicate), in order, and the
	// next failReverses reversals fail; an unknown name injects nothing.
	InjectNamed(names []string, failReverses int) error
	// Wait blocks until delayed deliveries have happened.
	Wait()
}

// NewServer returns a hub serving hub with tokens.
func NewServer(hub *national.Hub, tokens Tokens) *Server {
	return &Server{Hub: hub, Tokens: tokens}
}

// Connect registers the platform of province at peerURL with the Hub, as a
// PeerClient presenting Tokens.Peer[province]. Connect every province
// rather than calling Hub.Register: a reversal towards a province of the
// rules that is not connected is answered 503 (retry), not refused.
func (s *Server) Connect(province, peerURL string) error {
	tok := s.Tokens.Peer[province]
	if tok == "" {
		return fmt.Errorf("hub: no token for calling province %s (a hub:%s row)", province, province)
	}
	u, err := url.Parse(peerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("hub: province %s: %q is not an http(s) URL", province, peerURL)
	}
	s.Hub.Register(province, &PeerClient{URL: peerURL, Token: tok, Timeout: s.PeerTimeout, HTTPClient: s.HTTPClient})
	s.mu.Lock()
	if s.connected == nil {
		s.connected = map[string]bool{}
	}
	s.connected[province] = true
	s.mu.Unlock()
	return nil
}

// isConnected reports whether province was connected with Connect.
func (s *Server) isConnected(province string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.connected[province]
}

// Wait blocks until delayed deliveries have happened.
func (s *Server) Wait() {
	if s.Faults != nil {
		s.Faults.Wait()
	}
}

// endpoint is the hub as province p sees it.
func (s *Server) endpoint(p string) settlement.Hub {
	if s.Faults != nil {
		return s.Faults.For(p)
	}
	return s.Hub.For(p)
}

// Handler returns the hub's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SettlePath, s.settle)
	mux.HandleFunc("POST "+ReversePath, s.reverse)
	mux.HandleFunc("POST "+FaultsPath, s.faults)
	mux.HandleFunc("GET "+RecordsPath, s.records)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// province authenticates a province's request and returns it.
func (s *Server) province(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.Header.Get(ProvinceHeader)
	if p == "" || !tokenMatches(s.Tokens.Province[p], bearer(r)) {
		writeError(w, http.StatusUnauthorized, settlement.EFORBIDDEN, "unknown province or wrong token (%s and Authorization: Bearer)", ProvinceHeader)
		return "", false
	}
	return p, true
}

// ownInstitution checks that inst (of region, when given) is an institution of province p.
func (s *Server) ownInstitution(w http.ResponseWriter, p, inst, region string) bool {
	in := s.Hub.Rules.Institutions[inst]
	if in == nil || (region != "" && in.Admdvs != region) || s.Hub.Rules.Province(in.Admdvs) != p {
		writeError(w, http.StatusForbidden, settlement.EFORBIDDEN, "fixmedins_code %s (mdtrtarea_admvs %q) is not an institution of province %s", inst, region, p)
		return false
	}
	return true
}

func (s *Server) settle(w http.ResponseWriter, r *http.Request) {
	p, ok := s.province(w, r)
	if !ok {
		return
	}
	c, ok := decodeClaim(w, r)
	if !ok {
		return
	}
	if c.TreatmentProvince != p {
		writeError(w, http.StatusForbidden, settlement.EFORBIDDEN, "province %s may not send as treatment_province %q", p, c.TreatmentProvince)
		return
	}
	if !s.ownInstitution(w, p, c.Institution, c.InstitutionRegion) {
		return
	}
	a, err := s.endpoint(p).Settle(r.Context(), c)
	writeResult(w, logger(s.Log), "hub settle msgid "+c.Msgid+" from "+p, a, err, http.StatusBadGateway)
}

func (s *Server) reverse(w http.ResponseWriter, r *http.Request) {
	p, ok := s.province(w, r)
	if !ok {
		return
	}
	var rev settlement.RemoteReverse
	if !decodeBody(w, r, &rev) {
		return
	}
	if rev.TreatmentProvince != p {
		writeError(w, http.StatusForbidden, settlement.EFORBIDDEN, "province %s may not send as treatment_province %q", p, rev.TreatmentProvince)
		return
	}
	if !s.ownInstitution(w, p, rev.Institution, "") {
		return
	}
	// A reversal must go through: a province of the rules that is not
	// connected (yet) is a reason to retry, not a refusal (which would stop
	// the treatment side's Reverser for good).
	if to := s.Hub.Rules.Province(rev.InsuredRegion); to != "" && !s.isConnected(to) {
		writeError(w, http.StatusServiceUnavailable, settlement.EINTERNAL, "province %s is not connected to the hub: retry later", to)
		return
	}
	a, err := s.endpoint(p).Reverse(r.Context(), rev)
	writeResult(w, logger(s.Log), "hub reverse msgid "+rev.Msgid+" from "+p, a, err, http.StatusBadGateway)
}

func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	if !tokenMatches(s.Tokens.Admin, bearer(r)) {
		writeError(w, http.StatusUnauthorized, settlement.EFORBIDDEN, "the admin endpoints need the admin token")
		return false
	}
	return true
}

// FaultsRequest is the body of POST /hub/v1/faults.
type FaultsRequest struct {
	// Faults happen to the next settle requests (previews excepted), in
	// order: none, drop-request, drop-answer, delay, duplicate.
	Faults []string `json:"faults"`
	// FailReverses makes the next n reversals fail with an unknown outcome.
	FailReverses int `json:"fail_reverses,omitempty"`
}

// maxFaults bounds one injection.
const maxFaults = 1000

func (s *Server) faults(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	if s.Faults == nil {
		writeError(w, http.StatusNotFound, settlement.ENOTFOUND, "this hub injects no faults")
		return
	}
	var req FaultsRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.Faults) > maxFaults || req.FailReverses < 0 || req.FailReverses > maxFaults {
		writeError(w, http.StatusBadRequest, settlement.EINVALID, "at most %d faults and fail_reverses in 0..%d", maxFaults, maxFaults)
		return
	}
	if err := s.Faults.InjectNamed(req.Faults, req.FailReverses); err != nil {
		writeError(w, http.StatusBadRequest, settlement.EINVALID, "%v", err)
		return
	}
	logger(s.Log).Info("hub: faults injected", "faults", req.Faults, "fail_reverses", req.FailReverses)
	writeResult(w, logger(s.Log), "faults", req, nil, http.StatusInternalServerError)
}

// Record is one message as the hub saw it (national.Record in JSON).
type Record struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // settle, reverse
	From   string    `json:"from"` // sending province
	To     string    `json:"to"`   // receiving province
	Msgid  string    `json:"msgid"`
	Fault  string    `json:"fault"`  // none, drop-request, ...
	Result string    `json:"result"` // ok, refused: ..., dropped, ...
}

// RecordsAnswer is the answer of GET /hub/v1/records.
type RecordsAnswer struct {
	Records []Record `json:"records"`
}

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	msgid := r.URL.Query().Get("msgid")
	out := RecordsAnswer{Records: []Record{}}
	for _, rec := range s.Hub.Records() {
		if msgid != "" && rec.Msgid != msgid {
			continue
		}
		fault := rec.Fault
		if fault == "" {
			fault = "none"
		}
		out.Records = append(out.Records, Record{At: rec.At, Kind: rec.Kind, From: rec.From, To: rec.To, Msgid: rec.Msgid,
			Fault: fault, Result: rec.Result})
	}
	writeResult(w, logger(s.Log), "records", out, nil, http.StatusInternalServerError)
}
