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
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// A Wuhan resident is treated in Hohhot and a Harbin retiree in Wuhan, each
// settled by the insured province over the hub, over HTTP.
func TestCrossProvinceOverHTTP(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	hoh, wuh, hrb := w.prov[hohhot], w.prov[wuhan], w.prov[harbin]

	// A Wuhan resident at a Hohhot hospital: Wuhan's policy and counters.
	mdtrt := w.visit(t, hoh, hohhotHosp, wuhanResident)
	pre, err := hoh.engine.PreSettle(ctx, hohhotHosp, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
	require.NoError(t, err)
	m1 := pgfixture.Msg(hohhotHosp, "2207")
	a, err := hoh.engine.Settle(ctx, m1, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
	require.NoError(t, err)
	require.Equal(t, pre.Info, a.Info)
	require.Equal(t, "420100", a.ClrOptins)
	require.True(t, a.Info.FundPaySumamt > 0, "the fund pays something: %+v", a.Info)
	require.Equal(t, a.Info.HifpPay, counters(t, wuh, wuhanResident).FundPaidOutpatient)
	require.Equal(t, 0, count(t, hoh, `SELECT count(*) FROM person_counters`), "the treatment side keeps no counters of the person")
	require.Equal(t, a.Info.FundPaySumamt, balance(t, hoh, settlement.ClearingAccount(wuhan)), "Hohhot's receivable from Hubei")
	require.Equal(t, -a.Info.FundPaySumamt, balance(t, wuh, settlement.ClearingAccount(hohhot)), "Hubei's payable to Hohhot")

	// A Harbin retiree at a Wuhan hospital: Wuhan is now the treatment side.
	mdtrt2 := w.visit(t, wuh, wuhanHosp, harbinRetiree)
	before := counters(t, hrb, harbinRetiree)
	b, err := wuh.engine.Settle(ctx, pgfixture.Msg(wuhanHosp, "2207"), settlement.SettleInput{MdtrtID: mdtrt2, PsnNo: harbinRetiree})
	require.NoError(t, err)
	require.Equal(t, "230100", b.ClrOptins)
	after := counters(t, hrb, harbinRetiree)
	require.Equal(t, before.FundPaidOutpatient+b.Info.HifpPay, after.FundPaidOutpatient)
	require.Equal(t, 0, count(t, wuh, `SELECT count(*) FROM person_counters WHERE psn_no = $1`, harbinRetiree))
	require.Equal(t, b.Info.FundPaySumamt, balance(t, wuh, settlement.ClearingAccount(harbin)))

	require.Equal(t, map[pair]int{{hohhot, wuhan}: 1, {wuhan, harbin}: 1}, w.agree(t))
	require.Equal(t, []string{"settle 150000→420000 none: ok"}, w.records(t, m1.ID), "the hub's own record")

	// Cancelling at the Wuhan counter reverses the Harbin side first.
	_, err = wuh.engine.Cancel(ctx, pgfixture.Msg(wuhanHosp, "2208"), settlement.CancelInput{SetlID: b.SetlID})
	require.NoError(t, err)
	require.Equal(t, before, counters(t, hrb, harbinRetiree))
	require.Equal(t, map[pair]int{{hohhot, wuhan}: 1}, w.agree(t))
	require.Equal(t, rules.Money(0), balance(t, wuh, settlement.ClearingAccount(harbin)))
}

// Each fault, injected through the hub's admin endpoint, ends with both
// sides agreeing and the person's counters at the insured side as if one
// settlement (or none) had happened.
func TestHubFaultsOverHTTP(t *testing.T) {
	cases := []struct {
		name         string
		faults       []string
		failReverses int
		opts         worldOptions
		records      []string // the hub's record of the failed message
	}{
		{name: "drop-request", faults: []string{"drop-request"},
			records: []string{"reverse 150000→420000 none: ok", "settle 150000→420000 drop-request: dropped"}},
		{name: "drop-answer", faults: []string{"drop-answer"},
			records: []string{"reverse 150000→420000 none: ok", "settle 150000→420000 drop-answer: answer dropped after ok"}},
		{name: "drop-answer, then the reversal fails twice", faults: []string{"drop-answer"}, failReverses: 2,
			records: []string{"reverse 150000→420000 none: dropped", "reverse 150000→420000 none: dropped", "reverse 150000→420000 none: ok",
				"settle 150000→420000 drop-answer: answer dropped after ok"}},
		// The client gives up after 1 s (the hub would after 1.5 s); the hub
		// delivers after 3 s, to a message the reversal has already voided.
		{name: "delay", faults: []string{"delay"}, opts: worldOptions{clientTimeout: time.Second, delayBy: 3 * time.Second},
			records: []string{"reverse 150000→420000 none: ok", "settle 150000→420000 delay: delivered late: refused: settlement: conflict: msgid %s was reversed (2601) and never takes effect",
				"settle 150000→420000 delay: timed out"}},
		{name: "duplicate", faults: []string{"duplicate"}, records: []string{"settle 150000→420000 duplicate: delivered twice: ok, ok"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.opts)
			hoh, wuh := w.prov[hohhot], w.prov[wuhan]
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			mdtrt := w.visit(t, hoh, hohhotHosp, wuhanResident)
			require.NoError(t, w.admin.Inject(ctx, tc.failReverses, tc.faults...))
			m := pgfixture.Msg(hohhotHosp, "2207")
			start := time.Now()
			a, err := hoh.engine.Settle(ctx, m, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
			took := time.Since(start)
			for i, r := range tc.records {
				if strings.Contains(r, "%s") {
					tc.records[i] = strings.ReplaceAll(r, "%s", m.ID)
				}
			}
			if tc.name == "duplicate" {
				require.NoError(t, err)
				require.Equal(t, map[pair]int{{hohhot, wuhan}: 1}, w.agree(t))
				require.Equal(t, a.Info.HifpPay, counters(t, wuh, wuhanResident).FundPaidOutpatient, "one settlement's worth")
				require.Equal(t, tc.records, w.records(t, m.ID))
				return
			}
			require.Error(t, err)
			require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "%v", err)
			if tc.name == "delay" {
				require.Less(t, took, tc.opts.delayBy/2, "the client timed out before the hub gave up")
			}
			require.Equal(t, map[pair]int{}, w.agree(t))
			require.Equal(t, rules.Counters{}, counters(t, wuh, wuhanResident), "no settlement stands, so no counter moved")
			require.Equal(t, tc.records, w.records(t, m.ID))

			// The same msgid again is refused; a new one settles.
			_, err = hoh.engine.Settle(ctx, m, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
			require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "%v", err)
			a, err = hoh.engine.Settle(ctx, pgfixture.Msg(hohhotHosp, "2207"), settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
			require.NoError(t, err)
			require.Equal(t, map[pair]int{{hohhot, wuhan}: 1}, w.agree(t))
			require.Equal(t, a.Info.HifpPay, counters(t, wuh, wuhanResident).FundPaidOutpatient, "one settlement's worth")
		})
	}
}

func post(t *testing.T, url, token string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Wrong tokens are refused everywhere, and a province cannot send as another.
func TestAuthOverHTTP(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	hoh, wuh, hrb := w.prov[hohhot], w.prov[wuhan], w.prov[harbin]
	mdtrt := w.visit(t, hoh, hohhotHosp, wuhanResident)
	in := settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident}

	t.Run("a wrong province token is a refusal, not an unknown outcome", func(t *testing.T) {
		bad := *hoh.engine
		bad.Hub = &hubhttp.Client{URL: w.hubURL, Province: hohhot, Token: "not-the-right-token-at-all"}
		m := pgfixture.Msg(hohhotHosp, "2207")
		_, err := bad.Settle(ctx, m, in)
		require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%v", err)
		// Another province's token, or the right token under another province's name.
		for _, c := range []*hubhttp.Client{
			{URL: w.hubURL, Province: hohhot, Token: provinceToken(wuhan)},
			{URL: w.hubURL, Province: harbin, Token: provinceToken(hohhot)},
			{URL: w.hubURL, Province: hohhot, Token: peerToken(hohhot)},
			{URL: w.hubURL, Province: hohhot, Token: adminToken},
			{URL: w.hubURL, Province: hohhot},
		} {
			bad.Hub = c
			_, err = bad.Settle(ctx, pgfixture.Msg(hohhotHosp, "2207"), in)
			require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%+v: %v", c, err)
		}
		require.Empty(t, w.records(t, m.ID), "nothing reached the hub's routing")
		require.Equal(t, map[pair]int{}, w.agree(t))
	})

	// The visit is still open: the right token settles it.
	m := pgfixture.Msg(hohhotHosp, "2207")
	a, err := hoh.engine.Settle(ctx, m, in)
	require.NoError(t, err)
	require.Equal(t, map[pair]int{{hohhot, wuhan}: 1}, w.agree(t))
	settled := counters(t, wuh, wuhanResident)
	require.Equal(t, a.Info.HifpPay, settled.FundPaidOutpatient)

	t.Run("a province cannot send as another", func(t *testing.T) {
		// Harbin, with its own valid credentials, tries to undo Hohhot's settlement.
		// (A reversal turned away by the hub is an internal error, to be
		// retried, never a refusal that would stop a Reverser for good.)
		rev := settlement.RemoteReverse{Msgid: m.ID, Institution: hohhotHosp, InsuredRegion: "420100", TreatmentProvince: hohhot, PsnNo: wuhanResident}
		_, err := hrb.client.Reverse(ctx, rev)
		turnedAway(t, err, "403 Forbidden")
		rev.TreatmentProvince = harbin
		_, err = hrb.client.Reverse(ctx, rev)
		turnedAway(t, err, "403 Forbidden")
		// Nor settle under Hohhot's name or one of its institutions.
		claim := settlement.RemoteClaim{Msgid: "H1501000001120260315100000", TreatmentProvince: hohhot, Institution: hohhotHosp,
			InstitutionRegion: "150100", InsuredRegion: "420100", PsnNo: wuhanResident, MdtrtID: mdtrt, MedType: "11", SetlTime: time.Now()}
		_, err = hrb.client.Settle(ctx, claim)
		require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%v", err)
		claim.TreatmentProvince = harbin
		_, err = hrb.client.Settle(ctx, claim)
		require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%v", err)
		claim.Institution, claim.InstitutionRegion = harbinHosp, "150100" // a Harbin hospital claiming a Hohhot region
		_, err = hrb.client.Settle(ctx, claim)
		require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%v", err)

		require.Equal(t, []string{"settle 150000→420000 none: ok"}, w.records(t, m.ID), "only Hohhot's own settlement reached Hubei")
		require.Equal(t, settled, counters(t, wuh, wuhanResident))
		require.Equal(t, map[pair]int{{hohhot, wuhan}: 1}, w.agree(t))
	})

	t.Run("a province's peer endpoint wants the hub's token", func(t *testing.T) {
		body := `{"omsgid":"` + m.ID + `","fixmedins_code":"` + hohhotHosp + `","insuplc_admdvs":"420100","treatment_province":"150000","psn_no":"` + wuhanResident + `"}`
		for _, tok := range []string{"", provinceToken(hohhot), peerToken(hohhot), peerToken(wuhan) + "x", adminToken} {
			code, _ := post(t, wuh.peer.URL+hubhttp.PeerReversePath, tok, nil, body)
			require.Equal(t, http.StatusUnauthorized, code, "token %q", tok)
		}
		require.Equal(t, settled, counters(t, wuh, wuhanResident), "nobody but the hub reverses")

		// A hub that presents the wrong token gets a refusal: nothing happened.
		w.sim.Register(wuhan, &hubhttp.PeerClient{URL: wuh.peer.URL, Token: peerToken(hohhot)})
		mdtrt2 := w.visit(t, hoh, hohhotHosp, wuhanResident)
		_, err := hoh.engine.Settle(ctx, pgfixture.Msg(hohhotHosp, "2207"), settlement.SettleInput{MdtrtID: mdtrt2, PsnNo: wuhanResident})
		require.Equal(t, settlement.EFORBIDDEN, settlement.ErrorCode(err), "%v", err)
		require.Equal(t, settled, counters(t, wuh, wuhanResident))
		require.NoError(t, w.hub.Connect(wuhan, wuh.peer.URL))
		_, err = hoh.engine.Settle(ctx, pgfixture.Msg(hohhotHosp, "2207"), settlement.SettleInput{MdtrtID: mdtrt2, PsnNo: wuhanResident})
		require.NoError(t, err)
		require.Equal(t, map[pair]int{{hohhot, wuhan}: 2}, w.agree(t))
	})

	t.Run("the admin endpoints want the admin token", func(t *testing.T) {
		for _, tok := range []string{"", provinceToken(hohhot), peerToken(hohhot), adminToken + "x"} {
			code, _ := post(t, w.hubURL+hubhttp.FaultsPath, tok, nil, `{"faults":["drop-answer"]}`)
			require.Equal(t, http.StatusUnauthorized, code, "token %q", tok)
			_, err := (&hubhttp.Admin{URL: w.hubURL, Token: tok}).Records(ctx, "")
			require.ErrorContains(t, err, "401", "token %q", tok)
		}
		code, body := post(t, w.hubURL+hubhttp.FaultsPath, adminToken, nil, `{"faults":["drop-everything"]}`)
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "unknown fault")
		recs, err := w.admin.Records(ctx, "")
		require.NoError(t, err)
		require.NotEmpty(t, recs)
	})

	t.Run("a province endpoint of the hub wants the province header", func(t *testing.T) {
		code, _ := post(t, w.hubURL+hubhttp.ReversePath, provinceToken(hohhot), nil, `{}`)
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = post(t, w.hubURL+hubhttp.ReversePath, provinceToken(hohhot), map[string]string{hubhttp.ProvinceHeader: hohhot}, `{"omsgid":`)
		require.Equal(t, http.StatusBadRequest, code)
	})
}

// turnedAway checks a reversal the hub (or a province endpoint) turned away:
// not done, not unknown, and not a refusal code a Reverser would give up on.
func turnedAway(t *testing.T, err error, status string) {
	t.Helper()
	require.Error(t, err)
	require.NotErrorIs(t, err, settlement.ErrUnknownOutcome)
	require.Equal(t, settlement.EINTERNAL, settlement.ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, status)
}

// The clearing's steps, called over HTTP as the hub's workflow calls them:
// the receivables close, the advance fund pays exactly what was confirmed,
// a repeated posting pays nothing more, and every audit stays clean.
func TestClearingOverHTTP(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	hoh, wuh := w.prov[hohhot], w.prov[wuhan]
	for i := 0; i < 2; i++ {
		mdtrt := w.visit(t, hoh, hohhotHosp, wuhanResident)
		_, err := hoh.engine.Settle(ctx, pgfixture.Msg(hohhotHosp, "2207"), settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
		require.NoError(t, err)
	}
	owed := balance(t, hoh, settlement.ClearingAccount(wuhan))
	require.Positive(t, owed)

	peers := map[string]*hubhttp.PeerClient{}
	for code, p := range w.prov {
		peers[code] = &hubhttp.PeerClient{URL: p.peer.URL, Token: peerToken(code)}
	}
	sts, err := peers[hohhot].Statements(ctx, "2026-03")
	require.NoError(t, err)
	require.Len(t, sts, 1)
	st := sts[0]
	require.Equal(t, wuhan, st.Insured)
	require.Equal(t, owed, st.Total)

	verdicts, err := peers[wuhan].Confirm(ctx, st)
	require.NoError(t, err)
	require.Len(t, verdicts, 2)
	for _, v := range verdicts {
		require.True(t, v.Confirmed, v.Reason)
	}
	for round := 0; round < 2; round++ { // the second round is a retried activity
		paid, err := peers[wuhan].PostPayment(ctx, st, verdicts)
		require.NoError(t, err)
		require.Equal(t, owed, paid)
		got, err := peers[hohhot].PostReceipt(ctx, st, verdicts)
		require.NoError(t, err)
		require.Equal(t, owed, got)
	}
	require.Equal(t, rules.Money(0), balance(t, hoh, settlement.ClearingAccount(wuhan)), "the receivable is closed")
	require.Equal(t, rules.Money(0), balance(t, wuh, settlement.ClearingAccount(hohhot)), "the payable is closed")
	require.Equal(t, -owed, balance(t, wuh, settlement.AdvanceAccount(hohhot)), "paid once out of the advance")
	topUp, err := peers[wuhan].TopUp(ctx, "2026-03", hohhot, 5000)
	require.NoError(t, err)
	require.Equal(t, 2*owed, topUp, "back up to one month's average")
	for _, p := range w.prov {
		rep, err := p.store.Audit(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "%s: %v", p.code, rep.Problems)
	}

	// The hub's token is required here too.
	_, err = (&hubhttp.PeerClient{URL: wuh.peer.URL, Token: "not-the-hub-token-at-all"}).Statements(ctx, "2026-03")
	require.Error(t, err)
}

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
