package hubsim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/hubsim"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

func TestMain(m *testing.M) { pgfixture.Main(m) }

const (
	wuhanResident = "42010000000000000044" // a resident (390) insured in Wuhan (Hubei, 420000)
	hohhotHosp    = "H15010000011"         // treated in Hohhot (Inner Mongolia, 150000)
)

// province is one deployment: its own database and engine.
type province struct {
	engine *settlement.Engine
	store  *postgres.Store
}

// world is two provinces joined by the simulated hub.
type world struct {
	hub       *hubsim.Sim
	treatment province // 150000
	insured   province // 420000
	rules     *rules.RuleSet
}

func newWorld(t *testing.T) *world {
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	hub := hubsim.New(rs)
	hub.DelayBy = 300 * time.Millisecond
	now := func() time.Time { return time.Date(2026, 3, 15, 10, 0, 0, 0, rules.CST) }
	open := func(prov string) province {
		st := pgfixture.Store(t)
		e := &settlement.Engine{Rules: rs, Store: st, Province: prov, Hub: hub.For(prov), Now: now}
		e.Reverser = &settlement.InlineReverser{Hub: e.Hub, Backoff: time.Millisecond}
		hub.Register(prov, e)
		return province{engine: e, store: st}
	}
	return &world{hub: hub, treatment: open("150000"), insured: open("420000"), rules: rs}
}

// visit registers a visit at the Hohhot hospital and uploads lines.
func (w *world) visit(t *testing.T) string {
	ctx := context.Background()
	e := w.treatment.engine
	v, err := e.RegisterVisit(ctx, pgfixture.Msg(hohhotHosp, "2201"), settlement.VisitInput{PsnNo: wuhanResident, Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = e.UploadLines(ctx, pgfixture.Msg(hohhotHosp, "2204"), v.MdtrtID, wuhanResident, []settlement.LineInput{
		{SN: "1", Code: "002302000010000", Cnt: "2", Pric: "380.00", Amount: "760.00"},
		{SN: "2", Code: "001103000010000", Cnt: "1", Pric: "120.00", Amount: "120.00"},
	})
	require.NoError(t, err)
	return v.MdtrtID
}

func (w *world) settle(t *testing.T, mdtrt string, m settlement.Msg) (settlement.SettleAnswer, error) {
	return w.treatment.engine.Settle(context.Background(), m, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
}

func count(t *testing.T, p province, sql string) int {
	var n int
	require.NoError(t, p.store.Pool().QueryRow(context.Background(), sql).Scan(&n))
	return n
}

func balance(t *testing.T, p province, account string) string {
	var s string
	require.NoError(t, p.store.Pool().QueryRow(context.Background(),
		`SELECT COALESCE(sum(amount), 0)::DECIMAL(18,2)::TEXT FROM ledger_entries WHERE account = $1`, account).Scan(&s))
	return s
}

// agree checks what must hold after any fault: audits clean on both sides,
// the receivable equals the payable, and the person's counters are what the
// standing settlements make them.
func (w *world) agree(t *testing.T, standing int) {
	t.Helper()
	w.hub.Wait()
	for _, p := range []province{w.treatment, w.insured} {
		rep, err := p.store.Audit(context.Background())
		require.NoError(t, err)
		require.True(t, rep.OK(), "%v", rep.Problems)
	}
	recv, err := rules.ParseMoney(balance(t, w.treatment, settlement.ClearingAccount("420000")))
	require.NoError(t, err)
	pay, err := rules.ParseMoney(balance(t, w.insured, settlement.ClearingAccount("150000")))
	require.NoError(t, err)
	require.Equal(t, rules.Money(0), recv+pay, "the receivable %s must equal the payable %s", recv, -pay)
	require.Equal(t, standing, count(t, w.insured, `SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
	require.Equal(t, standing, count(t, w.treatment, `SELECT count(*) FROM settlements WHERE status = 'settled' AND reverses = ''`))
}

func TestCrossProvinceSettlement(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	mdtrt := w.visit(t)
	pre, err := w.treatment.engine.PreSettle(ctx, hohhotHosp, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
	require.NoError(t, err)
	a, err := w.settle(t, mdtrt, pgfixture.Msg(hohhotHosp, "2207"))
	require.NoError(t, err)
	require.Equal(t, pre.Info, a.Info)
	require.Equal(t, "420100", a.ClrOptins)

	// The insured side applied Wuhan's policy and the person's counters.
	counters, err := w.insured.engine.YearCountersOf(ctx, wuhanResident, 2026)
	require.NoError(t, err)
	require.Equal(t, a.Info.HifpPay, counters.FundPaidOutpatient)
	require.Equal(t, 0, count(t, w.treatment, `SELECT count(*) FROM person_counters`), "the treatment side keeps no counters of the person")
	require.Equal(t, a.Info.FundPaySumamt.String(), balance(t, w.treatment, settlement.ClearingAccount("420000")))
	w.agree(t, 1)

	// Cancel at the counter: the insured side is reversed through the hub first.
	_, err = w.treatment.engine.Cancel(ctx, pgfixture.Msg(hohhotHosp, "2208"), settlement.CancelInput{SetlID: a.SetlID})
	require.NoError(t, err)
	counters, err = w.insured.engine.YearCountersOf(ctx, wuhanResident, 2026)
	require.NoError(t, err)
	require.Equal(t, rules.Counters{}, counters)
	w.agree(t, 0)
}

// For each hub fault, after the dust settles both sides agree and the
// person's counters are what one settlement (or none) makes them.
func TestHubFaults(t *testing.T) {
	for _, f := range []hubsim.Fault{hubsim.DropRequest, hubsim.DropAnswer, hubsim.Delay, hubsim.Duplicate} {
		t.Run(f.String(), func(t *testing.T) {
			w := newWorld(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			mdtrt := w.visit(t)
			w.hub.Inject(f)
			m := pgfixture.Msg(hohhotHosp, "2207")
			_, err := w.treatment.engine.Settle(ctx, m, settlement.SettleInput{MdtrtID: mdtrt, PsnNo: wuhanResident})
			if f == hubsim.Duplicate {
				require.NoError(t, err)
				w.agree(t, 1)
				return
			}
			require.Error(t, err)
			require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err), "%v", err)
			w.agree(t, 0)
			counters, err := w.insured.engine.YearCountersOf(ctx, wuhanResident, 2026)
			require.NoError(t, err)
			require.Equal(t, rules.Counters{}, counters, "no settlement stands, so no counter moved")

			// The same msgid again is refused; a new one settles.
			_, err = w.settle(t, mdtrt, m)
			require.Equal(t, settlement.ECONFLICT, settlement.ErrorCode(err))
			_, err = w.settle(t, mdtrt, pgfixture.Msg(hohhotHosp, "2207"))
			require.NoError(t, err)
			w.agree(t, 1)
		})
	}
}
