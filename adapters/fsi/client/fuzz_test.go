package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/adapters/fsi/client"
)

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
