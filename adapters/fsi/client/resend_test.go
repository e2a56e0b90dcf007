package client_test

// The stub-server tests of the old adapters/fsiclient (no database): resends,
// refusals, the 2601 after a lost or outcome-unknown message. The tests
// against the real server are in adapters/httpapi.

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
