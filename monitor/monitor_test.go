package monitor_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Scripted event streams for each rule: every test states the alerts it
// expects, exactly (rule and evidence), and clean traffic expects none.

var cst = rules.CST

const (
	psn     = "15010000000000000001" // insured in Hohhot (150100)
	hohhot  = "H15010000011"         // 150100
	hohhot2 = "H15010000032"         // 150100
	baotou  = "H15020000012"         // 150200
	wuhan   = "H42010000001"         // 420100
	pharm   = "P15010000201"         // 150100
	pharmBT = "P15020000221"         // 150200

	metformin = "XA10BAG046A001010100111"
	ceftriax  = "XJ01DDA062B002010100345"
	tcm       = "ZA01AAL0025010100001"
	consult   = "001101000010000" // a service, not a drug
)

var regionOf = map[string]string{hohhot: "150100", hohhot2: "150100", baotou: "150200", wuhan: "420100",
	pharm: "150100", pharmBT: "150200"}

// at parses a CST counter time "2006-01-02 15:04".
func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, cst)
	if err != nil {
		panic(err)
	}
	return t
}

var evSeq int

func base(setlID, inst string, kind settlement.VisitKind, medType string, setlTime time.Time) settlement.SettlementEvent {
	evSeq++
	return settlement.SettlementEvent{EventID: fmt.Sprintf("E%06d", evSeq), Type: settlement.EventSettled, Version: 1,
		SetlID: setlID, MdtrtID: "M" + setlID, PsnNo: psn, Institution: inst, InsuredRegion: "150100",
		TreatRegion: regionOf[inst], MedType: medType, Insutype: "310", SetlTime: setlTime.UTC(),
		Setlinfo: rules.Setlinfo{MedfeeSumamt: 12345}, VisitKind: kind}
}

// stay is an inpatient settlement: admitted at begin, discharged (and
// settled) at end; end "" is an open stay settled mid-stay at settled.
func stay(setlID, inst, begin, end string, settled ...string) settlement.SettlementEvent {
	st := end
	if len(settled) > 0 {
		st = settled[0]
	}
	ev := base(setlID, inst, settlement.VisitInpatient, "21", at(st))
	b := at(begin).UTC()
	ev.Begntime = &b
	if end != "" {
		e := at(end).UTC()
		ev.Endtime = &e
	}
	return ev
}

// visit is an outpatient settlement at a hospital, or a pharmacy sale at a pharmacy, with lines "code" or "code*cnt".
func visit(setlID, inst, when string, lines ...string) settlement.SettlementEvent {
	kind, medType := settlement.VisitOutpatient, "11"
	if strings.HasPrefix(inst, "P") {
		kind, medType = settlement.VisitPharmacy, "41"
	}
	ev := base(setlID, inst, kind, medType, at(when))
	b := at(when).UTC()
	ev.Begntime = &b
	for _, l := range lines {
		code, cnt, ok := strings.Cut(l, "*")
		if !ok {
			cnt = "1"
		}
		ev.Lines = append(ev.Lines, settlement.EventLine{Code: code, Cnt: cnt, Amount: 1000})
	}
	return ev
}

// cancel is the reversal of setlID.
func cancel(orig settlement.SettlementEvent, when string) settlement.SettlementEvent {
	ev := base("R"+orig.SetlID, orig.Institution, orig.VisitKind, orig.MedType, at(when))
	ev.Type, ev.Reverses = settlement.EventCancelled, orig.SetlID
	ev.Setlinfo.MedfeeSumamt = -orig.Setlinfo.MedfeeSumamt
	return ev
}

// want is an expected alert: its rule and evidence setl_ids.
type want struct {
	rule     monitor.Rule
	evidence []string
}

func (w want) String() string { return string(w.rule) + ":" + strings.Join(w.evidence, ",") }

func got(alerts []monitor.Alert) []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = want{a.Rule, a.Evidence}.String()
	}
	return out
}

func wants(ws ...want) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.String()
	}
	if len(out) == 0 {
		return []string{}
	}
	return out
}

// run feeds the events and returns every alert raised.
func run(m *monitor.Monitor, evs ...settlement.SettlementEvent) []monitor.Alert {
	out := []monitor.Alert{}
	for _, ev := range evs {
		out = append(out, m.Observe(ev)...)
	}
	return out
}

func TestOverlappingStays(t *testing.T) {
	m := monitor.New(monitor.Config{})
	a := stay("SA", hohhot, "2026-03-01 09:00", "2026-03-10 10:00")
	b := stay("SB", baotou, "2026-03-05 14:00", "2026-03-12 10:00")
	c := stay("SC", wuhan, "2026-04-01 09:00", "", "2026-04-05 10:00") // open: settled mid-stay
	d := stay("SD", hohhot, "2026-04-20 09:00", "2026-04-25 10:00")
	alerts := run(m, a, b, c, d)
	require.Equal(t, wants(want{monitor.RuleOverlappingStays, []string{"SA", "SB"}},
		want{monitor.RuleOverlappingStays, []string{"SC", "SD"}}), got(alerts))

	al := alerts[0]
	require.Equal(t, psn, al.PsnNo)
	require.Equal(t, "150100", al.InsuredRegion)
	require.Equal(t, []string{"150100", "150200"}, al.Regions)
	require.Equal(t, []string{"150100", "150200"}, al.Scope())
	require.True(t, al.Involves("150200"))
	require.False(t, al.Involves("420100"))
	require.True(t, at("2026-03-12 10:00").Equal(al.At), "raised at the latest evidence: %s", al.At)
	require.Len(t, al.Settlements, 2)
	require.Equal(t, monitor.Settlement{SetlID: "SA", MdtrtID: "MSA", Institution: hohhot, Region: "150100", MedType: "21",
		VisitKind: settlement.VisitInpatient, SetlTime: at("2026-03-10 10:00").UTC(), Begntime: a.Begntime, Endtime: a.Endtime,
		MedfeeSumamt: 12345}, al.Settlements[0])
	require.Equal(t, baotou, al.Settlements[1].Institution)
	require.Contains(t, al.Detail, "H15010000011 (150100) 2026-03-01 09:00 – 2026-03-10 10:00")
	require.Contains(t, alerts[1].Detail, "2026-04-01 09:00 – open")
	require.Equal(t, []string{"150100", "420100"}, alerts[1].Regions)
	require.Regexp(t, `^AL[0-9a-f]{30}$`, al.ID)
	require.NotEqual(t, al.ID, alerts[1].ID)

	// Two admissions at the same institution are not an overlap of stays
	// "in two institutions" (a stay settled in parts, a transfer of ward).
	m = monitor.New(monitor.Config{})
	require.Empty(t, run(m, stay("SE", hohhot2, "2026-06-01 09:00", "", "2026-06-05 10:00"),
		stay("SF", hohhot2, "2026-06-02 09:00", "2026-06-09 10:00")))
}

func TestStaysThatOnlyTouchDoNotOverlap(t *testing.T) {
	m := monitor.New(monitor.Config{})
	// Transferred: discharged from one hospital at 10:00, admitted at the other at 10:00.
	alerts := run(m, stay("S1", hohhot, "2026-03-01 09:00", "2026-03-10 10:00"),
		stay("S2", baotou, "2026-03-10 10:00", "2026-03-20 10:00"))
	// Not an overlap, but a readmission on the same day.
	require.Equal(t, wants(want{monitor.RuleReadmission, []string{"S1", "S2"}}), got(alerts))
}

func TestVisitDuringStay(t *testing.T) {
	m := monitor.New(monitor.Config{})
	alerts := run(m,
		// Settled before the stay is (an inpatient settlement comes at discharge).
		visit("V1", pharmBT, "2026-03-05 15:00", consult),
		visit("V2", hohhot, "2026-03-06 15:00", consult), // the same institution as the stay
		visit("V3", pharm, "2026-03-01 08:00", consult),  // before admission
		stay("S", hohhot, "2026-03-01 09:00", "2026-03-10 10:00"),
		visit("V4", hohhot2, "2026-03-08 10:00", consult), // after the stay was settled
		visit("V5", pharm, "2026-03-10 11:00", consult),   // after discharge
		stay("T", wuhan, "2026-04-01 09:00", "", "2026-04-03 10:00"),
		visit("V6", pharm, "2026-04-20 10:00", consult), // during the open stay
	)
	require.Equal(t, wants(
		want{monitor.RuleVisitDuringStay, []string{"V1", "S"}},
		want{monitor.RuleVisitDuringStay, []string{"V4", "S"}},
		want{monitor.RuleVisitDuringStay, []string{"T", "V6"}},
	), got(alerts))
	require.Equal(t, []string{"150100", "150200"}, alerts[0].Regions)
	require.Contains(t, alerts[0].Detail, "pharmacy settlement at P15020000221 on 2026-03-05 15:00 during the admission at H15010000011")
	require.Equal(t, []string{"150100", "420100"}, alerts[2].Regions)
}

func TestReadmission(t *testing.T) {
	m := monitor.New(monitor.Config{})
	alerts := run(m,
		stay("A", hohhot, "2026-03-01 09:00", "2026-03-05 10:00"),
		stay("B", hohhot, "2026-03-20 09:00", "2026-03-21 10:00"), // 15 days after A: a readmission
		stay("C", baotou, "2026-04-06 09:00", "2026-04-08 10:00"), // 16 days after B: not
		// Out of order: F is observed before E, which ended 7 days before F began.
		stay("F", wuhan, "2026-06-10 09:00", "2026-06-12 10:00"),
		stay("E", baotou, "2026-06-01 09:00", "2026-06-03 10:00"),
	)
	require.Equal(t, wants(
		want{monitor.RuleReadmission, []string{"A", "B"}},
		want{monitor.RuleReadmission, []string{"E", "F"}},
	), got(alerts))
	require.Contains(t, alerts[0].Detail, "15 days after discharge")
	require.Contains(t, alerts[1].Detail, "readmitted at H42010000001 on 2026-06-10 09:00, 7 days after discharge from H15020000012")
	require.Equal(t, []string{"150200", "420100"}, alerts[1].Regions)

	// Calendar days at the counter (CST), not 24-hour periods: discharged
	// late on the 5th, admitted early on the 20th is 15 days.
	m = monitor.New(monitor.Config{})
	require.Equal(t, wants(want{monitor.RuleReadmission, []string{"G", "H"}}), got(run(m,
		stay("G", hohhot, "2026-07-01 09:00", "2026-07-05 23:30"),
		stay("H", baotou, "2026-07-20 00:30", "2026-07-22 10:00"))))
	// The limit is configurable.
	m = monitor.New(monitor.Config{ReadmissionDays: 3})
	require.Equal(t, wants(), got(run(m,
		stay("I", hohhot, "2026-07-01 09:00", "2026-07-05 10:00"),
		stay("J", hohhot, "2026-07-09 09:00", "2026-07-10 10:00"))))
}

func TestSwipesPerDay(t *testing.T) {
	m := monitor.New(monitor.Config{})
	var evs []settlement.SettlementEvent
	for i := 1; i <= 5; i++ {
		evs = append(evs, visit(fmt.Sprintf("D%d", i), hohhot, fmt.Sprintf("2026-03-15 %02d:00", 8+i), consult))
	}
	// Midnight at the counter is 16:00 UTC: these fall on other days.
	evs = append(evs, visit("X1", pharm, "2026-03-14 23:59", consult), visit("X2", pharm, "2026-03-16 00:00", consult))
	require.Empty(t, run(m, evs...), "5 swipes a day is the limit, not over it")
	alerts := run(m, visit("D6", pharm, "2026-03-15 18:00", consult))
	require.Equal(t, wants(want{monitor.RuleSwipesPerDay, []string{"D1", "D2", "D3", "D4", "D5", "D6"}}), got(alerts))
	require.Equal(t, "6 settlements on 2026-03-15 (more than 5)", alerts[0].Detail)
	require.Empty(t, run(m, visit("D7", pharm, "2026-03-15 19:00", consult)), "one alert per person and day")

	m = monitor.New(monitor.Config{MaxSwipesPerDay: 2})
	require.Equal(t, wants(want{monitor.RuleSwipesPerDay, []string{"N1", "N2", "N3"}}), got(run(m,
		visit("N1", hohhot, "2026-03-15 09:00", consult), visit("N2", baotou, "2026-03-15 12:00", consult),
		visit("N3", pharm, "2026-03-15 20:00", consult))))
}

func TestRepeatedDrug(t *testing.T) {
	m := monitor.New(monitor.Config{})
	alerts := run(m,
		visit("P1", pharm, "2026-03-01 10:00", metformin+"*2", tcm),
		visit("P2", pharmBT, "2026-03-05 10:00", metformin+"*2", tcm),
		visit("P3", hohhot, "2026-03-09 10:00", metformin+"*1.5", consult, tcm),
		visit("P4", pharm, "2026-03-20 10:00", metformin+"*2", ceftriax),
		// 2026-03-31 16:30 UTC is April 1st at the counter.
		visit("P0", pharm, "2026-04-01 00:30", metformin+"*2"),
		// A service code repeated is not a drug purchase.
		visit("Q1", hohhot, "2026-03-02 10:00", consult), visit("Q2", hohhot, "2026-03-03 10:00", consult),
	)
	require.Empty(t, alerts, "4 purchases a month is the limit")
	alerts = run(m, visit("P5", pharm, "2026-03-31 23:00", metformin+"*2", tcm))
	require.Equal(t, wants(
		want{monitor.RuleRepeatedDrug, []string{"P1", "P2", "P3", "P4", "P5"}},
	), got(alerts))
	require.Equal(t, "XA10BAG046A001010100111 in 5 settlements in 2026-03 (more than 4), total cnt 9.5", alerts[0].Detail)
	require.Equal(t, []string{"150100", "150200"}, alerts[0].Regions)
	require.Empty(t, run(m, visit("P6", pharm, "2026-03-31 23:30", metformin)), "one alert per drug and month")

	// Two drugs over the limit in the same settlements: two alerts, two ids.
	m = monitor.New(monitor.Config{})
	var evs []settlement.SettlementEvent
	for i := 1; i <= 5; i++ {
		evs = append(evs, visit(fmt.Sprintf("T%d", i), pharm, fmt.Sprintf("2026-05-%02d 10:00", i), tcm, metformin))
	}
	alerts = run(m, evs...)
	ev5 := []string{"T1", "T2", "T3", "T4", "T5"}
	require.Equal(t, wants(want{monitor.RuleRepeatedDrug, ev5}, want{monitor.RuleRepeatedDrug, ev5}), got(alerts))
	require.NotEqual(t, alerts[0].ID, alerts[1].ID)
	require.True(t, strings.HasPrefix(alerts[0].Detail, metformin), "codes in order")
	require.True(t, strings.HasPrefix(alerts[1].Detail, tcm))
}

// clean is ordinary traffic of several persons: none of it is a pattern.
func clean() []settlement.SettlementEvent {
	var evs []settlement.SettlementEvent
	// A stay, then its follow-up visits at the same hospital after discharge,
	// and a readmission 16 days later elsewhere.
	evs = append(evs, stay("C1", hohhot, "2026-03-01 09:00", "2026-03-08 10:00"),
		visit("C2", hohhot, "2026-03-15 10:00", consult, metformin),
		visit("C3", pharm, "2026-03-08 11:00", metformin),
		stay("C4", baotou, "2026-03-24 09:00", "2026-03-30 10:00"))
	// A busy day of 5 swipes, and metformin bought 4 times a month, every month.
	for i := 1; i <= 5; i++ {
		evs = append(evs, visit(fmt.Sprintf("C1%d", i), hohhot2, fmt.Sprintf("2026-04-02 %02d:00", 8+i), consult))
	}
	for mo := 4; mo <= 6; mo++ {
		for w := 0; w < 4; w++ {
			evs = append(evs, visit(fmt.Sprintf("C%d%d", mo, w), pharm, fmt.Sprintf("2026-%02d-%02d 10:00", mo, 1+7*w), metformin+"*2"))
		}
	}
	// Another person with the same pattern of visits: counted apart.
	for i, ev := range evs[:4] {
		ev.PsnNo, ev.EventID, ev.SetlID = "42010000000000000051", fmt.Sprintf("O%d", i), "O"+ev.SetlID
		evs = append(evs, ev)
	}
	return evs
}

func TestCleanTrafficRaisesNothing(t *testing.T) {
	m := monitor.New(monitor.Config{})
	require.Empty(t, run(m, clean()...))
	require.Equal(t, 2, m.Persons())
}

func TestDuplicatesRaiseNothingNew(t *testing.T) {
	m := monitor.New(monitor.Config{})
	a := stay("SA", hohhot, "2026-03-01 09:00", "2026-03-10 10:00")
	b := stay("SB", baotou, "2026-03-05 14:00", "2026-03-12 10:00")
	require.Len(t, run(m, a, b), 1)
	require.Equal(t, 2, m.Observed(psn))
	require.True(t, m.Has(b))
	require.Empty(t, run(m, a, b, b))
	require.Equal(t, 2, m.Observed(psn), "a duplicate is not counted")

	// Each side of a cross-province settlement publishes an event of the same
	// settlement (the insured side's without the visit): one swipe, one purchase.
	m = monitor.New(monitor.Config{MaxSwipesPerDay: 3, MaxDrugPerMonth: 3})
	for i := 1; i <= 3; i++ {
		treat := visit(fmt.Sprintf("X%d", i), wuhan, fmt.Sprintf("2026-03-15 %02d:00", 8+i), metformin)
		insured := treat
		insured.EventID, insured.VisitKind, insured.Begntime, insured.Lines = treat.EventID+"-insured", "", nil, nil
		require.Empty(t, run(m, insured, treat), "settlement %d", i)
	}
	require.Equal(t, 6, m.Observed(psn))
}

func TestCancelledSettlementsAreWithdrawn(t *testing.T) {
	m := monitor.New(monitor.Config{})
	a := stay("SA", hohhot, "2026-03-01 09:00", "2026-03-10 10:00")
	b := stay("SB", baotou, "2026-03-05 14:00", "2026-03-12 10:00")
	require.Empty(t, run(m, a, cancel(a, "2026-03-10 11:00"), b), "the cancelled stay overlaps nothing")

	// A cancelled purchase does not count; the next one completes five standing.
	m = monitor.New(monitor.Config{})
	var evs []settlement.SettlementEvent
	for i := 1; i <= 4; i++ {
		evs = append(evs, visit(fmt.Sprintf("P%d", i), pharm, fmt.Sprintf("2026-03-%02d 10:00", i), metformin))
	}
	require.Empty(t, run(m, evs...))
	require.Empty(t, run(m, cancel(evs[1], "2026-03-02 11:00")))
	require.Empty(t, run(m, visit("P5", pharm, "2026-03-05 10:00", metformin)), "4 standing")
	require.Equal(t, wants(want{monitor.RuleRepeatedDrug, []string{"P1", "P3", "P4", "P5", "P6"}}),
		got(run(m, visit("P6", pharm, "2026-03-06 10:00", metformin))))

	// A cancellation observed before its settlement (out of order) still withdraws it.
	m = monitor.New(monitor.Config{})
	c := stay("SC", hohhot, "2026-03-01 09:00", "2026-03-10 10:00")
	require.Empty(t, run(m, cancel(c, "2026-03-10 11:00"), c, stay("SD", baotou, "2026-03-05 14:00", "2026-03-12 10:00")))
	require.Equal(t, 3, m.Observed(psn))

	// Alerts raised before a cancellation stand; the withdrawn stay raises no more.
	m = monitor.New(monitor.Config{})
	require.Len(t, run(m, a, b), 1)
	require.Equal(t, wants(want{monitor.RuleVisitDuringStay, []string{"V", "SB"}}),
		got(run(m, cancel(a, "2026-03-13 10:00"), visit("V", pharm, "2026-03-06 10:00", consult))),
		"V falls in both stays, but only the one at Baotou stands")
}

// everything is a stream with an alert of every rule, and clean traffic.
func everything() []settlement.SettlementEvent {
	evs := clean()
	evs = append(evs, stay("SA", hohhot, "2026-08-01 09:00", "2026-08-10 10:00"),
		visit("V1", pharmBT, "2026-08-05 15:00", consult),
		stay("SB", baotou, "2026-08-05 14:00", "2026-08-12 10:00"),
		stay("SC", wuhan, "2026-08-20 09:00", "2026-08-22 10:00"))
	for i := 1; i <= 6; i++ {
		evs = append(evs, visit(fmt.Sprintf("W%d", i), pharm, fmt.Sprintf("2026-09-%02d 10:00", 2*i), ceftriax))
	}
	for i := 1; i <= 6; i++ {
		evs = append(evs, visit(fmt.Sprintf("Y%d", i), hohhot2, fmt.Sprintf("2026-10-01 %02d:00", 8+i), consult))
	}
	return evs
}

func TestEveryRuleInOneStream(t *testing.T) {
	m := monitor.New(monitor.Config{})
	alerts := run(m, everything()...)
	require.Equal(t, wants(
		// SB overlaps SA and covers V1 (SA covers it too, but was settled first: V1 raised it then).
		want{monitor.RuleVisitDuringStay, []string{"V1", "SA"}},
		want{monitor.RuleOverlappingStays, []string{"SA", "SB"}},
		want{monitor.RuleVisitDuringStay, []string{"V1", "SB"}},
		want{monitor.RuleReadmission, []string{"SA", "SC"}},
		want{monitor.RuleReadmission, []string{"SB", "SC"}},
		want{monitor.RuleRepeatedDrug, []string{"W1", "W2", "W3", "W4", "W5"}},
		want{monitor.RuleSwipesPerDay, []string{"Y1", "Y2", "Y3", "Y4", "Y5", "Y6"}},
	), got(alerts))
	rulesSeen := map[monitor.Rule]bool{}
	for _, a := range alerts {
		rulesSeen[a.Rule] = true
	}
	require.Len(t, rulesSeen, len(monitor.Rules))
}

// Replaying the same events, whole or after a prefix, rebuilds the same
// state: the same alerts under the same ids, and none twice.
func TestReplayIsDeterministic(t *testing.T) {
	evs := everything()
	first := run(monitor.New(monitor.Config{}), evs...)
	again := run(monitor.New(monitor.Config{}), evs...)
	require.Equal(t, first, again)
	for k := range len(evs) {
		m := monitor.New(monitor.Config{})
		before := run(m, evs[:k]...) // rebuilt from a stored history: its alerts were raised before
		rest := run(m, evs[k:]...)
		want := slices.DeleteFunc(slices.Clone(first), func(a monitor.Alert) bool {
			return slices.ContainsFunc(before, func(b monitor.Alert) bool { return b.ID == a.ID })
		})
		require.Equal(t, want, rest, "after %d events", k)
	}
	ids := map[string]bool{}
	for _, a := range first {
		require.False(t, ids[a.ID], "id %s twice", a.ID)
		ids[a.ID] = true
	}
}

func TestCrossProvinceEventsCompleteEachOther(t *testing.T) {
	// The insured province's event of a stay has no visit: it becomes a stay
	// when the treatment province's event of the same settlement arrives.
	m := monitor.New(monitor.Config{})
	a := stay("SA", hohhot, "2026-03-01 09:00", "2026-03-10 10:00")
	b := stay("SB", wuhan, "2026-03-05 14:00", "2026-03-12 10:00")
	bInsured := b
	bInsured.EventID, bInsured.VisitKind, bInsured.Begntime, bInsured.Endtime = b.EventID+"-insured", "", nil, nil
	require.Empty(t, run(m, a, bInsured))
	require.Equal(t, wants(want{monitor.RuleOverlappingStays, []string{"SA", "SB"}}), got(run(m, b)))
}

func TestRules(t *testing.T) {
	for _, r := range monitor.Rules {
		require.True(t, r.Valid(), r)
	}
	require.False(t, monitor.Rule("swipes").Valid())
	require.Equal(t, monitor.DefaultLimit, monitor.Query{}.EffectiveLimit())
	require.Equal(t, monitor.MaxLimit, monitor.Query{Limit: 1 << 20}.EffectiveLimit())
	require.Equal(t, 7, monitor.Query{Limit: 7}.EffectiveLimit())
	require.Equal(t, monitor.Config{MaxSwipesPerDay: 5, MaxDrugPerMonth: 4, ReadmissionDays: 15}, monitor.New(monitor.Config{}).Config())
}
