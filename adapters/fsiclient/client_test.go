package fsiclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/fsiclient"
	"github.com/medsettle/medsettle/rules"
)

func TestMsgid(t *testing.T) {
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, cst)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := fsiclient.New("http://x", "k", hospital, fsiclient.WithClock(clock))
	id := c.Msgid()
	require.Len(t, id, 30)
	require.Equal(t, hospital, id[:12])
	require.Equal(t, "20260315100000", id[12:26])

	// 25,000 msgids in one (frozen) second: all distinct; past 10,000 they borrow the next seconds.
	seen := map[string]bool{id: true}
	for range 25000 {
		id := c.Msgid()
		require.False(t, seen[id], "msgid %s handed out twice", id)
		seen[id] = true
	}
	last := c.Msgid()
	require.Equal(t, "20260315100002", last[12:26])

	// A clock that steps back does not reuse a second.
	mu.Lock()
	now = now.Add(-time.Hour)
	mu.Unlock()
	back := c.Msgid()
	require.Equal(t, "20260315100002", back[12:26])
	require.False(t, seen[back])

	// Concurrent callers never share one.
	c2 := fsiclient.New("http://x", "k", hospital)
	var wg sync.WaitGroup
	ids := make([][]string, 8)
	for g := range ids {
		wg.Go(func() {
			for range 2000 {
				ids[g] = append(ids[g], c2.Msgid())
			}
		})
	}
	wg.Wait()
	all := map[string]bool{}
	for _, l := range ids {
		for _, id := range l {
			require.False(t, all[id])
			all[id] = true
		}
	}
}

// stub is a server that answers from a script, recording each request body.
type stub struct {
	mu     sync.Mutex
	bodies [][]byte
	auth   []string
	answer func(n int) (int, string)
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

func (s *stub) got() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func (s *stub) set(answer func(n int) (int, string)) {
	s.mu.Lock()
	s.answer = answer
	s.mu.Unlock()
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
	c := fsiclient.New(srv.URL, "the-key", hospital, fsiclient.WithAttempts(4), fsiclient.WithBackoff(time.Millisecond, 5*time.Millisecond))
	ans, err := c.Call(context.Background(), "2207", map[string]any{"data": map[string]string{"psn_no": "1"}})
	require.NoError(t, err)
	require.Equal(t, 4, ans.Attempts)
	require.JSONEq(t, `{"x": 1}`, string(ans.Output))
	bodies := s.got()
	s.mu.Lock()
	auth := append([]string(nil), s.auth...)
	s.mu.Unlock()
	require.Len(t, bodies, 4)
	for i := range bodies {
		require.Equal(t, bodies[0], bodies[i], "a resend is the same message, byte for byte")
		require.Equal(t, "Bearer the-key", auth[i])
	}
	var env map[string]any
	require.NoError(t, json.Unmarshal(bodies[0], &env))
	require.Equal(t, ans.Msgid, env["msgid"])
	for _, f := range []string{"infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no", "dev_safe_info",
		"cainfo", "signtype", "infver", "opter_type", "opter", "opter_name", "inf_time", "fixmedins_code", "fixmedins_name", "sign_no", "input"} {
		require.Contains(t, env, f, "the national envelope has %s", f)
	}
	require.Equal(t, hospital, env["fixmedins_code"])
	_, err = time.ParseInLocation(fsiclient.TimeLayout, env["inf_time"].(string), cst)
	require.NoError(t, err)
}

func TestRefusalIsNotResent(t *testing.T) {
	s := &stub{answer: func(int) (int, string) {
		return http.StatusOK, `{"infcode": -1, "err_msg": "input.data.psn_no is required", "output": null}`
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := fsiclient.New(srv.URL, "k", hospital, fsiclient.WithBackoff(time.Millisecond, time.Millisecond))
	ans, err := c.CallSettle(context.Background(), "2207", "p", map[string]any{})
	var rf *fsiclient.Refusal
	require.ErrorAs(t, err, &rf)
	require.Equal(t, "input.data.psn_no is required", rf.ErrMsg)
	require.False(t, rf.OutcomeUnknown())
	require.Equal(t, -1, ans.Infcode)
	require.Len(t, s.got(), 1, "a refusal is final")

	// 401 with the envelope is a refusal too; a 404 page is a final HTTP error.
	s.set(func(int) (int, string) {
		return http.StatusUnauthorized, `{"infcode": -1, "err_msg": "Authorization: a valid Bearer API key is required"}`
	})
	_, err = c.Call(context.Background(), "1101", map[string]any{})
	require.ErrorAs(t, err, &rf)
	require.Equal(t, http.StatusUnauthorized, rf.Status)
	s.set(func(int) (int, string) { return http.StatusNotFound, "404 page not found" })
	_, err = c.Call(context.Background(), "1101", map[string]any{})
	var he *fsiclient.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusNotFound, he.Status)
	require.Len(t, s.got(), 3)
}

func TestCallerCancelStillReverses(t *testing.T) {
	var reversals atomic.Int32
	s := &stub{}
	s.answer = func(n int) (int, string) {
		s.mu.Lock()
		body := s.bodies[n-1]
		s.mu.Unlock()
		if bytes.Contains(body, []byte(`"infno":"2601"`)) {
			reversals.Add(1)
			return http.StatusOK, `{"infcode": 0, "output": {"data": {"rslt": "voided"}}}`
		}
		time.Sleep(300 * time.Millisecond)
		return http.StatusOK, okAnswer
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := fsiclient.New(srv.URL, "k", hospital, fsiclient.WithBackoff(time.Millisecond, time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.CallSettle(ctx, "2207", employee, map[string]any{})
	var uo *fsiclient.UnknownOutcome
	require.ErrorAs(t, err, &uo)
	require.ErrorIs(t, err, fsiclient.ErrReversed)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "voided", uo.Reversal.Outcome)
	require.EqualValues(t, 1, reversals.Load(), "the reversal is sent although the caller's context ended")
}

func TestHelpersFlow(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	ctx := context.Background()
	c := fsiclient.New(p.url, hospitalKey, hospital)

	who, err := c.Person(ctx, "03", "157213070278")
	require.NoError(t, err)
	require.Equal(t, employee, who.PsnNo)
	require.Equal(t, "310", who.Insutype)
	require.Equal(t, rules.Money(488269), who.Balc)
	_, err = c.Person(ctx, "02", "150100200909167449")
	require.NoError(t, err)

	v, err := c.RegisterOutpatient(ctx, fsiclient.Registration{PsnNo: employee, Insutype: "310", CertType: "03",
		CertNo: "157213070278", IptOtpNo: "MZ1", MedType: "11"})
	require.NoError(t, err)
	fees := []fsiclient.Fee{{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "30"},
		{SN: "2", Code: "XJ01DDA062B002010100345", Cnt: "3", Pric: "1500.5"}}
	lines, err := c.UploadFees(ctx, v, "B1", fees)
	require.NoError(t, err)
	require.Len(t, lines, 2)
	require.Equal(t, rules.Money(450150), lines[1].Amount)
	require.Equal(t, "02", lines[1].Level)
	sum, err := fsiclient.Total(fees)
	require.NoError(t, err)
	params := fsiclient.SettleParams{Insutype: "310", MedfeeSumamt: sum, UseAccount: true}
	pre, err := c.PreSettle(ctx, v, params)
	require.NoError(t, err)
	st, err := c.Settle(ctx, v, params)
	require.NoError(t, err)
	require.Equal(t, pre.Info.Setlinfo, st.Info.Setlinfo)
	require.Equal(t, sum, st.Info.MedfeeSumamt)
	require.Equal(t, st.Msgid, st.Info.MedinsSetlID)
	require.NotEmpty(t, st.Detail)

	rev, err := c.Cancel(ctx, st)
	require.NoError(t, err)
	require.Equal(t, -st.Info.MedfeeSumamt, rev.Info.MedfeeSumamt)
	st, err = c.Settle(ctx, v, params)
	require.NoError(t, err)

	// An admission with three daily uploads.
	adm, err := c.Admit(ctx, fsiclient.Registration{PsnNo: employee4, Insutype: "310", CertType: "03", CertNo: "159891542208",
		IptOtpNo: "ZY1", Begin: time.Date(2026, 3, 12, 9, 0, 0, 0, cst), DiseCodg: "I21.900", DiseName: "急性心肌梗死"})
	require.NoError(t, err)
	require.True(t, adm.Inpatient)
	var stay []fsiclient.Fee
	for d, code := range []string{"001102000010000", "XJ01DDA062B002010100345", "002303000010000"} {
		day := []fsiclient.Fee{{SN: "bed" + string(rune('1'+d)), Code: "001102000010000", Cnt: "1", Pric: "50"},
			{SN: "x" + string(rune('1'+d)), Code: code, Cnt: "2", Pric: "99.99"}}
		_, err := c.UploadFees(ctx, adm, "D"+string(rune('1'+d)), day)
		require.NoError(t, err)
		stay = append(stay, day...)
	}
	require.NoError(t, c.Discharge(ctx, adm, time.Date(2026, 3, 15, 9, 0, 0, 0, cst), "I21.900", "急性心肌梗死"))
	total, err := fsiclient.Total(stay)
	require.NoError(t, err)
	ist, err := c.Settle(ctx, adm, fsiclient.SettleParams{Insutype: "310", MedfeeSumamt: total})
	require.NoError(t, err)
	require.Equal(t, "21", ist.Info.MedType)

	// A pharmacy sale, and its reversal by 2601.
	pc := fsiclient.New(p.url, pharmacyKey, pharmacy)
	sale, err := pc.PharmacySettle(ctx, fsiclient.Sale{PsnNo: employee, Insutype: "310", UseAccount: true,
		Fees: []fsiclient.Fee{{SN: "1", Code: "XA10BAG046A001010100111", Cnt: "2", Pric: "62.70"}}})
	require.NoError(t, err)
	require.Equal(t, rules.Money(12540), sale.Info.MedfeeSumamt)
	rr, err := pc.Reverse(ctx, employee, sale.Msgid, "2102")
	require.NoError(t, err)
	require.Equal(t, "reversed", rr.Outcome)
	require.NotNil(t, rr.Setl)
	require.Equal(t, -sale.Info.MedfeeSumamt, rr.Setl.Info.MedfeeSumamt)

	// Totals: the hospital's two standing settlements (the cancelled one is out).
	tot := fsiclient.Totals{From: 20260301, To: 20260331, MedfeeSumamt: st.Info.MedfeeSumamt + ist.Info.MedfeeSumamt,
		FundPaySumamt: st.Info.FundPaySumamt + ist.Info.FundPaySumamt, AcctPay: st.Info.AcctPay + ist.Info.AcctPay, Count: 2}
	res, err := c.ReconcileTotals(ctx, tot)
	require.NoError(t, err)
	require.True(t, res.Match(), res.Dscr)
	bc := fsiclient.New(p.url, bureauKey, hospital)
	res, err = bc.ReconcileTotals(ctx, tot)
	require.NoError(t, err)
	require.True(t, res.Match(), res.Dscr)
	tot.Count = 3
	res, err = c.ReconcileTotals(ctx, tot)
	require.NoError(t, err)
	require.False(t, res.Match())

	// A bureau cannot settle.
	_, err = fsiclient.New(p.url, bureauKey, hospital).Settle(ctx, v, params)
	var rf *fsiclient.Refusal
	require.ErrorAs(t, err, &rf)
	require.Contains(t, rf.ErrMsg, "not open to a bureau key")
	p.auditOK()
}

// openVisit registers a visit with two lines and returns it with its settle parameters.
func openVisit(t *testing.T, c *fsiclient.Client) (fsiclient.Visit, fsiclient.SettleParams) {
	t.Helper()
	ctx := context.Background()
	v, err := c.RegisterOutpatient(ctx, fsiclient.Registration{PsnNo: employee, Insutype: "310", CertType: "03",
		CertNo: "157213070278", IptOtpNo: "MZ1", MedType: "11"})
	require.NoError(t, err)
	fees := []fsiclient.Fee{{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "30"}, {SN: "2", Code: "002302000010000", Cnt: "1", Pric: "280"}}
	_, err = c.UploadFees(ctx, v, "B1", fees)
	require.NoError(t, err)
	sum, err := fsiclient.Total(fees)
	require.NoError(t, err)
	return v, fsiclient.SettleParams{Insutype: "310", MedfeeSumamt: sum, UseAccount: true}
}

func TestLostAnswerIsReplayed(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]fault{"connection closed": dropAfter, "502": status502} {
		t.Run(name, func(t *testing.T) {
			p := newPlatform(t)
			c := fsiclient.New(p.url, hospitalKey, hospital, fsiclient.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
			v, params := openVisit(t, c)
			p.wrap.setPlan(func(infno string, n int) fault {
				if infno == "2207" && n == 1 {
					return f
				}
				return pass
			})
			st, err := c.Settle(context.Background(), v, params)
			require.NoError(t, err)
			require.Equal(t, 2, p.wrap.count("2207"))
			ids := p.wrap.msgids("2207")
			require.Equal(t, ids[0], ids[1], "the resend carries the same msgid")
			require.Equal(t, ids[0], st.Msgid)

			// The answer is the one the platform gave the first time, which the client never saw.
			var first struct {
				Output struct {
					Setlinfo struct {
						SetlID string `json:"setl_id"`
					} `json:"setlinfo"`
				} `json:"output"`
			}
			lost := p.wrap.lostAnswers()
			require.Len(t, lost, 1)
			require.NoError(t, json.Unmarshal([]byte(lost[0]), &first))
			require.Equal(t, first.Output.Setlinfo.SetlID, st.Info.SetlID)
			require.Equal(t, 1, p.count(`SELECT count(*) FROM settlements`), "exactly one settlement")
			require.Equal(t, 1, p.count(`SELECT count(*) FROM settlements WHERE setl_id = $1 AND status = 'settled'`, st.Info.SetlID))
			p.auditOK()
		})
	}
}

func TestNoAnswerIsReversed(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		fault   fault
		outcome string
	}{
		"processed, answer never comes": {hang, "reversed"},
		"never reaches the platform":    {dropBefore, "voided"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := newPlatform(t)
			c := fsiclient.New(p.url, hospitalKey, hospital, fsiclient.WithTimeout(400*time.Millisecond),
				fsiclient.WithAttempts(3), fsiclient.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
			v, params := openVisit(t, c)
			before := p.counters(employee)
			p.wrap.setPlan(func(infno string, n int) fault {
				if infno == "2207" {
					return tc.fault
				}
				return pass
			})
			_, err := c.Settle(context.Background(), v, params)
			var uo *fsiclient.UnknownOutcome
			require.ErrorAs(t, err, &uo)
			require.ErrorIs(t, err, fsiclient.ErrUnknownOutcome)
			require.ErrorIs(t, err, fsiclient.ErrReversed)
			require.True(t, uo.Reversed())
			require.Equal(t, tc.outcome, uo.Reversal.Outcome)
			require.Equal(t, 3, uo.Attempts)
			require.Equal(t, 3, p.wrap.count("2207"))
			ids := p.wrap.msgids("2207")
			require.Equal(t, []string{uo.Msgid, uo.Msgid, uo.Msgid}, ids, "every attempt is the same message")
			require.Equal(t, 1, p.wrap.count("2601"))
			require.Contains(t, err.Error(), "reversed by 2601")

			// Nothing stands: the settlement made is cancelled, or none was made.
			require.Zero(t, p.count(`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
			if tc.outcome == "reversed" {
				require.Equal(t, 1, p.count(`SELECT count(*) FROM settlements WHERE status = 'cancelled'`))
			} else {
				require.Zero(t, p.count(`SELECT count(*) FROM settlements`))
			}
			require.Equal(t, before, p.counters(employee), "counters as before")
			require.Equal(t, 1, p.count(`SELECT count(*) FROM messages WHERE msgid = $1 AND status = 'reversed'`, uo.Msgid))
			p.auditOK()

			// The visit is open: the counter settles it anew, with a new msgid, once the line is back.
			p.wrap.setPlan(nil)
			st, err := c.Settle(context.Background(), v, params)
			require.NoError(t, err)
			require.NotEqual(t, uo.Msgid, st.Msgid)
			require.Equal(t, 1, p.count(`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
			p.auditOK()
		})
	}
}

func TestReversalThatFailsIsReported(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	c := fsiclient.New(p.url, hospitalKey, hospital, fsiclient.WithTimeout(300*time.Millisecond),
		fsiclient.WithAttempts(2), fsiclient.WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	v, params := openVisit(t, c)
	p.wrap.setPlan(func(infno string, n int) fault {
		if infno == "2207" {
			return hang
		}
		return dropBefore // the line is down for the 2601 too
	})
	_, err := c.Settle(context.Background(), v, params)
	var uo *fsiclient.UnknownOutcome
	require.ErrorAs(t, err, &uo)
	require.False(t, uo.Reversed())
	require.NotErrorIs(t, err, fsiclient.ErrReversed)
	require.ErrorIs(t, err, fsiclient.ErrUnknownOutcome)
	require.Error(t, uo.Reversal.Err)
	require.Contains(t, err.Error(), "REVERSAL FAILED")
	require.Equal(t, 1, p.count(`SELECT count(*) FROM settlements WHERE status = 'settled'`), "the settlement stands for now")

	// Later, with the line back, the counter reverses it.
	p.wrap.setPlan(nil)
	rr, err := c.Reverse(context.Background(), employee, uo.Msgid, "2207")
	require.NoError(t, err)
	require.Equal(t, "reversed", rr.Outcome)
	require.Zero(t, p.count(`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
	p.auditOK()
}

func TestUnknownOutcomeMessage(t *testing.T) {
	e := &fsiclient.UnknownOutcome{Infno: "2207", Msgid: "M", Attempts: 3, Last: errors.New("timeout")}
	require.Contains(t, e.Error(), "not reversed")
	require.False(t, errors.Is(e, fsiclient.ErrReversed))
	e.Reversal = &fsiclient.Reversal{Msgid: "R", Outcome: "voided"}
	require.True(t, strings.Contains(e.Error(), "reversed by 2601 msgid R (voided)"))
	require.ErrorIs(t, e, fsiclient.ErrReversed)
}

// The platform says it cannot tell (its own time-out): CallSettle reverses, as the err_msg asks.
func TestPlatformUnknownOutcomeIsReversed(t *testing.T) {
	s := &stub{}
	s.answer = func(n int) (int, string) {
		if n == 1 {
			return http.StatusOK, `{"infcode": -1, "err_msg": "the platform did not finish in time; the outcome is unknown: reverse msgid X with 2601"}`
		}
		return http.StatusOK, `{"infcode": 0, "output": {"data": {"rslt": "reversed"}}}`
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var seen []fsiclient.Observation
	var mu sync.Mutex
	c := fsiclient.New(srv.URL, "k", hospital, fsiclient.WithObserver(func(o fsiclient.Observation) {
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
	}))
	_, err := c.CallSettle(context.Background(), "2207", employee, map[string]any{})
	var uo *fsiclient.UnknownOutcome
	require.ErrorAs(t, err, &uo)
	require.ErrorIs(t, err, fsiclient.ErrReversed)
	var rf *fsiclient.Refusal
	require.ErrorAs(t, err, &rf, "the platform's answer is kept as the cause")
	require.True(t, rf.OutcomeUnknown())
	require.Len(t, s.got(), 2)
	var rev struct {
		Infno string `json:"infno"`
		Input struct {
			Data map[string]string `json:"data"`
		} `json:"input"`
	}
	require.NoError(t, json.Unmarshal(s.got()[1], &rev))
	require.Equal(t, "2601", rev.Infno)
	require.Equal(t, map[string]string{"psn_no": employee, "omsgid": uo.Msgid, "oinfno": "2207"}, rev.Input.Data)
	require.Len(t, seen, 2)
	require.Equal(t, "2207", seen[0].Infno)
	require.Equal(t, "2601", seen[1].Infno)
	require.NoError(t, seen[1].Err)

	// Not for a message 2601 cannot undo: the refusal is returned as it is.
	s.set(func(int) (int, string) {
		return http.StatusOK, `{"infcode": -1, "err_msg": "internal error (msgid X); the outcome is unknown: reverse it with 2601"}`
	})
	_, err = c.CallSettle(context.Background(), "2208", employee, map[string]any{})
	require.ErrorAs(t, err, &rf)
	require.NotErrorIs(t, err, fsiclient.ErrUnknownOutcome)
	require.Len(t, s.got(), 3, "no 2601 for a 2208")
	require.False(t, fsiclient.Reversible("2208"))
	require.True(t, fsiclient.Reversible("2102"))
}
