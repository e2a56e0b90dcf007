// Package client is a Go client of the national counter interface as
// medsettle serves it (package fsi), for HIS and pharmacy POS integrators.
//
// Every transaction is one message: the national envelope around an input,
// identified by its msgid. The msgid is the idempotency key of the platform,
// so the client resends the very same message (same msgid, same bytes) when a
// request fails in transit, times out or meets an HTTP 5xx, and the platform
// answers a repeat with its first answer. A business refusal (infcode -1) is
// final and never resent.
//
// When no answer arrives after every attempt, the outcome is unknown: the
// platform may have settled or not. For the messages 2601 can undo (2201,
// 2204, 2207, 2301, 2304, 2401, 2102), CallSettle and the typed helpers then
// send 2601 (冲正) for the lost msgid and return an *UnknownOutcome saying
// whether that reversal succeeded; a settlement is never resent under a new
// msgid. errors.Is(err, ErrReversed) tells that the message has been undone
// (or recorded as never to take effect) and the sale can be started again.
//
// A Client is safe for concurrent use, and its msgids are unique within it.
// Several processes of one institution (counters, terminals) must not
// produce the same msgid: give each its own WithTerminal (or
// WithSequenceRange) so that their msgid sequences never overlap.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
)

// maxAnswer bounds an answer body read into memory.
const maxAnswer = 8 << 20

// Client calls the counter interface for one institution (fixmedins_code).
type Client struct {
	url  string
	key  string
	inst string
	hc   *http.Client
	log  *slog.Logger
	now  func() time.Time

	attempts       int
	backoff        time.Duration
	maxBackoff     time.Duration
	reverseTimeout time.Duration
	env            fsi.Envelope // the static envelope fields
	observe        func(Observation)

	seqFirst, seqSize int   // the msgid sequences of this client: seqFirst .. seqFirst+seqSize-1
	err               error // a bad option, returned by New

	mu   sync.Mutex
	seq  int   // next msgid sequence, counted from seqFirst, mod seqSize
	sec  int64 // the second (Unix) of the last msgid
	used int   // msgids issued with second sec
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends through hc. Its Timeout bounds each attempt, so set one
// (a nil Timeout makes an unanswered attempt wait for ctx).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each attempt (default 15 s: the platform gives up on a
// transaction after 10 s and says so). It sets the Timeout of a copy of the
// HTTP client, so give it after WithHTTPClient.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		hc := *c.hc
		hc.Timeout = d
		c.hc = &hc
	}
}

// WithAttempts sets how many times a message is sent before its outcome is
// declared unknown (default 3, at least 1).
func WithAttempts(n int) Option {
	return func(c *Client) { c.attempts = max(n, 1) }
}

// WithBackoff sets the wait before the first resend (default 200 ms); it
// doubles on each further resend up to maxWait (default 5 s), with jitter.
func WithBackoff(first, maxWait time.Duration) Option {
	return func(c *Client) { c.backoff, c.maxBackoff = first, max(first, maxWait) }
}

// WithReverseTimeout bounds the 2601 that follows a lost message, attempts
// included (default: attempts × timeout + backoff). The reversal runs even if
// the caller's context has ended, since leaving a settlement in doubt is worse.
func WithReverseTimeout(d time.Duration) Option { return func(c *Client) { c.reverseTimeout = d } }

// WithOperator sets opter_type, opter and opter_name (default "1", "0001", "收费员").
func WithOperator(opterType, opter, opterName string) Option {
	return func(c *Client) { c.env.OpterType, c.env.Opter, c.env.OpterName = opterType, opter, opterName }
}

// WithInstitution sets fixmedins_name and mdtrtarea_admvs (the institution's
// pooling region) in every envelope.
func WithInstitution(name, admdvs string) Option {
	return func(c *Client) { c.env.FixmedinsName, c.env.MdtrtareaAdmvs = name, admdvs }
}

// WithSignNo sets sign_no, the number 9001 (sign-in) returned.
func WithSignNo(signNo string) Option { return func(c *Client) { c.env.SignNo = signNo } }

// WithLogger logs resends and reversals (default: nothing is logged).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// Observation is one message's outcome, for metrics: Elapsed covers every
// attempt and the waits between them.
type Observation struct {
	Infno    string
	Msgid    string
	Elapsed  time.Duration
	Attempts int
	Answer   *Answer // nil when no answer arrived
	Err      error   // nil, *Refusal, *UnknownOutcome, *HTTPError, ...
}

// WithObserver calls fn after each message (2601s sent by CallSettle
// included). fn runs on the caller's goroutine and must be safe for
// concurrent use when the Client is shared.
func WithObserver(fn func(Observation)) Option { return func(c *Client) { c.observe = fn } }

// WithSequenceRange makes msgids end in sequences first .. last only
// (0 <= first <= last <= 9999), so that processes of one institution given
// disjoint ranges never produce the same msgid. The client then has
// last-first+1 msgids per second (see Msgid).
func WithSequenceRange(first, last int) Option {
	return func(c *Client) {
		if first < 0 || last > 9999 || first > last {
			c.err = fmt.Errorf("client: sequence range %d..%d is not within 0..9999", first, last)
			return
		}
		c.seqFirst, c.seqSize = first, last-first+1
	}
}

// WithTerminal is WithSequenceRange for terminal i (0-based) of n: the
// 10,000 sequences are split into n equal ranges and terminal i uses the
// i-th. Give every counter process of the institution the same n and its
// own i.
func WithTerminal(i, n int) Option {
	return func(c *Client) {
		if n < 1 || n > 10000 || i < 0 || i >= n {
			c.err = fmt.Errorf("client: terminal %d of %d: want 0 <= i < n <= 10000", i, n)
			return
		}
		WithSequenceRange(i*10000/n, (i+1)*10000/n-1)(c)
	}
}

// WithClock sets the clock of msgids and inf_time (tests).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a client of the platform at baseURL ("https://host:port") for
// institution fixmedinsCode (12 characters), authenticating with apiKey. A
// bureau key with an institution's code reads that institution's accounts
// (3201/3202). The error is a bad option or code.
func New(baseURL, apiKey, fixmedinsCode string, opts ...Option) (*Client, error) {
	c := &Client{
		url:        strings.TrimRight(baseURL, "/"),
		key:        apiKey,
		inst:       fixmedinsCode,
		hc:         &http.Client{Timeout: 15 * time.Second},
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:        time.Now,
		attempts:   3,
		backoff:    200 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		seqSize:    10000,
		env: fsi.Envelope{RecerSysCode: "MEDSETTLE", Infver: "V1.0", OpterType: "1", Opter: "0001",
			OpterName: "收费员", FixmedinsCode: fixmedinsCode},
	}
	for _, o := range opts {
		o(c)
	}
	if c.err != nil {
		return nil, c.err
	}
	if len(fixmedinsCode) != 12 {
		return nil, fmt.Errorf("client: fixmedins_code %q is not 12 characters", fixmedinsCode)
	}
	c.seq = randInt(c.seqSize)
	return c, nil
}

// Institution is the fixmedins_code the client acts for.
func (c *Client) Institution() string { return c.inst }

// Msgid returns a new msgid: fixmedins_code (12) + yyyyMMddHHmmss (CST, 14)
// + a 4-digit sequence. The sequence is the client's counter within its
// range (all of 0000-9999 unless WithTerminal or WithSequenceRange), so a
// client has as many msgids per second as its range holds. It never hands
// out one twice: after the last msgid of a second it stamps the next second
// (its msgids then run ahead of the clock until the clock catches up), and a
// clock that steps back is ignored. The counter starts at a random value so
// that a restarted process is unlikely to meet its predecessor's msgids of
// the same second; two Clients of one institution running at once collide
// only if their ranges overlap.
func (c *Client) Msgid() string {
	c.mu.Lock()
	sec := max(c.now().Unix(), c.sec)
	if sec != c.sec {
		c.sec, c.used = sec, 0
	}
	if c.used == c.seqSize {
		c.sec, c.used = c.sec+1, 0
	}
	c.used++
	seq := c.seqFirst + c.seq
	c.seq = (c.seq + 1) % c.seqSize
	stamp := c.sec
	c.mu.Unlock()
	return fmt.Sprintf("%s%s%04d", c.inst, time.Unix(stamp, 0).In(fsi.CST).Format(fsi.MsgidStampLayout), seq)
}

// Answer is the platform's answer to one message.
type Answer struct {
	fsi.Answer
	// Msgid is the msgid of the message answered; Attempts how many sends it took.
	Msgid    string
	Attempts int
}

// Decode unmarshals the output into v (the infno's output type of package fsi).
func (a *Answer) Decode(v any) error {
	if err := a.Answer.Decode(v); err != nil {
		return fmt.Errorf("client: msgid %s: %w", a.Msgid, err)
	}
	return nil
}

// Refusal is an answer with infcode -1: the platform refused the message and
// changed nothing (unless OutcomeUnknown). It is never resent.
type Refusal struct {
	Infno  string
	Msgid  string
	ErrMsg string
	// ErrCode is the answer's err_code: fsi.ErrCodeOutcomeUnknown or "".
	ErrCode string
	// Status is the HTTP status (401 for a bad key, 200 for a business refusal).
	Status int
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("client: %s msgid %s refused: %s", r.Infno, r.Msgid, r.ErrMsg)
}

// OutcomeUnknown reports whether the platform said it could not tell the
// outcome (an internal error or its own time-out): then the message must be
// reversed with 2601, which CallSettle does.
func (r *Refusal) OutcomeUnknown() bool { return r.ErrCode == fsi.ErrCodeOutcomeUnknown }

// HTTPError is an answer that is not the platform's envelope: a proxy's
// error page, or a 4xx without a body. 5xx and 429 are resent; others are final.
type HTTPError struct {
	Status int
	Body   string // the start of the body
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("client: HTTP %d: %s", e.Status, e.Body)
}

// ErrUnknownOutcome is matched (errors.Is) by every *UnknownOutcome.
var ErrUnknownOutcome = errors.New("client: outcome unknown")

// ErrReversed is matched (errors.Is) by an *UnknownOutcome whose message was
// reversed by 2601: what it did is undone, or it will never take effect.
var ErrReversed = errors.New("client: outcome unknown; reversed by 2601")

// UnknownOutcome is a message that got no answer after every attempt (or
// whose answer said the outcome is unknown).
type UnknownOutcome struct {
	Infno    string
	Msgid    string
	Attempts int
	Last     error // the last failure: transport error, time-out, *HTTPError or *Refusal

	// Reversal is the 2601 sent for Msgid, nil when none was sent (Call, or
	// an infno 2601 cannot undo).
	Reversal *Reversal
}

// Reversal is the outcome of the 2601 that followed a lost message.
type Reversal struct {
	Msgid   string // of the 2601
	Outcome string // "reversed", "voided" or "already_reversed" when it succeeded
	Err     error  // nil when it succeeded; else reverse again with Client.Reverse
}

// Reversed reports whether the lost message was reversed.
func (e *UnknownOutcome) Reversed() bool { return e.Reversal != nil && e.Reversal.Err == nil }

func (e *UnknownOutcome) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: %s msgid %s: outcome unknown after %d attempt(s) (last: %v)", e.Infno, e.Msgid, e.Attempts, e.Last)
	switch r := e.Reversal; {
	case r == nil:
		b.WriteString("; not reversed: reverse it with 2601")
	case r.Err == nil:
		fmt.Fprintf(&b, "; reversed by 2601 msgid %s (%s)", r.Msgid, r.Outcome)
	default:
		fmt.Fprintf(&b, "; REVERSAL FAILED (2601 msgid %s: %v): reverse msgid %s again", r.Msgid, r.Err, e.Msgid)
	}
	return b.String()
}

// Is matches ErrUnknownOutcome, and ErrReversed when the reversal succeeded.
func (e *UnknownOutcome) Is(target error) bool {
	return target == ErrUnknownOutcome || (target == ErrReversed && e.Reversed())
}

func (e *UnknownOutcome) Unwrap() error { return e.Last }

// message is one message ready to send: resends use the same bytes.
type message struct {
	infno, msgid string
	body         []byte
}

func (c *Client) newMessage(infno string, input any) (*message, error) {
	in, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("client: encoding input of %s: %w", infno, err)
	}
	env := c.env
	env.Infno, env.Msgid, env.Input = infno, c.Msgid(), in
	env.InfTime = c.now().In(fsi.CST).Format(fsi.TimeLayout)
	body, err := json.Marshal(&env)
	if err != nil {
		return nil, fmt.Errorf("client: encoding envelope of %s: %w", infno, err)
	}
	return &message{infno: infno, msgid: env.Msgid, body: body}, nil
}

// Call sends one message with a new msgid and returns the answer. On a
// transport error, a time-out or an HTTP 5xx it resends the same message,
// which the platform answers at most once. Errors: *Refusal (infcode -1, with
// the answer), *UnknownOutcome (no answer; nothing is reversed: use
// CallSettle for the messages 2601 undoes), or a local encoding error.
func (c *Client) Call(ctx context.Context, infno string, input any) (*Answer, error) {
	m, err := c.newMessage(infno, input)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, m)
}

// CallSettle is Call for a message that changes money or a visit: when its
// outcome stays unknown and 2601 can undo it (see Reversible), it sends 2601
// {psn_no, omsgid, oinfno} and returns an *UnknownOutcome saying whether the
// reversal succeeded. psnNo is the person of the message (2601 requires it).
// For any other infno it is Call.
func (c *Client) CallSettle(ctx context.Context, infno, psnNo string, input any) (*Answer, error) {
	m, err := c.newMessage(infno, input)
	if err != nil {
		return nil, err
	}
	ans, err := c.send(ctx, m)
	if err == nil || !fsi.Reversible(infno) {
		return ans, err
	}
	var uo *UnknownOutcome
	if !errors.As(err, &uo) {
		var rf *Refusal
		if !errors.As(err, &rf) || !rf.OutcomeUnknown() {
			return ans, err
		}
		uo = &UnknownOutcome{Infno: infno, Msgid: m.msgid, Attempts: ans.Attempts, Last: rf}
	}
	uo.Reversal = c.reverseLost(ctx, psnNo, m)
	return nil, uo
}

// reverseLost sends 2601 for a message whose outcome is unknown, with its own
// deadline: the caller's context may be what ended the message.
func (c *Client) reverseLost(ctx context.Context, psnNo string, lost *message) *Reversal {
	d := c.reverseTimeout
	if d == 0 {
		d = time.Duration(c.attempts)*c.hc.Timeout + time.Duration(c.attempts)*c.maxBackoff
		if c.hc.Timeout == 0 {
			d = time.Minute
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	m, err := c.newMessage("2601", reverseInput(psnNo, lost.msgid, lost.infno))
	if err != nil {
		return &Reversal{Err: err}
	}
	rev := &Reversal{Msgid: m.msgid}
	if psnNo == "" {
		rev.Err = errors.New("psn_no of the lost message is unknown")
		return rev
	}
	c.log.Warn("outcome unknown: reversing", "infno", lost.infno, "msgid", lost.msgid, "reversal_msgid", m.msgid)
	ans, err := c.send(rctx, m)
	if err != nil {
		rev.Err = err
		c.log.Error("reversal failed", "msgid", lost.msgid, "reversal_msgid", m.msgid, "err", err)
		return rev
	}
	var out fsi.ReverseOutput
	if err := ans.Decode(&out); err != nil {
		rev.Err = err
		return rev
	}
	rev.Outcome = out.Data.Rslt
	return rev
}

func reverseInput(psnNo, omsgid, oinfno string) fsi.ReverseInput {
	return fsi.ReverseInput{Data: fsi.ReverseRef{PsnNo: psnNo, Omsgid: omsgid, Oinfno: oinfno}}
}

// send delivers m, resending it until an answer arrives or attempts run out.
func (c *Client) send(ctx context.Context, m *message) (*Answer, error) {
	if c.observe == nil {
		return c.deliver(ctx, m)
	}
	start := time.Now()
	ans, err := c.deliver(ctx, m)
	o := Observation{Infno: m.infno, Msgid: m.msgid, Elapsed: time.Since(start), Answer: ans, Err: err}
	var uo *UnknownOutcome
	switch {
	case ans != nil:
		o.Attempts = ans.Attempts
	case errors.As(err, &uo):
		o.Attempts = uo.Attempts
	}
	c.observe(o)
	return ans, err
}

func (c *Client) deliver(ctx context.Context, m *message) (*Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // nothing was sent
	}
	var last error
	n := 0
	for n < c.attempts {
		if n > 0 {
			if err := sleep(ctx, c.delay(n)); err != nil {
				break
			}
			c.log.Info("resending", "infno", m.infno, "msgid", m.msgid, "attempt", n+1, "after", last)
		}
		n++
		ans, retry, err := c.once(ctx, m)
		if ans != nil {
			ans.Msgid, ans.Attempts = m.msgid, n
		}
		if !retry {
			return ans, err
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = ctx.Err()
	}
	return nil, &UnknownOutcome{Infno: m.infno, Msgid: m.msgid, Attempts: n, Last: last}
}

// once sends m once; retry says whether the outcome is still unknown.
func (c *Client) once(ctx context.Context, m *message) (ans *Answer, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+fsi.Path, bytes.NewReader(m.body))
	if err != nil {
		return nil, false, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, true, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, true, &HTTPError{Status: resp.StatusCode, Body: snippet(body)}
	}
	// Only the national envelope is read: Answer's own fields (Msgid,
	// Attempts) are not part of it and must not decide whether it decodes.
	var a Answer
	if err := json.Unmarshal(body, &a.Answer); err != nil {
		if resp.StatusCode >= 300 {
			return nil, false, &HTTPError{Status: resp.StatusCode, Body: snippet(body)}
		}
		// A 2xx that is not the platform's answer: something in between
		// mangled it, and the platform may have acted. Ask again.
		return nil, true, fmt.Errorf("HTTP %d answer is not an envelope: %v", resp.StatusCode, err)
	}
	if a.Infcode != 0 {
		return &a, false, &Refusal{Infno: m.infno, Msgid: m.msgid, ErrMsg: a.ErrMsg, ErrCode: a.ErrCode, Status: resp.StatusCode}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, &HTTPError{Status: resp.StatusCode, Body: snippet(body)}
	}
	return &a, false, nil
}

// delay is the wait before resend n (1, 2, ...): exponential with full jitter
// in its upper half, so that many counters cut off together do not return together.
func (c *Client) delay(n int) time.Duration {
	d := c.backoff
	for i := 1; i < n && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(randInt(int(d/2)))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randInt(n int) int {
	if n <= 0 {
		return 0
	}
	return rand.Intn(n)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.QuoteToGraphic(s)
}
