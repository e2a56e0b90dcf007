package client_test

// The client against stub servers (no database): msgids, resends,
// refusals, the 2601 after a lost or outcome-unknown message, and fuzz
// targets for its reading of answers. The tests against the real server are
// in adapters/httpapi.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/adapters/fsi/client"
)

const hospital = "H15010000011"

func TestMsgid(t *testing.T) {
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, fsi.CST)
	c, err := client.New("http://x", "k", hospital, client.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Msgid()
	if len(id) != 30 || id[:12] != hospital || id[12:26] != "20260315100000" || fsi.CheckMsgid(id, hospital) != nil {
		t.Fatalf("msgid %s", id)
	}
	// 25,000 msgids in one (frozen) second: all distinct; past 10,000 they borrow the next seconds.
	seen := map[string]bool{id: true}
	for i := 0; i < 25000; i++ {
		id := c.Msgid()
		if seen[id] {
			t.Fatalf("msgid %s handed out twice", id)
		}
		seen[id] = true
	}
	if last := c.Msgid(); last[12:26] != "20260315100002" {
		t.Fatalf("last msgid %s", last)
	}

	// A clock that steps back does not reuse a second.
	now = now.Add(-time.Hour)
	if back := c.Msgid(); back[12:26] != "20260315100002" || seen[back] {
		t.Fatalf("msgid %s after the clock stepped back", back)
	}

	// Concurrent callers never share one.
	c2, err := client.New("http://x", "k", hospital)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([][]string, 8)
	for g := range ids {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				ids[g] = append(ids[g], c2.Msgid())
			}
		}(g)
	}
	wg.Wait()
	all := map[string]bool{}
	for _, l := range ids {
		for _, id := range l {
			if all[id] {
				t.Fatalf("msgid %s handed out to two callers", id)
			}
			all[id] = true
		}
	}
}

// Terminals of one institution never meet, even in one frozen second.
func TestTerminalsNeverShareMsgids(t *testing.T) {
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, fsi.CST)
	seen := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for term := 0; term < 3; term++ {
		c, err := client.New("http://x", "k", hospital, client.WithTerminal(term, 3), client.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(term int) {
			defer wg.Done()
			for i := 0; i < 7000; i++ {
				id := c.Msgid()
				mu.Lock()
				if prev, dup := seen[id]; dup {
					t.Errorf("msgid %s of terminal %d was terminal %d's", id, term, prev)
				}
				seen[id] = term
				mu.Unlock()
			}
		}(term)
	}
	wg.Wait()
	for _, bad := range [][2]int{{3, 3}, {-1, 2}, {0, 0}} {
		if _, err := client.New("http://x", "k", hospital, client.WithTerminal(bad[0], bad[1])); err == nil {
			t.Errorf("terminal %d of %d accepted", bad[0], bad[1])
		}
	}
	if _, err := client.New("http://x", "k", hospital, client.WithSequenceRange(10, 9)); err == nil {
		t.Error("range 10..9 accepted")
	}
}

// The platform says it cannot tell (err_code outcome_unknown): CallSettle
// reverses; a refusal without the code is final, whatever its wording.
func TestOutcomeUnknownIsReadFromTheCode(t *testing.T) {
	var mu sync.Mutex
	var infnos []string
	first := `{"infcode":-1,"err_msg":"whatever the words","output":null,"err_code":"outcome_unknown"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var env fsi.Envelope
		_ = json.Unmarshal(b, &env)
		mu.Lock()
		infnos = append(infnos, env.Infno)
		mu.Unlock()
		switch {
		case env.Infno == "2601":
			_, _ = io.WriteString(w, `{"infcode":0,"output":{"data":{"rslt":"reversed"}}}`)
		default:
			_, _ = io.WriteString(w, first)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k", hospital)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CallSettle(context.Background(), "2207", "P1", fsi.SettleInput{})
	var uo *client.UnknownOutcome
	if !errors.As(err, &uo) || !errors.Is(err, client.ErrReversed) || uo.Reversal.Outcome != fsi.Reversed {
		t.Fatalf("err %v", err)
	}
	first = `{"infcode":-1,"err_msg":"the outcome is unknown: reverse it with 2601","output":null}`
	_, err = c.CallSettle(context.Background(), "2207", "P1", fsi.SettleInput{})
	var rf *client.Refusal
	if !errors.As(err, &rf) || rf.OutcomeUnknown() || errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("a refusal without err_code: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := len(infnos); got != 3 || infnos[1] != "2601" {
		t.Fatalf("messages %v", infnos)
	}
}

// --- resends and refusals (the stub-server tests of the old adapters/fsiclient) ---

const employee = "15010000000000000001"

// stub is a server that answers from a script, recording each request body.
type stub struct {
	mu     sync.Mutex
	bodies [][]byte
	auth   []string
	answer func(n int) (int, string) // n: 1 for the first request; status 0 drops the connection
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	n := len(s.bodies)
	answer := s.answer
	s.mu.Unlock()
	status, body := answer(n)
	if status == 0 {
		closeConn(w)
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func closeConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

func (s *stub) got() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func (s *stub) body(n int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[n-1]
}

func (s *stub) set(answer func(n int) (int, string)) {
	s.mu.Lock()
	s.answer = answer
	s.mu.Unlock()
}

func newClient(t *testing.T, url, key string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, key, hospital, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// jsonEq reports whether a and b are the same JSON value.
func jsonEq(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

const okAnswer = `{"infcode": 0, "inf_refmsgid": "r", "refmsg_time": "", "respond_time": "", "err_msg": "", "warn_msg": "", "output": {"x": 1}}`

func TestResendsTheSameMessage(t *testing.T) {
	s := &stub{answer: func(n int) (int, string) {
		switch n {
		case 1:
			return 0, "" // connection dropped
		case 2:
			return http.StatusServiceUnavailable, "busy"
		case 3:
			return http.StatusOK, `{"infcode": 0, "output": {"trunc`
		}
		return http.StatusOK, okAnswer
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newClient(t, srv.URL, "the-key", client.WithAttempts(4), client.WithBackoff(time.Millisecond, 5*time.Millisecond))
	ans, err := c.Call(context.Background(), "2207", map[string]any{"data": map[string]string{"psn_no": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Attempts != 4 {
		t.Errorf("attempts %d, want 4", ans.Attempts)
	}
	if !jsonEq(t, []byte(`{"x": 1}`), ans.Output) {
		t.Errorf("output %s", ans.Output)
	}
	bodies := s.got()
	s.mu.Lock()
	auth := append([]string(nil), s.auth...)
	s.mu.Unlock()
	if len(bodies) != 4 {
		t.Fatalf("%d requests, want 4", len(bodies))
	}
	for i := range bodies {
		if !bytes.Equal(bodies[0], bodies[i]) {
			t.Errorf("a resend is the same message, byte for byte: request %d is\n%s\nnot\n%s", i+1, bodies[i], bodies[0])
		}
		if auth[i] != "Bearer the-key" {
			t.Errorf("request %d: Authorization %q", i+1, auth[i])
		}
	}
	var env map[string]any
	if err := json.Unmarshal(bodies[0], &env); err != nil {
		t.Fatal(err)
	}
	if env["msgid"] != ans.Msgid {
		t.Errorf("msgid %v sent, answer's %s", env["msgid"], ans.Msgid)
	}
	for _, f := range []string{"infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no", "dev_safe_info",
		"cainfo", "signtype", "infver", "opter_type", "opter", "opter_name", "inf_time", "fixmedins_code", "fixmedins_name", "sign_no", "input"} {
		if _, ok := env[f]; !ok {
			t.Errorf("the national envelope has %s", f)
		}
	}
	if env["fixmedins_code"] != hospital {
		t.Errorf("fixmedins_code %v", env["fixmedins_code"])
	}
	it, _ := env["inf_time"].(string)
	if _, err := time.ParseInLocation(fsi.TimeLayout, it, fsi.CST); err != nil {
		t.Errorf("inf_time %q: %v", it, err)
	}
}

func TestRefusalIsNotResent(t *testing.T) {
	s := &stub{answer: func(int) (int, string) {
		return http.StatusOK, `{"infcode": -1, "err_msg": "input.data.psn_no is required", "output": null}`
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newClient(t, srv.URL, "k", client.WithBackoff(time.Millisecond, time.Millisecond))
	ans, err := c.CallSettle(context.Background(), "2207", "p", map[string]any{})
	var rf *client.Refusal
	if !errors.As(err, &rf) {
		t.Fatalf("err %v, want a *Refusal", err)
	}
	if rf.ErrMsg != "input.data.psn_no is required" || rf.OutcomeUnknown() {
		t.Errorf("refusal %+v", rf)
	}
	if ans == nil || ans.Infcode != -1 {
		t.Errorf("answer %+v, want infcode -1", ans)
	}
	if n := len(s.got()); n != 1 {
		t.Fatalf("%d requests: a refusal is final", n)
	}

	// 401 with the envelope is a refusal too; a 404 page is a final HTTP error.
	s.set(func(int) (int, string) {
		return http.StatusUnauthorized, `{"infcode": -1, "err_msg": "Authorization: a valid Bearer API key is required"}`
	})
	_, err = c.Call(context.Background(), "1101", map[string]any{})
	if !errors.As(err, &rf) || rf.Status != http.StatusUnauthorized {
		t.Fatalf("err %v, want a *Refusal with status 401", err)
	}
	s.set(func(int) (int, string) { return http.StatusNotFound, "404 page not found" })
	_, err = c.Call(context.Background(), "1101", map[string]any{})
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound {
		t.Fatalf("err %v, want an *HTTPError 404", err)
	}
	if n := len(s.got()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestCallerCancelStillReverses(t *testing.T) {
	var reversals atomic.Int32
	s := &stub{}
	s.answer = func(n int) (int, string) {
		if bytes.Contains(s.body(n), []byte(`"infno":"2601"`)) {
			reversals.Add(1)
			return http.StatusOK, `{"infcode": 0, "output": {"data": {"rslt": "voided"}}}`
		}
		time.Sleep(300 * time.Millisecond)
		return http.StatusOK, okAnswer
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newClient(t, srv.URL, "k", client.WithBackoff(time.Millisecond, time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.CallSettle(ctx, "2207", employee, map[string]any{})
	var uo *client.UnknownOutcome
	if !errors.As(err, &uo) {
		t.Fatalf("err %v, want an *UnknownOutcome", err)
	}
	if !errors.Is(err, client.ErrReversed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v: want ErrReversed and context.DeadlineExceeded", err)
	}
	if uo.Reversal == nil || uo.Reversal.Outcome != fsi.Voided {
		t.Errorf("reversal %+v, want voided", uo.Reversal)
	}
	if n := reversals.Load(); n != 1 {
		t.Errorf("%d reversals: the reversal is sent although the caller's context ended", n)
	}
}

// An *UnknownOutcome says in its text, and to errors.Is, whether it was reversed.
func TestUnknownOutcomeMessage(t *testing.T) {
	e := &client.UnknownOutcome{Infno: "2207", Msgid: "M", Attempts: 3, Last: errors.New("timeout")}
	if !strings.Contains(e.Error(), "not reversed") {
		t.Errorf("%q", e.Error())
	}
	if errors.Is(e, client.ErrReversed) || !errors.Is(e, client.ErrUnknownOutcome) {
		t.Errorf("not reversed: errors.Is ErrReversed %v, ErrUnknownOutcome %v", errors.Is(e, client.ErrReversed), errors.Is(e, client.ErrUnknownOutcome))
	}
	e.Reversal = &client.Reversal{Msgid: "R", Outcome: "voided"}
	if !strings.Contains(e.Error(), "reversed by 2601 msgid R (voided)") {
		t.Errorf("%q", e.Error())
	}
	if !errors.Is(e, client.ErrReversed) {
		t.Error("reversed: not ErrReversed")
	}
	e.Reversal = &client.Reversal{Msgid: "R", Err: errors.New("line down")}
	if !strings.Contains(e.Error(), "REVERSAL FAILED") || errors.Is(e, client.ErrReversed) || e.Reversed() {
		t.Errorf("failed reversal: %q", e.Error())
	}
}

// The platform says it cannot tell (its own time-out, err_code
// outcome_unknown): CallSettle reverses.
func TestPlatformUnknownOutcomeIsReversed(t *testing.T) {
	s := &stub{}
	s.answer = func(n int) (int, string) {
		if n == 1 {
			return http.StatusOK, `{"infcode": -1, "err_msg": "the platform did not finish in time; the outcome is unknown: reverse msgid X with 2601", "output": null, "err_code": "outcome_unknown"}`
		}
		return http.StatusOK, `{"infcode": 0, "output": {"data": {"rslt": "reversed"}}}`
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var seen []client.Observation
	var mu sync.Mutex
	c := newClient(t, srv.URL, "k", client.WithObserver(func(o client.Observation) {
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
	}))
	_, err := c.CallSettle(context.Background(), "2207", employee, map[string]any{})
	var uo *client.UnknownOutcome
	if !errors.As(err, &uo) {
		t.Fatalf("err %v, want an *UnknownOutcome", err)
	}
	if !errors.Is(err, client.ErrReversed) {
		t.Errorf("err %v: not ErrReversed", err)
	}
	var rf *client.Refusal
	if !errors.As(err, &rf) || !rf.OutcomeUnknown() {
		t.Errorf("err %v: the platform's answer is kept as the cause", err)
	}
	if n := len(s.got()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	var rev struct {
		Infno string `json:"infno"`
		Input struct {
			Data map[string]string `json:"data"`
		} `json:"input"`
	}
	if err := json.Unmarshal(s.got()[1], &rev); err != nil {
		t.Fatal(err)
	}
	if rev.Infno != "2601" {
		t.Errorf("second message %s, want 2601", rev.Infno)
	}
	if want := map[string]string{"psn_no": employee, "omsgid": uo.Msgid, "oinfno": "2207"}; !reflect.DeepEqual(rev.Input.Data, want) {
		t.Errorf("2601 data %v, want %v", rev.Input.Data, want)
	}
	mu.Lock()
	if len(seen) != 2 || seen[0].Infno != "2207" || seen[1].Infno != "2601" || seen[1].Err != nil {
		t.Errorf("observed %+v", seen)
	}
	mu.Unlock()

	// Not for a message 2601 cannot undo: the refusal is returned as it is.
	s.set(func(int) (int, string) {
		return http.StatusOK, `{"infcode": -1, "err_msg": "internal error (msgid X); the outcome is unknown: reverse it with 2601", "output": null, "err_code": "outcome_unknown"}`
	})
	_, err = c.CallSettle(context.Background(), "2208", employee, map[string]any{})
	if !errors.As(err, &rf) || errors.Is(err, client.ErrUnknownOutcome) {
		t.Errorf("2208: err %v, want the *Refusal alone", err)
	}
	if n := len(s.got()); n != 3 {
		t.Errorf("%d requests: no 2601 for a 2208", n)
	}
	if fsi.Reversible("2208") || !fsi.Reversible("2102") {
		t.Error("Reversible: 2208 is not, 2102 is")
	}
}

// --- fuzz targets ---

// canned answers every request with one status and body, without a network.
type canned struct {
	status int
	body   []byte
	n      atomic.Int32
}

func (c *canned) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: c.status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

// What the client must make of an answer.
const (
	wantOK = iota
	wantRefusal
	wantHTTPError
	wantUnknown // resent, then the outcome is unknown
)

// classify is the contract of the package documentation: 5xx and 429 are
// resent; a body that is the national envelope with infcode != 0 is a
// refusal; infcode 0 is an answer when the status is 200; anything else is
// an HTTP error, except a 2xx that is not an envelope, which is resent.
func classify(status int, body []byte) (int, fsi.Answer) {
	var a fsi.Answer
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		return wantUnknown, a
	case json.Unmarshal(body, &a) != nil:
		if status >= 300 {
			return wantHTTPError, a
		}
		return wantUnknown, a
	case a.Infcode != 0:
		return wantRefusal, a
	case status != http.StatusOK:
		return wantHTTPError, a
	}
	return wantOK, a
}

// The client reads whatever comes back as the contract says, and never
// mistakes an answer for a lost message or the reverse.
func FuzzAnswer(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, okAnswer},
		{200, `{"infcode":-1,"err_msg":"input.data.psn_no is required","output":null}`},
		{200, `{"infcode":-1,"err_msg":"x","output":null,"err_code":"outcome_unknown"}`},
		{200, `{"infcode": 0, "output": {"trunc`},
		{200, `{"infcode":0,"output":{"data":{"rslt":"voided"}}}`},
		{200, `{"infcode":0,"msgid":5,"attempts":"two"}`},
		{200, `{"infcode":"0"}`},
		{200, `null`},
		{200, ``},
		{201, `{"infcode":0}`},
		{302, `<html>moved</html>`},
		{401, `{"infcode":-1,"err_msg":"Authorization: a valid Bearer API key is required"}`},
		{404, `404 page not found`},
		{429, `slow down`},
		{502, `bad gateway`},
		{503, `{"infcode":0,"output":{}}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 200 || status > 599 {
			return
		}
		rt := &canned{status: status, body: body}
		c, err := client.New("http://platform.invalid", "k", hospital, client.WithHTTPClient(&http.Client{Transport: rt, Timeout: time.Second}),
			client.WithAttempts(2), client.WithBackoff(time.Nanosecond, time.Nanosecond))
		if err != nil {
			t.Fatal(err)
		}
		want, a := classify(status, body)
		ans, err := c.Call(context.Background(), "1101", fsi.PersonInput{})
		var (
			rf *client.Refusal
			he *client.HTTPError
			uo *client.UnknownOutcome
		)
		got := -1
		switch {
		case err == nil:
			got = wantOK
		case errors.As(err, &uo):
			got = wantUnknown
		case errors.As(err, &rf):
			got = wantRefusal
		case errors.As(err, &he):
			got = wantHTTPError
		}
		if got != want {
			t.Fatalf("HTTP %d %q: got %d (%v), want %d", status, body, got, err, want)
		}
		sends := 1
		if want == wantUnknown {
			sends = 2
		}
		if n := int(rt.n.Load()); n != sends {
			t.Fatalf("HTTP %d %q: sent %d times, want %d", status, body, n, sends)
		}
		switch want {
		case wantOK, wantRefusal:
			if ans == nil || ans.Infcode != a.Infcode || ans.ErrMsg != a.ErrMsg || ans.ErrCode != a.ErrCode || ans.Attempts != 1 || fsi.CheckMsgid(ans.Msgid, hospital) != nil {
				t.Fatalf("HTTP %d %q: answer %+v", status, body, ans)
			}
		default:
			if ans != nil {
				t.Fatalf("HTTP %d %q: answer %+v with %v", status, body, ans, err)
			}
		}
		if want == wantRefusal && (rf.Status != status || rf.ErrMsg != a.ErrMsg || rf.OutcomeUnknown() != a.OutcomeUnknown() || rf.Msgid != ans.Msgid) {
			t.Fatalf("HTTP %d %q: refusal %+v", status, body, rf)
		}
		if want == wantHTTPError && he.Status != status {
			t.Fatalf("HTTP %d %q: %v", status, body, he)
		}
		if want == wantUnknown && (uo.Attempts != 2 || uo.Reversal != nil) {
			t.Fatalf("HTTP %d %q: %+v", status, body, uo)
		}
	})
}
