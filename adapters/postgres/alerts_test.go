package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// monitorEvent is a hand-built settlement event at CST time when ("2006-01-02 15:04").
func monitorEvent(t *testing.T, id, psnNo, insured, inst, region string, kind settlement.VisitKind, when string) settlement.SettlementEvent {
	t.Helper()
	at, err := time.ParseInLocation("2006-01-02 15:04", when, rules.CST)
	require.NoError(t, err)
	medType := map[settlement.VisitKind]string{settlement.VisitInpatient: "21", settlement.VisitOutpatient: "11", settlement.VisitPharmacy: "41"}[kind]
	return settlement.SettlementEvent{EventID: "E" + id, Type: settlement.EventSettled, Version: 1, SetlID: "S" + id,
		MdtrtID: "M" + id, PsnNo: psnNo, Institution: inst, InsuredRegion: insured, TreatRegion: region, MedType: medType,
		SetlTime: at.UTC(), Setlinfo: rules.Setlinfo{MedfeeSumamt: 150000}, VisitKind: kind}
}

// monitorStay is an inpatient settlement at discharge.
func monitorStay(t *testing.T, id, psnNo, insured, inst, region, begin, end string) settlement.SettlementEvent {
	t.Helper()
	ev := monitorEvent(t, id, psnNo, insured, inst, region, settlement.VisitInpatient, end)
	b, err := time.ParseInLocation("2006-01-02 15:04", begin, rules.CST)
	require.NoError(t, err)
	b = b.UTC()
	e := ev.SetlTime
	ev.Begntime, ev.Endtime = &b, &e
	return ev
}

// observe feeds ev to m and records it with its alerts, as the consumer does.
func observe(t *testing.T, st *postgres.AlertStore, m *monitor.Monitor, ev settlement.SettlementEvent) []monitor.Alert {
	t.Helper()
	alerts := m.Observe(ev)
	require.NoError(t, st.Record(context.Background(), m.Observed(ev.PsnNo), ev, alerts))
	return alerts
}

func TestMonitorHistoryIsOrderedAndGuarded(t *testing.T) {
	e := newEnv(t)
	st := postgres.NewAlertStore(e.store)
	ctx := context.Background()
	const p = "15010000000000000001"
	evs := []settlement.SettlementEvent{
		monitorEvent(t, "1", p, "150100", "H15010000011", "150100", settlement.VisitOutpatient, "2026-03-01 10:00"),
		monitorEvent(t, "2", p, "150100", "P15010000201", "150100", settlement.VisitPharmacy, "2026-03-02 10:00"),
		monitorEvent(t, "3", p, "150100", "H15020000012", "150200", settlement.VisitOutpatient, "2026-03-03 10:00"),
	}
	evs[1].Lines = []settlement.EventLine{{Code: "XA10BAG046A001010100111", Cnt: "2", Amount: 12540}}
	for i, ev := range evs {
		require.NoError(t, st.Record(ctx, i+1, ev, nil))
	}
	h, err := st.History(ctx, p, 0)
	require.NoError(t, err)
	require.Equal(t, evs, h, "the events come back whole, in the order observed")
	h, err = st.History(ctx, p, 2)
	require.NoError(t, err)
	require.Equal(t, evs[2:], h)
	h, err = st.History(ctx, "15010000000000000002", 0)
	require.NoError(t, err)
	require.Empty(t, h)

	require.ErrorIs(t, st.Record(ctx, 4, evs[0], nil), monitor.ErrObserved, "an event id is recorded once")
	next := monitorEvent(t, "4", p, "150100", "H15010000011", "150100", settlement.VisitOutpatient, "2026-03-04 10:00")
	require.ErrorIs(t, st.Record(ctx, 3, next, nil), monitor.ErrStale, "seq 3 is taken: the caller's state is behind")
	require.ErrorIs(t, st.Record(ctx, 5, next, nil), monitor.ErrStale, "no gaps")
	require.NoError(t, st.Record(ctx, 4, next, nil))
	require.Equal(t, 4, e.count(t, "monitor_events"))
}

// A monitor rebuilt from the stored history is in the state of the one that
// recorded it: the next event raises the same alert, under the same id.
func TestMonitorStateIsRebuiltFromHistory(t *testing.T) {
	e := newEnv(t)
	st := postgres.NewAlertStore(e.store)
	ctx := context.Background()
	const p = "15010000000000000001"
	m1 := monitor.New(monitor.Config{})
	var evs []settlement.SettlementEvent
	for i := 1; i <= 5; i++ {
		ev := monitorEvent(t, fmt.Sprint(i), p, "150100", "P15010000201", "150100", settlement.VisitPharmacy, fmt.Sprintf("2026-03-%02d 10:00", i))
		ev.Lines = []settlement.EventLine{{Code: "XA10BAG046A001010100111", Cnt: "1", Amount: 6270}}
		evs = append(evs, ev)
	}
	for _, ev := range evs[:4] {
		require.Empty(t, observe(t, st, m1, ev))
	}
	m2 := monitor.New(monitor.Config{})
	h, err := st.History(ctx, p, m2.Observed(p))
	require.NoError(t, err)
	for _, ev := range h {
		require.Empty(t, m2.Observe(ev))
	}
	a1, a2 := m1.Observe(evs[4]), m2.Observe(evs[4])
	require.Len(t, a1, 1)
	require.Equal(t, a1, a2)
}

func TestAlertsAreStoredOnceAndScopedByRegion(t *testing.T) {
	e := newEnv(t)
	st := postgres.NewAlertStore(e.store)
	ctx := context.Background()
	m := monitor.New(monitor.Config{})
	const (
		hohhotPsn = "15010000000000000001" // insured in 150100
		wuhanPsn  = "42010000000000000051" // insured in 420100
	)
	// Overlapping stays in Hohhot and Baotou; a readmission in Wuhan.
	observe(t, st, m, monitorStay(t, "A1", hohhotPsn, "150100", "H15010000011", "150100", "2026-03-01 09:00", "2026-03-10 10:00"))
	overlap := observe(t, st, m, monitorStay(t, "A2", hohhotPsn, "150100", "H15020000012", "150200", "2026-03-05 09:00", "2026-03-12 10:00"))
	observe(t, st, m, monitorStay(t, "B1", wuhanPsn, "420100", "H42010000001", "420100", "2026-04-01 09:00", "2026-04-05 10:00"))
	readmit := observe(t, st, m, monitorStay(t, "B2", wuhanPsn, "420100", "H42010000230", "420100", "2026-04-10 09:00", "2026-04-15 10:00"))
	require.Len(t, overlap, 1)
	require.Len(t, readmit, 1)
	require.Equal(t, 2, e.count(t, "alerts"))

	// Recording an alert again (another consumer raised it too) changes nothing.
	again := monitorEvent(t, "A3", hohhotPsn, "150100", "H15010000011", "150100", settlement.VisitOutpatient, "2026-05-01 10:00")
	require.NoError(t, st.Record(ctx, m.Observed(hohhotPsn)+1, again, overlap))
	require.Equal(t, 2, e.count(t, "alerts"))

	query := func(q monitor.Query) []monitor.Alert {
		t.Helper()
		out, err := st.Alerts(ctx, q)
		require.NoError(t, err)
		return out
	}
	// The alert comes back as raised: evidence, regions, times.
	require.Equal(t, overlap, query(monitor.Query{Region: "150100"}))
	require.Equal(t, overlap, query(monitor.Query{Region: "150200"}), "an institution of Baotou is involved")
	require.Equal(t, readmit, query(monitor.Query{Region: "420100"}))
	require.Empty(t, query(monitor.Query{Region: "230100"}))
	require.Equal(t, append(append([]monitor.Alert{}, overlap...), readmit...), query(monitor.Query{}))
	require.Len(t, query(monitor.Query{Rule: monitor.RuleReadmission}), 1)
	require.Empty(t, query(monitor.Query{Region: "150100", Rule: monitor.RuleReadmission}))
	require.Len(t, query(monitor.Query{Region: "420100", PsnNo: wuhanPsn}), 1)
	require.Empty(t, query(monitor.Query{Region: "420100", PsnNo: hohhotPsn}))
	at := readmit[0].At
	require.Len(t, query(monitor.Query{From: at}), 1)
	require.Len(t, query(monitor.Query{To: at}), 1, "To is exclusive")
	require.Len(t, query(monitor.Query{Region: "420100", From: at.Add(time.Microsecond)}), 0)
	require.Len(t, query(monitor.Query{Limit: 1}), 1)

	// Unpublished alerts are the outbox of the alerts topic.
	un, err := st.Unpublished(ctx, 10)
	require.NoError(t, err)
	require.Len(t, un, 2)
	require.NoError(t, st.MarkPublished(ctx, []string{overlap[0].ID}))
	un, err = st.Unpublished(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, readmit, un)
	require.NoError(t, st.MarkPublished(ctx, []string{readmit[0].ID, overlap[0].ID}))
	un, err = st.Unpublished(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, un)
	require.NoError(t, st.MarkPublished(ctx, nil))
}
