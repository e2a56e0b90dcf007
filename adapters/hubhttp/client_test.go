package hubhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// pricedClaim is a claim whose lines carry a full classification, including
// the fields rules.LineResult keeps out of its JSON.
func pricedClaim() settlement.RemoteClaim {
	return settlement.RemoteClaim{Msgid: "M1", TreatmentProvince: "150000", Institution: hohhotHosp, InstitutionRegion: "150100",
		InstitutionLevel: 3, InsuredRegion: "420100", PsnNo: wuhanResident, MdtrtID: "V1", MedType: "11",
		SetlTime: time.Date(2026, 3, 15, 2, 0, 0, 123000, time.UTC), Lines: []settlement.RemoteLine{{
			SN: "1", Code: "002302000010000", Cnt: "2", Pric: "380.00", Amount: 76000,
			Priced: rules.LineResult{SN: "1", Amount: 76000, Pre: 7600, Inscp: 68400, Level: "02",
				ListType: "service", PriceCap: 50000, HasCap: true, SelfpayProp: 1000},
		}}}
}

// The claim the insured side receives is the claim the treatment side sent,
// field for field: the insured side compares the lines' classification with
// its own and refuses any difference.
func TestClaimCrossesTheWireIntact(t *testing.T) {
	want := pricedClaim()
	var got settlement.RemoteClaim
	peer := &fakePeer{settle: func(c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
		got = c
		return settlement.RemoteAnswer{SetlID: "S1"}, nil
	}}
	srv := httptest.NewServer(hubhttp.PeerHandler(peer, "the-hub-token-0123"))
	defer srv.Close()
	a, err := (&hubhttp.PeerClient{URL: srv.URL, Token: "the-hub-token-0123"}).SettleForHub(context.Background(), want)
	require.NoError(t, err)
	require.Equal(t, "S1", a.SetlID)
	require.True(t, reflect.DeepEqual(want, got), "sent %+v\nreceived %+v", want, got)

	// Plain JSON would lose them: this is why the wire carries national priced lines.
	b, err := json.Marshal(want)
	require.NoError(t, err)
	var plain settlement.RemoteClaim
	require.NoError(t, json.Unmarshal(b, &plain))
	require.NotEqual(t, want.Lines[0].Priced, plain.Lines[0].Priced)
}

// A guard: the wire's priced line carries exactly the LineResult fields
// its JSON omits. A new json:"-" field in rules.LineResult must be added to
// the wire too.
func TestWireCoversHiddenFields(t *testing.T) {
	var hidden []string
	rt := reflect.TypeFor[rules.LineResult]()
	for i := 0; i < rt.NumField(); i++ {
		if rt.Field(i).Tag.Get("json") == "-" {
			hidden = append(hidden, rt.Field(i).Name)
		}
	}
	require.Equal(t, []string{"ListType", "PriceCap", "HasCap", "SelfpayProp"}, hidden)
}

type fakePeer struct {
	settle  func(settlement.RemoteClaim) (settlement.RemoteAnswer, error)
	reverse func(settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error)
}

func (f *fakePeer) SettleForHub(_ context.Context, c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
	return f.settle(c)
}

func (f *fakePeer) ReverseForHub(_ context.Context, r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
	return f.reverse(r)
}

// The client tells a refusal (nothing happened) from an unknown outcome
// (the other side may have acted), whatever the hub or the network does.
func TestClientOutcomes(t *testing.T) {
	type result struct {
		code    string // settlement.ErrorCode of a refusal
		unknown bool   // errors.Is(err, settlement.ErrUnknownOutcome)
		setl    string // the answer's SetlID
	}
	write := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    result
	}{
		{"answer", write(200, `{"answer":{"setl_id":"S9"}}`), result{setl: "S9"}},
		{"refusal", write(200, `{"error":{"code":"invalid","message":"no","rule":"R1"}}`), result{code: settlement.EINVALID}},
		{"refusal not found", write(200, `{"error":{"code":"not_found","message":"no"}}`), result{code: settlement.ENOTFOUND}},
		{"internal refusal", write(200, `{"error":{"code":"internal","message":"?"}}`), result{code: settlement.EINTERNAL}},
		{"401", write(401, `{"error":{"code":"forbidden","message":"token"}}`), result{code: settlement.EFORBIDDEN}},
		{"403 plain", write(403, `forbidden`), result{code: settlement.EFORBIDDEN}},
		{"400", write(400, `{"error":{"code":"invalid","message":"bad json"}}`), result{code: settlement.EINVALID}},
		{"404 html", write(404, `<html>not here</html>`), result{code: settlement.ENOTFOUND}},
		{"409", write(409, ``), result{code: settlement.ECONFLICT}},
		{"413", write(413, ``), result{code: settlement.EINVALID}},
		{"408", write(408, ``), result{unknown: true}},
		{"500", write(500, `{"error":{"code":"internal","message":"db"}}`), result{unknown: true}},
		{"502", write(502, `bad gateway`), result{unknown: true}},
		{"503", write(503, ``), result{unknown: true}},
		{"504", write(504, `{"error":{"code":"internal","message":"outcome unknown"}}`), result{unknown: true}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, result{unknown: true}},
		{"unreadable answer", write(200, `{"answer":`), result{unknown: true}},
		{"empty answer", write(200, `{}`), result{unknown: true}},
		{"wrong answer type", write(200, `{"answer":[1,2]}`), result{unknown: true}},
		{"oversized answer", write(200, `{"answer":{"setl_id":"`+strings.Repeat("x", hubhttp.MaxBody)+`"}}`), result{unknown: true}},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hanging up
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			write(200, `{"answer":{"setl_id":"late"}}`)(w, r)
		}, result{unknown: true}},
		{"hang up", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}, result{unknown: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seen atomic.Pointer[http.Request]
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen.Store(r)
				tc.handler(w, r)
			}))
			defer srv.Close()
			c := &hubhttp.Client{URL: srv.URL + "/", Province: "150000", Token: "province-token-0123", Timeout: 300 * time.Millisecond}
			a, err := c.Settle(context.Background(), pricedClaim())
			r := seen.Load()
			require.NotNil(t, r)
			require.Equal(t, hubhttp.SettlePath, r.URL.Path)
			require.Equal(t, "Bearer province-token-0123", r.Header.Get("Authorization"))
			require.Equal(t, "150000", r.Header.Get(hubhttp.ProvinceHeader))
			got := result{unknown: errors.Is(err, settlement.ErrUnknownOutcome), setl: a.SetlID}
			if err != nil && !got.unknown {
				got.code = settlement.ErrorCode(err)
				var se *settlement.Error
				require.True(t, errors.As(err, &se), "a refusal is a *settlement.Error: %v", err)
			}
			require.Equal(t, tc.want, got, "%v", err)
			if tc.name == "slow" {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			}
			if tc.name == "refusal" {
				require.Equal(t, &settlement.Error{Code: settlement.EINVALID, Message: "no", Rule: "R1"}, err)
			}
		})
	}

	t.Run("reversals turned away are to be retried", func(t *testing.T) {
		for status, body := range map[int]string{401: `{"error":{"code":"forbidden","message":"token"}}`, 404: ``, 403: `x`} {
			srv := httptest.NewServer(write(status, body))
			_, err := (&hubhttp.Client{URL: srv.URL, Province: "150000", Token: "x"}).Reverse(context.Background(), settlement.RemoteReverse{Msgid: "M1"})
			srv.Close()
			turnedAway(t, err, http.StatusText(status))
		}
		// The insured province's own refusal stands.
		srv := httptest.NewServer(write(200, `{"error":{"code":"not_found","message":"omsgid M1: no hub settlement"}}`))
		defer srv.Close()
		_, err := (&hubhttp.Client{URL: srv.URL, Province: "150000", Token: "x"}).Reverse(context.Background(), settlement.RemoteReverse{Msgid: "M1"})
		require.Equal(t, settlement.ENOTFOUND, settlement.ErrorCode(err))
	})

	t.Run("no server", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := (&hubhttp.Client{URL: srv.URL, Province: "150000", Token: "x"}).Reverse(context.Background(), settlement.RemoteReverse{Msgid: "M1"})
		require.ErrorIs(t, err, settlement.ErrUnknownOutcome)
		require.Contains(t, err.Error(), "reverse msgid M1")
	})

	t.Run("too large to send", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
		defer srv.Close()
		c := pricedClaim()
		for len(c.Lines) < hubhttp.MaxBody/200 {
			c.Lines = append(c.Lines, c.Lines...)
		}
		_, err := (&hubhttp.Client{URL: srv.URL, Province: "150000", Token: "x"}).Settle(context.Background(), c)
		require.Equal(t, settlement.EINVALID, settlement.ErrorCode(err), "%v", err)
		require.Zero(t, calls.Load(), "not sent")
	})
}

// The province endpoint: the hub's token, bounded bodies, refusals as 200,
// failures as 500 (an unknown outcome to the hub).
func TestPeerHandler(t *testing.T) {
	const tok = "the-hub-token-0123"
	peer := &fakePeer{
		settle: func(c settlement.RemoteClaim) (settlement.RemoteAnswer, error) {
			switch c.Msgid {
			case "refuse":
				return settlement.RemoteAnswer{}, settlement.Errorf(settlement.ECONFLICT, "already settled")
			case "fail":
				return settlement.RemoteAnswer{}, errors.New("connection to the database lost")
			}
			return settlement.RemoteAnswer{SetlID: "S-" + c.Msgid}, nil
		},
		reverse: func(r settlement.RemoteReverse) (settlement.RemoteReverseAnswer, error) {
			return settlement.RemoteReverseAnswer{Outcome: "voided"}, nil
		},
	}
	srv := httptest.NewServer(hubhttp.PeerHandlerWithLog(peer, tok, nil))
	defer srv.Close()
	settleURL := srv.URL + hubhttp.PeerSettlePath

	code, body := post(t, settleURL, tok, nil, `{"msgid":"ok"}`)
	require.Equal(t, 200, code)
	require.Contains(t, body, `{"answer":{"setl_id":"S-ok",`)
	code, body = post(t, settleURL, tok, nil, `{"msgid":"refuse"}`)
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"error":{"code":"conflict","message":"already settled"}}`, body)
	code, body = post(t, settleURL, tok, nil, `{"msgid":"fail"}`)
	require.Equal(t, 500, code)
	require.NotContains(t, body, "database", "internal detail is logged, not sent")
	code, _ = post(t, settleURL, tok, nil, `{"msgid":"ok"} {"msgid":"again"}`)
	require.Equal(t, 400, code)
	code, _ = post(t, settleURL, tok, nil, `{"msgid":"ok","feedetail":[{"feedetl_sn":"1","pric_uplmt_amt":"x"}]}`)
	require.Equal(t, 400, code, "a line's classification must be readable")
	code, _ = post(t, settleURL, tok, nil, `{"msgid":"`+strings.Repeat("x", hubhttp.MaxBody)+`"}`)
	require.Equal(t, 413, code)
	code, _ = post(t, settleURL, "wrong-hub-token-0123", nil, `{"msgid":"ok"}`)
	require.Equal(t, 401, code)
	code, body = post(t, srv.URL+hubhttp.PeerReversePath, tok, nil, `{"omsgid":"M1"}`)
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"answer":{"outcome":"voided"}}`, body)

	resp, err := http.Get(settleURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// With no token configured, nothing gets in.
	closed := httptest.NewServer(hubhttp.PeerHandler(peer, ""))
	defer closed.Close()
	code, _ = post(t, closed.URL+hubhttp.PeerSettlePath, "", nil, `{"msgid":"ok"}`)
	require.Equal(t, 401, code)
}

func TestLoadTokens(t *testing.T) {
	tok, err := hubhttp.LoadTokens(strings.NewReader("# tokens\n150000,abcdefghijklmnop\nhub:150000, qrstuvwxyz012345 \nadmin,sha256:" + strings.Repeat("ab", 32) + "\n"))
	require.NoError(t, err)
	require.Equal(t, hubhttp.Tokens{Province: map[string]string{"150000": "abcdefghijklmnop"},
		Peer: map[string]string{"150000": "qrstuvwxyz012345"}, Admin: "sha256:" + strings.Repeat("ab", 32)}, tok)
	for _, bad := range []string{
		"150000,short",
		"15000,abcdefghijklmnop",
		"150000,abcdefghijklmnop\n150000,abcdefghijklmnoq",
		"hub:150000,sha256:" + strings.Repeat("ab", 32),
		"150000,sha256:abcd",
		"150000,abcdefghijklmnop,extra",
		"admin,abcdefghijklmnop\nadmin,abcdefghijklmnoq",
	} {
		_, err := hubhttp.LoadTokens(strings.NewReader(bad))
		require.Error(t, err, bad)
	}
	dev := hubhttp.DevTokens("150000")
	require.Equal(t, "dev-150000-to-hub", dev.Province["150000"])
	require.Equal(t, "dev-hub-to-150000", dev.Peer["150000"])
	for _, s := range []string{dev.Province["150000"], dev.Peer["150000"], dev.Admin} {
		require.GreaterOrEqual(t, len(s), hubhttp.MinTokenLen)
	}
}
