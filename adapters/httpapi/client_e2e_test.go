package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/adapters/fsi/client"
	"github.com/medsettle/medsettle/rules"
)

// The integrators' client (adapters/fsi/client) against the real server,
// engine and PostgreSQL, through a proxy that loses answers (proxy_test.go).

// newClient is a client of the platform at url for inst with key.
func newClient(t *testing.T, url, key, inst string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, key, inst, opts...)
	require.NoError(t, err)
	return c
}

// amounts is a setlinfo without what names one settlement (its ids and
// time), so that a pre-settlement and its settlement compare.
func amounts(i fsi.Setlinfo) fsi.Setlinfo {
	i.SetlID, i.SetlTime, i.MedinsSetlID = "", "", ""
	return i
}

func TestHelpersFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, url := newFaulty(t, e)
	ctx := context.Background()
	// Three clients of the hospital (its own key, and the bureau's twice):
	// each its own terminal, so that their msgids never meet.
	c := newClient(t, url, e.keys[hohhotHospital], hohhotHospital, client.WithTerminal(0, 3))

	who, err := c.Person(ctx, "03", "157213070278")
	require.NoError(t, err)
	require.Equal(t, employee, who.PsnNo)
	require.Equal(t, "310", who.Insutype)
	require.Equal(t, fsi.Money(488269), who.Balc)
	_, err = c.Person(ctx, "02", "150100200909167449")
	require.NoError(t, err)

	v, err := c.RegisterOutpatient(ctx, client.Registration{PsnNo: employee, Insutype: "310", CertType: "03",
		CertNo: "157213070278", IptOtpNo: "MZ1", MedType: "11"})
	require.NoError(t, err)
	fees := []client.Fee{{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "30"},
		{SN: "2", Code: "XJ01DDA062B002010100345", Cnt: "3", Pric: "1500.5"}}
	lines, err := c.UploadFees(ctx, v, "B1", fees)
	require.NoError(t, err)
	require.Len(t, lines, 2)
	require.Equal(t, fsi.Money(450150), lines[1].DetItemFeeSumamt)
	require.Equal(t, "02", lines[1].ChrgitmLv)
	sum, err := client.Total(fees)
	require.NoError(t, err)
	params := client.SettleParams{Insutype: "310", MedfeeSumamt: sum, UseAccount: true}
	pre, err := c.PreSettle(ctx, v, params)
	require.NoError(t, err)
	st, err := c.Settle(ctx, v, params)
	require.NoError(t, err)
	require.Equal(t, amounts(pre.Setlinfo), amounts(st.Setlinfo))
	require.Equal(t, sum, st.Setlinfo.MedfeeSumamt)
	require.Equal(t, st.Msgid, st.Setlinfo.MedinsSetlID)
	require.NotEmpty(t, st.Setldetail)

	rev, err := c.Cancel(ctx, st)
	require.NoError(t, err)
	require.Equal(t, -st.Setlinfo.MedfeeSumamt, rev.Setlinfo.MedfeeSumamt)
	st, err = c.Settle(ctx, v, params)
	require.NoError(t, err)

	ist := admitAndSettle(t, c)

	// A pharmacy sale, and its reversal by 2601.
	pc := newClient(t, url, e.keys[hohhotPharmacy], hohhotPharmacy)
	sale, err := pc.PharmacySettle(ctx, client.Sale{PsnNo: employee, Insutype: "310", UseAccount: true,
		Fees: []client.Fee{{SN: "1", Code: "XA10BAG046A001010100111", Cnt: "2", Pric: "62.70"}}})
	require.NoError(t, err)
	require.Equal(t, fsi.Money(12540), sale.Setlinfo.MedfeeSumamt)
	rr, err := pc.Reverse(ctx, employee, sale.Msgid, "2102")
	require.NoError(t, err)
	require.Equal(t, "reversed", rr.Outcome)
	require.NotNil(t, rr.Setl)
	require.Equal(t, -sale.Setlinfo.MedfeeSumamt, rr.Setl.Setlinfo.MedfeeSumamt)

	// Totals: the hospital's two standing settlements (the cancelled one is out).
	tot := client.Totals{From: time.Date(2026, 3, 1, 0, 0, 0, 0, rules.CST), To: time.Date(2026, 3, 31, 0, 0, 0, 0, rules.CST),
		MedfeeSumamt: st.Setlinfo.MedfeeSumamt + ist.Setlinfo.MedfeeSumamt, Count: 2,
		FundPaySumamt: st.Setlinfo.FundPaySumamt + ist.Setlinfo.FundPaySumamt, AcctPay: st.Setlinfo.AcctPay + ist.Setlinfo.AcctPay}
	res, err := c.ReconcileTotals(ctx, tot)
	require.NoError(t, err)
	require.True(t, res.Match(), res.StmtRsltDscr)
	bc := newClient(t, url, e.keys["bureau:150100"], hohhotHospital, client.WithTerminal(1, 3))
	res, err = bc.ReconcileTotals(ctx, tot)
	require.NoError(t, err)
	require.True(t, res.Match(), res.StmtRsltDscr)
	tot.Count = 3
	res, err = c.ReconcileTotals(ctx, tot)
	require.NoError(t, err)
	require.False(t, res.Match())

	// A bureau cannot settle.
	_, err = newClient(t, url, e.keys["bureau:150100"], hohhotHospital, client.WithTerminal(2, 3)).Settle(ctx, v, params)
	var rf *client.Refusal
	require.ErrorAs(t, err, &rf)
	require.Contains(t, rf.ErrMsg, "not open to a bureau key")
	e.auditOK()
}

// admitAndSettle is an admission with three daily uploads, discharged and settled.
func admitAndSettle(t *testing.T, c *client.Client) *client.Settlement {
	t.Helper()
	ctx := context.Background()
	adm, err := c.Admit(ctx, client.Registration{PsnNo: employee4, Insutype: "310", CertType: "03", CertNo: "159891542208",
		IptOtpNo: "ZY1", Begin: time.Date(2026, 3, 12, 9, 0, 0, 0, rules.CST), DiseCodg: "I21.900", DiseName: "急性心肌梗死"})
	require.NoError(t, err)
	require.True(t, adm.Inpatient)
	var stay []client.Fee
	for d, code := range []string{"001102000010000", "XJ01DDA062B002010100345", "002303000010000"} {
		day := []client.Fee{{SN: "bed" + string(rune('1'+d)), Code: "001102000010000", Cnt: "1", Pric: "50"},
			{SN: "x" + string(rune('1'+d)), Code: code, Cnt: "2", Pric: "99.99"}}
		_, err := c.UploadFees(ctx, adm, "D"+string(rune('1'+d)), day)
		require.NoError(t, err)
		stay = append(stay, day...)
	}
	require.NoError(t, c.Discharge(ctx, adm, time.Date(2026, 3, 15, 9, 0, 0, 0, rules.CST), "I21.900", "急性心肌梗死"))
	sum, err := client.Total(stay)
	require.NoError(t, err)
	ist, err := c.Settle(ctx, adm, client.SettleParams{Insutype: "310", MedfeeSumamt: sum})
	require.NoError(t, err)
	require.Equal(t, "21", ist.Setlinfo.MedType)
	return ist
}

// openVisit registers a visit with two lines and returns it with its settle parameters.
func openVisit(t *testing.T, c *client.Client) (client.Visit, client.SettleParams) {
	t.Helper()
	ctx := context.Background()
	v, err := c.RegisterOutpatient(ctx, client.Registration{PsnNo: employee, Insutype: "310", CertType: "03",
		CertNo: "157213070278", IptOtpNo: "MZ1", MedType: "11"})
	require.NoError(t, err)
	fees := []client.Fee{{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "30"}, {SN: "2", Code: "002302000010000", Cnt: "1", Pric: "280"}}
	_, err = c.UploadFees(ctx, v, "B1", fees)
	require.NoError(t, err)
	sum, err := client.Total(fees)
	require.NoError(t, err)
	return v, client.SettleParams{Insutype: "310", MedfeeSumamt: sum, UseAccount: true}
}

func TestLostAnswerIsReplayed(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]fault{"connection closed": dropAfter, "502": status502} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			proxy, url := newFaulty(t, e)
			c := newClient(t, url, e.keys[hohhotHospital], hohhotHospital, client.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
			v, params := openVisit(t, c)
			proxy.setPlan(func(infno string, n int) fault {
				if infno == "2207" && n == 1 {
					return f
				}
				return pass
			})
			st, err := c.Settle(context.Background(), v, params)
			require.NoError(t, err)
			require.Equal(t, 2, proxy.count("2207"))
			ids := proxy.msgids("2207")
			require.Equal(t, ids[0], ids[1], "the resend carries the same msgid")
			require.Equal(t, ids[0], st.Msgid)

			// The answer is the one the platform gave the first time, which the client never saw.
			lost := proxy.lostAnswers()
			require.Len(t, lost, 1)
			var first fsi.Answer
			require.NoError(t, json.Unmarshal([]byte(lost[0]), &first))
			var out fsi.SettleOutput
			require.NoError(t, first.Decode(&out))
			require.Equal(t, out.Setlinfo.SetlID, st.Setlinfo.SetlID)
			require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements`), "exactly one settlement")
			require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements WHERE setl_id = $1 AND status = 'settled'`, st.Setlinfo.SetlID))
			e.auditOK()
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
			e := newEnv(t)
			proxy, url := newFaulty(t, e)
			c := newClient(t, url, e.keys[hohhotHospital], hohhotHospital, client.WithTimeout(400*time.Millisecond),
				client.WithAttempts(3), client.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
			v, params := openVisit(t, c)
			before := e.counters(hohhotHospital, employee)
			proxy.setPlan(func(infno string, n int) fault {
				if infno == "2207" {
					return tc.fault
				}
				return pass
			})
			_, err := c.Settle(context.Background(), v, params)
			var uo *client.UnknownOutcome
			require.ErrorAs(t, err, &uo)
			require.ErrorIs(t, err, client.ErrUnknownOutcome)
			require.ErrorIs(t, err, client.ErrReversed)
			require.True(t, uo.Reversed())
			require.Equal(t, tc.outcome, uo.Reversal.Outcome)
			require.Equal(t, 3, uo.Attempts)
			require.Equal(t, 3, proxy.count("2207"))
			ids := proxy.msgids("2207")
			require.Equal(t, []string{uo.Msgid, uo.Msgid, uo.Msgid}, ids, "every attempt is the same message")
			require.Equal(t, 1, proxy.count("2601"))
			require.Contains(t, err.Error(), "reversed by 2601")

			// Nothing stands: the settlement made is cancelled, or none was made.
			require.Zero(t, e.count(`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
			if tc.outcome == "reversed" {
				require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements WHERE status = 'cancelled'`))
			} else {
				require.Zero(t, e.count(`SELECT count(*) FROM settlements`))
			}
			require.Equal(t, before, e.counters(hohhotHospital, employee), "counters as before")
			require.Equal(t, 1, e.count(`SELECT count(*) FROM messages WHERE msgid = $1 AND status = 'reversed'`, uo.Msgid))
			e.auditOK()

			// The visit is open: the counter settles it anew, with a new msgid, once the line is back.
			proxy.setPlan(nil)
			st, err := c.Settle(context.Background(), v, params)
			require.NoError(t, err)
			require.NotEqual(t, uo.Msgid, st.Msgid)
			require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
			e.auditOK()
		})
	}
}

func TestReversalThatFailsIsReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy, url := newFaulty(t, e)
	c := newClient(t, url, e.keys[hohhotHospital], hohhotHospital, client.WithTimeout(300*time.Millisecond),
		client.WithAttempts(2), client.WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	v, params := openVisit(t, c)
	proxy.setPlan(func(infno string, n int) fault {
		if infno == "2207" {
			return hang
		}
		return dropBefore // the line is down for the 2601 too
	})
	_, err := c.Settle(context.Background(), v, params)
	var uo *client.UnknownOutcome
	require.ErrorAs(t, err, &uo)
	require.False(t, uo.Reversed())
	require.NotErrorIs(t, err, client.ErrReversed)
	require.ErrorIs(t, err, client.ErrUnknownOutcome)
	require.Error(t, uo.Reversal.Err)
	require.Contains(t, err.Error(), "REVERSAL FAILED")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM settlements WHERE status = 'settled'`), "the settlement stands for now")

	// Later, with the line back, the counter reverses it.
	proxy.setPlan(nil)
	rr, err := c.Reverse(context.Background(), employee, uo.Msgid, "2207")
	require.NoError(t, err)
	require.Equal(t, "reversed", rr.Outcome)
	require.Zero(t, e.count(`SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
	e.auditOK()
}
