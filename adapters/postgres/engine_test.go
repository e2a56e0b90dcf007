package postgres_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// A seeded employee of Hohhot (310, account 4882.69, 备案 to 230200).
const (
	hohhotEmployee = "15010000000000000001"
	hohhotHospital = "H15010000011" // level 3, region 150100
	hohhotClinic   = "H15010000105" // level 1
	hohhotPharmacy = "P15010000201"
)

func TestOutpatientFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11",
		line("1", "001101000010000", "1", "30.00", "30.00"),
		line("2", "XJ01DDA062B002010100345", "3", "1500.5", "4501.50"), // 乙类, self-pay-first 0.10
		line("3", "001103000010000", "1", "200", "200.00"))             // 丙类: all self-paid

	in := settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee, MedfeeSumamt: "4731.50", UseAccount: true}
	before := e.rowCounts(t)
	pre, err := e.engine.PreSettle(ctx, hohhotHospital, in)
	require.NoError(t, err)
	require.Equal(t, before, e.rowCounts(t), "pre-settlement writes nothing")

	msg := pgfixture.Msg(hohhotHospital, "2207")
	got, err := e.engine.Settle(ctx, msg, in)
	require.NoError(t, err)
	require.Equal(t, pre.Info, got.Info, "settlement equals its pre-settlement")

	// The amounts are those of the pure pricing function for the same claim.
	want := priceDirect(t, e, &rules.Claim{InsuredRegion: "150100", Institution: hohhotHospital, MedType: "11",
		SetlDate: settlement.DateOf(e.clock.Now()), Insutype: "310", UseAccount: true,
		State: rules.Counters{AcctBalc: 488269},
		Lines: []rules.Line{decLine("1", "001101000010000", "1", "30.00", "30.00"),
			decLine("2", "XJ01DDA062B002010100345", "3", "1500.5", "4501.50"),
			decLine("3", "001103000010000", "1", "200", "200.00")}})
	require.Equal(t, want.Setlinfo, got.Info)
	require.Equal(t, "4731.50", got.Info.MedfeeSumamt.String())
	require.Equal(t, got.Info.MedfeeSumamt, got.Info.FundPaySumamt+got.Info.AcctPay+got.Info.PsnCashPay)

	// The same message again: the first answer, nothing written twice.
	afterSettle := e.rowCounts(t)
	again, err := e.engine.Settle(ctx, msg, in)
	require.NoError(t, err)
	require.Equal(t, got, again)
	require.Equal(t, afterSettle, e.rowCounts(t))

	// The same msgid with another body is refused.
	other := msg
	other.Digest = "another body"
	_, err = e.engine.Settle(ctx, other, in)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err))

	// Settling the settled visit again under a new msgid is refused.
	_, err = e.engine.Settle(ctx, pgfixture.Msg(hohhotHospital, "2207"), in)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err))

	counters, err := e.engine.YearCountersOf(ctx, hohhotEmployee, 2026)
	require.NoError(t, err)
	require.Equal(t, want.After, counters)

	// Cancel: a reversal with every amount negated, counters back where they were.
	rev, err := e.engine.Cancel(ctx, pgfixture.Msg(hohhotHospital, "2208"), settlement.CancelInput{SetlID: got.SetlID, MdtrtID: mdtrt, PsnNo: hohhotEmployee})
	require.NoError(t, err)
	require.Equal(t, got.SetlID, rev.Reverses)
	require.Equal(t, -got.Info.MedfeeSumamt, rev.Info.MedfeeSumamt)
	require.Equal(t, -got.Info.AcctPay, rev.Info.AcctPay)
	counters, err = e.engine.YearCountersOf(ctx, hohhotEmployee, 2026)
	require.NoError(t, err)
	require.Equal(t, rules.Counters{AcctBalc: 488269}, counters)

	_, err = e.engine.Cancel(ctx, pgfixture.Msg(hohhotHospital, "2208"), settlement.CancelInput{SetlID: got.SetlID})
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "a settlement is cancelled once")

	// The visit is open again and can be settled anew.
	again2, err := e.engine.Settle(ctx, pgfixture.Msg(hohhotHospital, "2207"), in)
	require.NoError(t, err)
	require.Equal(t, got.Info, again2.Info)

	rep := e.audit(t)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.Equal(t, 3, rep.Settlements)
	require.Equal(t, 3, rep.Txns)
	require.Equal(t, 3, e.count(t, "outbox_events"))
}

func TestOtherInstitutionCannotTouchAVisit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11", line("1", "001101000010000", "1", "30.00", "30.00"))
	before := e.rowCounts(t)
	_, err := e.engine.Settle(ctx, pgfixture.Msg(hohhotClinic, "2207"), settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee})
	require.Equal(t, settlement.ENOTFOUND, settlement.ErrorCode(err))
	_, err = e.engine.UploadLines(ctx, pgfixture.Msg(hohhotClinic, "2204"), mdtrt, hohhotEmployee, []settlement.LineInput{line("9", "001101000010000", "1", "1", "1.00")})
	require.Equal(t, settlement.ENOTFOUND, settlement.ErrorCode(err))
	require.Equal(t, before, e.rowCounts(t))
}

func TestRefusalsWriteNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11", line("1", "001101000010000", "1", "30.00", "30.00"))
	// Each refused call is made when its case runs, with a fresh msgid.
	upload := func(l settlement.LineInput) func() error {
		return func() error {
			_, err := e.engine.UploadLines(ctx, pgfixture.Msg(hohhotHospital, "2204"), mdtrt, hohhotEmployee, []settlement.LineInput{l})
			return err
		}
	}
	settle := func(in settlement.SettleInput) func() error {
		return func() error {
			_, err := e.engine.Settle(ctx, pgfixture.Msg(hohhotHospital, "2207"), in)
			return err
		}
	}
	cases := []struct {
		name string
		run  func() error
		rule string
	}{
		{"three decimals", upload(line("2", "001101000010000", "1", "30.00", "30.001")), rules.CodeInvalidAmount},
		{"amount is not cnt*pric", upload(line("2", "001101000010000", "2", "30.00", "30.00")), rules.CodeAmountMismatch},
		{"feedetl_sn already uploaded", upload(line("1", "001101000010000", "1", "30.00", "30.00")), rules.CodeDuplicateLine},
		{"medfee_sumamt differs from the lines", settle(settlement.SettleInput{MdtrtID: mdtrt, MedfeeSumamt: "31.00"}), ""},
		{"pharmacy med_type at a hospital", settle(settlement.SettleInput{MdtrtID: mdtrt, MedType: "41"}), ""},
		{"unknown person", func() error {
			_, err := e.engine.RegisterVisit(ctx, pgfixture.Msg(hohhotHospital, "2201"), settlement.VisitInput{PsnNo: "nobody", Kind: settlement.VisitOutpatient})
			return err
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.rowCounts(t)
			err := c.run()
			require.Error(t, err)
			require.NotEqual(t, settlement.EINTERNAL, settlement.ErrorCode(err), "%v", err)
			if c.rule != "" {
				var se *settlement.Error
				require.ErrorAs(t, err, &se)
				require.Equal(t, c.rule, se.Rule, se.Message)
			}
			require.Equal(t, before, e.rowCounts(t))
		})
	}
}

func TestPharmacyAndReversal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sale := settlement.PharmacyInput{PsnNo: hohhotEmployee, UseAccount: true, MedfeeSumamt: "125.40",
		Lines: []settlement.LineInput{line("1", "XA10BAG046A001010100111", "2", "62.70", "125.40")}}
	pre, err := e.engine.PharmacyPreSettle(ctx, hohhotPharmacy, sale)
	require.NoError(t, err)
	require.Zero(t, e.count(t, "visits"), "a pharmacy pre-settlement writes nothing")

	msg := pgfixture.Msg(hohhotPharmacy, "2102")
	got, err := e.engine.PharmacySettle(ctx, msg, sale)
	require.NoError(t, err)
	require.Equal(t, pre.Info, got.Info)

	// 2601: the counter never got the answer; the settlement is reversed.
	r, err := e.engine.Reverse(ctx, pgfixture.Msg(hohhotPharmacy, "2601"), msg.ID, "2102", hohhotEmployee)
	require.NoError(t, err)
	require.Equal(t, "reversed", r.Outcome)
	require.NotNil(t, r.Setl)
	require.Equal(t, -got.Info.MedfeeSumamt, r.Setl.Info.MedfeeSumamt)
	counters, err := e.engine.YearCountersOf(ctx, hohhotEmployee, 2026)
	require.NoError(t, err)
	require.Equal(t, rules.Counters{AcctBalc: 488269}, counters)

	// The reversed message is refused if it is sent again.
	_, err = e.engine.PharmacySettle(ctx, msg, sale)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err))

	// 2601 of a message that never arrived: recorded, and refused when it arrives late.
	lost := pgfixture.Msg(hohhotPharmacy, "2102")
	r, err = e.engine.Reverse(ctx, pgfixture.Msg(hohhotPharmacy, "2601"), lost.ID, "2102", hohhotEmployee)
	require.NoError(t, err)
	require.Equal(t, "voided", r.Outcome)
	before := e.rowCounts(t)
	_, err = e.engine.PharmacySettle(ctx, lost, sale)
	require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err))
	require.Equal(t, before, e.rowCounts(t))

	rep := e.audit(t)
	require.True(t, rep.OK(), "%v", rep.Problems)
}

func TestSameMsgidConcurrentlyHasOneEffect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11", line("1", "002302000010000", "1", "350.00", "350.00"))
	msg := pgfixture.Msg(hohhotHospital, "2207")
	in := settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee, UseAccount: true}
	answers := make([]settlement.SettleAnswer, 100)
	errs := make([]error, 100)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = e.engine.Settle(ctx, msg, in)
		}()
	}
	wg.Wait()
	for i := range answers {
		require.NoError(t, errs[i])
		require.Equal(t, answers[0], answers[i])
	}
	require.Equal(t, 1, e.count(t, "settlements"))
	require.Equal(t, 1, e.count(t, "ledger_txns"))
	rep := e.audit(t)
	require.True(t, rep.OK(), "%v", rep.Problems)
	t.Logf("retries: %d", e.store.Stats().Retries)
}

// 64 counters settle for one resident at once, far past the outpatient cap
// (600.00 in Hohhot): the cap is never passed and the ledger agrees.
func TestConcurrentSettlementsNeverPassACap(t *testing.T) {
	const resident = "15010000000000000011" // 390, Hohhot
	e := newEnv(t)
	ctx := context.Background()
	visits := make([]string, 64)
	for i := range visits {
		visits[i] = e.outpatient(t, hohhotHospital, resident, "11", line("1", "001101000010000", "1", "1000.00", "1000.00"))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(visits))
	paid := make([]rules.Money, len(visits))
	for i, v := range visits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := e.engine.Settle(ctx, pgfixture.Msg(hohhotHospital, "2207"), settlement.SettleInput{MdtrtID: v, PsnNo: resident})
			errs[i], paid[i] = err, a.Info.HifpPay
		}()
	}
	wg.Wait()
	var total rules.Money
	for i := range errs {
		require.NoError(t, errs[i])
		total += paid[i]
	}
	counters, err := e.engine.YearCountersOf(ctx, resident, 2026)
	require.NoError(t, err)
	require.Equal(t, rules.Money(60000), counters.FundPaidOutpatient, "the cap is reached exactly")
	require.Equal(t, counters.FundPaidOutpatient, total)
	rep := e.audit(t)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.Equal(t, 64, rep.Settlements)
	t.Logf("64 concurrent settlements of one person: %d retries", e.store.Stats().Retries)
}

// goldenCase is a testdata/golden file.
type goldenCase struct {
	Request json.RawMessage `json:"request"`
	Expect  struct {
		Setlinfo json.RawMessage `json:"setlinfo"`
		After    json.RawMessage `json:"state_after"`
		Error    *struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"expect"`
}

// The golden pricing cases, settled for real: a person with the case's
// attributes and counters, the lines uploaded, settled on the case's date.
// The stored settlement and counters equal `medsettle price`'s answer.
func TestGoldenCasesSettle(t *testing.T) {
	files, err := filepath.Glob("../../testdata/golden/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	e := newEnv(t)
	ctx := context.Background()
	settled := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var gc goldenCase
		require.NoError(t, json.Unmarshal(raw, &gc))
		if gc.Expect.Error != nil {
			continue
		}
		req, err := rules.DecodeRequest(bytesReader(gc.Request))
		require.NoError(t, err)
		t.Run(filepath.Base(f), func(t *testing.T) {
			settleGolden(t, e, ctx, req, gc)
		})
		settled++
	}
	require.Greater(t, settled, 30)
}

func settleGolden(t *testing.T, e *env, ctx context.Context, req *rules.Request, gc goldenCase) {
	claim := req.Claim()
	inst := e.rules.Institutions[req.FixmedinsCode]
	require.NotNil(t, inst)
	psn := "G" + req.FixmedinsCode + req.SetlDate + string(rune('A'+len(req.Feedetail)))
	p := settlement.Person{PsnNo: psn + req.Insutype, Name: "golden", Gend: "1", Certno: "x" + psn, CardNo: "c" + psn,
		InsuredRegion: req.InsuplcAdmdvs, Insutype: req.Insutype, Retired: bool(req.Retired), Assistance: req.Assistance,
		OpeningBalc: claim.State.AcctBalc}
	if req.Registered {
		p.RegRegion, p.RegBegin, p.RegEnd = inst.Admdvs, claim.SetlDate, claim.SetlDate
	}
	require.NoError(t, e.store.SeedPersons(ctx, []settlement.Person{p}))
	require.NoError(t, e.store.Update(ctx, func(ctx context.Context, tx settlement.Tx) error {
		return tx.PutCounters(ctx, settlement.YearCounters{PsnNo: p.PsnNo, Year: claim.SetlDate.Year(), Counters: claim.State, OpeningBalc: claim.State.AcctBalc})
	}))
	e.clock.Set(day(t, req.SetlDate))
	lines := make([]settlement.LineInput, len(req.Feedetail))
	for i, l := range req.Feedetail {
		lines[i] = settlement.LineInput{SN: l.FeedetlSN.S, ChrgBchno: "B", Code: l.MedListCodg, Cnt: l.Cnt.S, Pric: l.Pric.S, Amount: l.DetItemFeeSumamt.S}
	}
	var got settlement.SettleAnswer
	var err error
	if req.MedType == "41" {
		got, err = e.engine.PharmacySettle(ctx, pgfixture.Msg(req.FixmedinsCode, "2102"), settlement.PharmacyInput{PsnNo: p.PsnNo, UseAccount: req.AcctUsedFlag == "1", Lines: lines})
	} else {
		kind := settlement.VisitOutpatient
		if req.MedType == "21" {
			kind = settlement.VisitInpatient
		}
		v, err := e.engine.RegisterVisit(ctx, pgfixture.Msg(req.FixmedinsCode, "2201"), settlement.VisitInput{PsnNo: p.PsnNo, Kind: kind, MedType: req.MedType})
		require.NoError(t, err)
		_, err = e.engine.UploadLines(ctx, pgfixture.Msg(req.FixmedinsCode, "2204"), v.MdtrtID, p.PsnNo, lines)
		require.NoError(t, err)
		got, err = e.engine.Settle(ctx, pgfixture.Msg(req.FixmedinsCode, "2207"), settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, UseAccount: req.AcctUsedFlag == "1"})
	}
	require.NoError(t, err)
	info, err := json.Marshal(got.Info)
	require.NoError(t, err)
	require.JSONEq(t, string(gc.Expect.Setlinfo), string(info))
	after, err := e.engine.YearCountersOf(ctx, p.PsnNo, claim.SetlDate.Year())
	require.NoError(t, err)
	afterJSON, err := json.Marshal(after)
	require.NoError(t, err)
	require.JSONEq(t, string(gc.Expect.After), string(afterJSON))
}

func priceDirect(t *testing.T, e *env, c *rules.Claim) *rules.Result {
	t.Helper()
	res, err := e.rules.Price(c)
	require.NoError(t, err)
	return res
}

// A cancel undoes only its own kind of settlement, a 2601 names the right
// person, and a reversal reports the balance after it.
func TestCancelAndReverseAreScoped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mdtrt := e.outpatient(t, hohhotHospital, hohhotEmployee, "11", line("1", "002302000010000", "1", "350.00", "350.00"))
	m := pgfixture.Msg(hohhotHospital, "2207")
	got, err := e.engine.Settle(ctx, m, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: hohhotEmployee, UseAccount: true})
	require.NoError(t, err)
	require.NotZero(t, got.Info.AcctPay)

	before := e.rowCounts(t)
	_, err = e.engine.Cancel(ctx, pgfixture.Msg(hohhotHospital, "2103"), settlement.CancelInput{SetlID: got.SetlID, PsnNo: hohhotEmployee, MedTypes: []string{"41"}})
	require.Equal(t, settlement.EINVALID, settlement.ErrorCode(err), "a pharmacy cancel does not undo an outpatient settlement")
	_, err = e.engine.Reverse(ctx, pgfixture.Msg(hohhotHospital, "2601"), m.ID, "2207", "15010000000000000004")
	require.Equal(t, settlement.EINVALID, settlement.ErrorCode(err), "2601 must name the settlement's person")
	require.Equal(t, before, e.rowCounts(t))

	r, err := e.engine.Reverse(ctx, pgfixture.Msg(hohhotHospital, "2601"), m.ID, "2207", hohhotEmployee)
	require.NoError(t, err)
	require.Equal(t, got.Info.Balc+got.Info.AcctPay, r.Setl.Info.Balc, "the reversal shows the balance restored")
	require.Equal(t, rules.Money(488269), r.Setl.Info.Balc)
}
