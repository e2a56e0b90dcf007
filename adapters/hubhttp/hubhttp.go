// Package hubhttp carries cross-province settlement over HTTP/JSON: the
// national hub (国家平台) as a network service between province platforms.
//
// Three roles, three pieces:
//
//	province → hub   Client (a settlement.Hub)          POST {hub}/hub/v1/settle, /hub/v1/reverse
//	hub → province   PeerClient (a settlement.HubPeer)  POST {province}/hub-peer/v1/settle, /hub-peer/v1/reverse
//	                 PeerHandler serves those at the province
//	the hub itself   Server: routes and records (a *national.Hub), injects faults (its Faults)
//
// # Wire format
//
// A request body is the JSON of settlement.RemoteClaim or
// settlement.RemoteReverse, at most MaxBody bytes, with
//
//	Authorization: Bearer <token>
//	X-Medsettle-Province: <sending province>   (province → hub only)
//
// A claim's lines ("feedetail") are national priced lines (fsi.PricedLine,
// as 2204 answers them) with their med_list_codg: they carry each line's
// whole classification (list type, price cap, self-pay proportion
// included). The insured side compares its own classification with the
// treatment side's field by field, so the transport must deliver the claim
// exactly as the treatment side built it.
//
// Every answer body is an envelope, at most MaxBody bytes:
//
//	200 {"answer": {...}}                                   done
//	200 {"error": {"code": "invalid", "message": "...", "rule": "..."}}
//	                                                        refused by the insured province (or by the hub's routing)
//	4xx {"error": {"code": "forbidden", "message": "..."}}  refused by the hub (or the province endpoint) itself,
//	                                                        before anything was routed: bad token, sending as
//	                                                        another province, malformed or oversized body
//	5xx                                                     the outcome is unknown: 504 when the hub lost the
//	                                                        answer or timed out, 502 when the insured province
//	                                                        failed, 500 when the province endpoint failed, 503
//	                                                        when a reversal's insured province is not connected
//
// # What the caller sees
//
// Client and PeerClient turn these into what the engine needs to keep both
// sides in agreement:
//
//   - 200 with an answer: the answer.
//   - 200 with an error, or a 4xx other than 408: a *settlement.Error with the
//     code sent (401/403 without one: EFORBIDDEN; 404: ENOTFOUND; 409:
//     ECONFLICT; other 4xx: EINVALID). Nothing happened on the other side.
//     Except for a reversal turned away with a 4xx (by the hub or the
//     province endpoint, not by the insured province's engine): that is a
//     plain error (settlement.ErrorCode: EINTERNAL), because a reversal must
//     be carried through and the durable Reverser stops for good on a
//     refusal code (workflows.ReverseRemote makes it non-retryable), while
//     it retries EINTERNAL: a token mended later lets the retry succeed.
//   - Anything else (a time-out, a connection error, 408, 5xx, 1xx/3xx, an
//     answer that cannot be read or is too large): an error wrapping
//     settlement.ErrUnknownOutcome. The insured side may or may not have acted;
//     the engine reverses.
//
// When in doubt the answer is "unknown": treating a definite refusal as
// unknown costs a reversal of nothing; treating an unknown outcome as a
// refusal would let the two provinces disagree.
package hubhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Paths.
const (
	SettlePath      = "/hub/v1/settle"       // province → hub
	ReversePath     = "/hub/v1/reverse"      // province → hub
	FaultsPath      = "/hub/v1/faults"       // admin → hub
	RecordsPath     = "/hub/v1/records"      // admin → hub
	PeerSettlePath  = "/hub-peer/v1/settle"  // hub → province
	PeerReversePath = "/hub-peer/v1/reverse" // hub → province
	PeerPrefix      = "/hub-peer/"           // where a province mounts PeerHandler
)

// ProvinceHeader names the sending province of a request to the hub.
const ProvinceHeader = "X-Medsettle-Province"

// MaxBody bounds every request and answer body. A claim is at most what the
// counter interface accepts (40 000 characters of input) plus each line's
// classification, well under this.
const MaxBody = 1 << 20

// Default time-outs, shortest innermost, so that each caller learns of an
// unknown outcome while it still has time to act on it:
//
//	hub → province (PeerClient)      5 s   the hub answers 504
//	province → hub (Client)          8 s   the engine reverses
//	counter → province (httpapi)    10 s   httpapi.Server.Timeout
//
// A Client whose caller's context expires first returns an unknown
// outcome too, but the engine then has no time left to record it.
const (
	DefaultTimeout     = 8 * time.Second // Client, Admin
	DefaultPeerTimeout = 5 * time.Second // PeerClient, Server.PeerTimeout
)

// WireError is the "error" member of an answer.
type WireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Rule    string `json:"rule,omitempty"`
}

type envelope struct {
	Answer json.RawMessage `json:"answer,omitempty"`
	Error  *WireError      `json:"error,omitempty"`
}

// wireClaim is a RemoteClaim as sent: its lines are national priced lines
// (fsi.PricedLine, as 2204 answers them), which carry a line's whole
// classification, with the line's code.
type wireClaim struct {
	settlement.RemoteClaim
	Lines []wireLine `json:"feedetail"`
}

// wireLine is one line of a claim on the wire.
type wireLine struct {
	Code string `json:"med_list_codg"`
	fsi.PricedLine
}

func toWire(c settlement.RemoteClaim) (wireClaim, error) {
	w := wireClaim{RemoteClaim: c, Lines: make([]wireLine, len(c.Lines))}
	w.RemoteClaim.Lines = nil
	for i, l := range c.Lines {
		p := l.Priced
		if p.SN != l.SN || p.Amount != l.Amount || (!p.HasCap && p.PriceCap != 0) || (p.Level == "" && p.SelfpayProp != 0) {
			return w, fmt.Errorf("line %s: its classification does not match the line", l.SN)
		}
		pl := fsi.PricedLine{FeedetlSN: l.SN, DetItemFeeSumamt: fsi.Money(l.Amount), Cnt: l.Cnt, Pric: l.Pric,
			FulamtOwnpayAmt: fsi.Money(p.Fulamt), OverlmtAmt: fsi.Money(p.Over), PreselfpayAmt: fsi.Money(p.Pre),
			InscpScpAmt: fsi.Money(p.Inscp), ChrgitmLv: string(p.Level), MedChrgitmType: p.ListType}
		if p.HasCap {
			pl.PricUplmtAmt = p.PriceCap.String()
		}
		if p.Level != "" {
			pl.SelfpayProp = p.SelfpayProp.String()
		}
		w.Lines[i] = wireLine{Code: l.Code, PricedLine: pl}
	}
	return w, nil
}

// decodeClaim reads a wire claim from the body; a claim that is not one is
// answered 400 here, whether the hub or a province received it.
func decodeClaim(w http.ResponseWriter, r *http.Request) (settlement.RemoteClaim, bool) {
	var wc wireClaim
	if !decodeBody(w, r, &wc) {
		return settlement.RemoteClaim{}, false
	}
	c, err := wc.claim()
	if err != nil {
		writeError(w, http.StatusBadRequest, settlement.EINVALID, "%v", err)
		return settlement.RemoteClaim{}, false
	}
	return c, true
}

func (w wireClaim) claim() (settlement.RemoteClaim, error) {
	c := w.RemoteClaim
	c.Lines = nil
	for _, l := range w.Lines {
		p := rules.LineResult{SN: l.FeedetlSN, Amount: rules.Money(l.DetItemFeeSumamt), Fulamt: rules.Money(l.FulamtOwnpayAmt),
			Over: rules.Money(l.OverlmtAmt), Pre: rules.Money(l.PreselfpayAmt), Inscp: rules.Money(l.InscpScpAmt),
			Level: rules.Level(l.ChrgitmLv), ListType: l.MedChrgitmType}
		var err error
		if l.PricUplmtAmt != "" {
			p.HasCap = true
			if p.PriceCap, err = rules.ParseMoney(l.PricUplmtAmt); err != nil {
				return c, fmt.Errorf("feedetail %s: pric_uplmt_amt %q: %w", l.FeedetlSN, l.PricUplmtAmt, err)
			}
		}
		if l.SelfpayProp != "" {
			if p.SelfpayProp, err = rules.ParseRatio(l.SelfpayProp); err != nil {
				return c, fmt.Errorf("feedetail %s: selfpay_prop %q: %w", l.FeedetlSN, l.SelfpayProp, err)
			}
		}
		c.Lines = append(c.Lines, settlement.RemoteLine{SN: l.FeedetlSN, Code: l.Code, Cnt: l.Cnt, Pric: l.Pric, Amount: p.Amount, Priced: p})
	}
	return c, nil
}

// ---- the calling side (Client, PeerClient) ----

// defaultHTTPClient never follows redirects: a POST that was redirected
// reached something other than the hub, and resending it elsewhere is not
// this package's decision.
var defaultHTTPClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// sendClaim posts a claim (or its preview) to path: the province's request to
// the hub and the hub's to the insured province are the same exchange.
func sendClaim(ctx context.Context, newCall func(path, what string) *call, path string, rc settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	what := "settle msgid " + rc.Msgid
	if rc.Preview {
		what = "preview of visit " + rc.MdtrtID
	}
	var a settlement.RemoteAnswer
	w, err := toWire(rc)
	if err != nil {
		return settlement.RemoteAnswer{}, fmt.Errorf("hubhttp: %s: not sent: %w", what, err)
	}
	if err := newCall(path, what).do(ctx, w, &a); err != nil {
		return settlement.RemoteAnswer{}, err
	}
	return a, nil
}

// sendReverse posts a reversal to path; it must go through (mustGoThrough),
// whichever side sends it.
func sendReverse(ctx context.Context, newCall func(path, what string) *call, path string, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	var a settlement.RemoteReverseAnswer
	cl := newCall(path, "reverse msgid "+r.Msgid)
	cl.mustGoThrough = true
	if err := cl.do(ctx, r, &a); err != nil {
		return settlement.RemoteReverseAnswer{}, err
	}
	return a, nil
}

// call is one POST: in as JSON, out decoded from the envelope's answer.
type call struct {
	http    *http.Client
	timeout time.Duration
	url     string
	token   string
	header  http.Header
	what    string // for error messages: "settle msgid X"
	to      string // who answers: "the hub", "province 420000"
	// mustGoThrough marks a reversal: a refusal by the hub or the province
	// endpoint itself (4xx: a token, a path, a limit) is returned as an
	// internal error, to be retried, not as a refusal.
	mustGoThrough bool
}

func unknown(c *call, format string, args ...any) error {
	return fmt.Errorf("hubhttp: %s (POST %s): %w: %s", c.what, c.url, settlement.ErrUnknownOutcome, fmt.Sprintf(format, args...))
}

func (c *call) do(ctx context.Context, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("hubhttp: %s: encoding the request: %w", c.what, err)
	}
	if len(body) > MaxBody {
		// Not sent: a definite refusal.
		return settlement.Errorf(settlement.EINVALID, "the request to the hub is %d bytes, more than the %d allowed", len(body), MaxBody)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("hubhttp: %s: %w", c.what, err) // a bad URL: nothing was sent
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := c.http
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("hubhttp: %s (POST %s): %w: %w", c.what, c.url, settlement.ErrUnknownOutcome, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("hubhttp: %s (POST %s): reading the answer (%s): %w: %w", c.what, c.url, resp.Status, settlement.ErrUnknownOutcome, err)
	}
	if len(raw) > MaxBody {
		return unknown(c, "%s with an answer of more than %d bytes", resp.Status, MaxBody)
	}
	var env envelope
	decodeErr := json.Unmarshal(raw, &env)
	switch {
	case resp.StatusCode == http.StatusOK:
		if decodeErr != nil {
			return unknown(c, "unreadable answer: %v", decodeErr)
		}
		if env.Error != nil {
			code := env.Error.Code
			if code == "" {
				code = settlement.EINTERNAL
			}
			return &settlement.Error{Code: code, Message: env.Error.Message, Rule: env.Error.Rule}
		}
		if len(env.Answer) == 0 || string(env.Answer) == "null" {
			return unknown(c, "an answer with neither answer nor error")
		}
		if err := json.Unmarshal(env.Answer, out); err != nil {
			return unknown(c, "unreadable answer: %v", err)
		}
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout:
		code := statusCode(resp.StatusCode)
		msg := strings.TrimSpace(string(raw))
		if decodeErr == nil && env.Error != nil {
			if knownCode(env.Error.Code) && env.Error.Code != settlement.EINTERNAL {
				code = env.Error.Code
			}
			msg = env.Error.Message
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		msg = fmt.Sprintf("%s refused %s (%s): %s", c.to, c.what, resp.Status, msg)
		if c.mustGoThrough {
			// Not a *settlement.Error: its code is EINTERNAL, which every
			// Reverser retries, where a refusal code would stop it for good.
			return fmt.Errorf("hubhttp: %s; nothing was done, and a reversal must go through: retry once this is fixed", msg)
		}
		return &settlement.Error{Code: code, Message: msg}
	default:
		detail := ""
		if decodeErr == nil && env.Error != nil {
			detail = ": " + env.Error.Message
		}
		return unknown(c, "%s%s", resp.Status, detail)
	}
}

func statusCode(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return settlement.EFORBIDDEN
	case http.StatusNotFound:
		return settlement.ENOTFOUND
	case http.StatusConflict:
		return settlement.ECONFLICT
	}
	return settlement.EINVALID
}

func knownCode(code string) bool {
	switch code {
	case settlement.EINVALID, settlement.ENOTFOUND, settlement.ECONFLICT, settlement.EFORBIDDEN, settlement.EINTERNAL:
		return true
	}
	return false
}

// ---- the serving side (PeerHandler, Server) ----

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// tokenMatches compares a presented token with a stored one (the token, or
// "sha256:<hex>" of it) in constant time. Empty tokens never match.
func tokenMatches(stored, presented string) bool {
	if stored == "" || presented == "" {
		return false
	}
	want, _, ok := settlement.SecretHash(stored)
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="medsettle-hub"`)
	}
	writeJSON(w, status, envelope{Error: &WireError{Code: code, Message: fmt.Sprintf(format, args...)}})
}

// writeResult answers v or err: a refusal (*settlement.Error) is 200 with
// its code, an unknown outcome 504, anything else failStatus (the outcome
// is unknown to the caller too).
func writeResult(w http.ResponseWriter, log *slog.Logger, what string, v any, err error, failStatus int) {
	var se *settlement.Error
	switch {
	case err == nil:
		b, merr := json.Marshal(v)
		if merr != nil {
			log.Error("hubhttp: encoding an answer", "what", what, "err", merr)
			writeError(w, http.StatusInternalServerError, settlement.EINTERNAL, "encoding the answer failed")
			return
		}
		writeJSON(w, http.StatusOK, envelope{Answer: b})
	case errors.Is(err, settlement.ErrUnknownOutcome):
		log.Warn("hubhttp: outcome unknown", "what", what, "err", err)
		// The detail (addresses behind the hub) is logged, not sent.
		writeError(w, http.StatusGatewayTimeout, settlement.EINTERNAL, "the outcome of %s is unknown", what)
	case errors.As(err, &se):
		writeJSON(w, http.StatusOK, envelope{Error: &WireError{Code: se.Code, Message: se.Message, Rule: se.Rule}})
	default:
		log.Error("hubhttp: failed", "what", what, "err", err)
		writeError(w, failStatus, settlement.EINTERNAL, "internal error")
	}
}

// decodeBody reads a bounded JSON body into v, answering 413 or 400 itself
// when it cannot; it reports whether v was filled.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, settlement.EINVALID, "the body is larger than %d bytes", MaxBody)
		} else {
			writeError(w, http.StatusBadRequest, settlement.EINVALID, "malformed JSON body: %v", err)
		}
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, settlement.EINVALID, "malformed JSON body: data after the object")
		return false
	}
	return true
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
