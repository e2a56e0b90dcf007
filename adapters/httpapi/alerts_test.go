package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// The fund-supervision monitor end to end: settlements made by the engine on
// a real PostgreSQL, their outbox events produced to the settlements topic
// of a Kafka broker (kfake), the monitor's consumer raising alerts into
// PostgreSQL and onto the alerts topic, and GET /bureau/alerts over real
// HTTP showing each bureau the alerts of its region only.

// monitorScript drives the engine through a scripted March.
type monitorScript struct {
	t      *testing.T
	engine *settlement.Engine
	clock  *pgfixture.Clock
	setl   map[string]settlement.SettleAnswer // by a name in the script
}

// at sets the clock to a CST time on 2026-03-dd ("02 15:04") and returns it.
func (s *monitorScript) at(when string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", "2026-03-"+when, rules.CST)
	require.NoError(s.t, err)
	s.clock.Set(t)
	return t
}

var (
	monConsult   = settlement.LineInput{SN: "1", ChrgBchno: "B1", Code: "001101000010000", Cnt: "1", Pric: "30.00", Amount: "30.00"}
	monCeftriax  = settlement.LineInput{SN: "2", ChrgBchno: "B1", Code: "XJ01DDA062B002010100345", Cnt: "3", Pric: "1500.5", Amount: "4501.50"}
	monMetformin = settlement.LineInput{SN: "1", ChrgBchno: "B1", Code: "XA10BAG046A001010100111", Cnt: "2", Pric: "62.70", Amount: "125.40"}
)

// admit is 2401 and 2301: psn admitted at inst at when.
func (s *monitorScript) admit(inst, psn, when string) string {
	ctx := context.Background()
	begin := s.at(when)
	v, err := s.engine.RegisterVisit(ctx, pgfixture.Msg(inst, "2401"), settlement.VisitInput{PsnNo: psn, Kind: settlement.VisitInpatient,
		MedType: "21", Begin: begin, IptOtpNo: "ZY" + psn[16:]})
	require.NoError(s.t, err)
	_, err = s.engine.UploadLines(ctx, pgfixture.Msg(inst, "2301"), v.MdtrtID, psn, []settlement.LineInput{monConsult, monCeftriax})
	require.NoError(s.t, err)
	return v.MdtrtID
}

// discharge is 2402 and 2304 at when.
func (s *monitorScript) discharge(name, inst, psn, mdtrtID, when string) {
	ctx := context.Background()
	end := s.at(when)
	_, err := s.engine.UpdateVisit(ctx, pgfixture.Msg(inst, "2402"), settlement.VisitUpdate{MdtrtID: mdtrtID, PsnNo: psn, End: end})
	require.NoError(s.t, err)
	a, err := s.engine.Settle(ctx, pgfixture.Msg(inst, "2304"), settlement.SettleInput{MdtrtID: mdtrtID, PsnNo: psn, MedType: "21"})
	require.NoError(s.t, err)
	s.setl[name] = a
}

// outpatient is 2201, 2204 and 2207 at when.
func (s *monitorScript) outpatient(name, inst, psn, when string) {
	ctx := context.Background()
	s.at(when)
	v, err := s.engine.RegisterVisit(ctx, pgfixture.Msg(inst, "2201"), settlement.VisitInput{PsnNo: psn, Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(s.t, err)
	_, err = s.engine.UploadLines(ctx, pgfixture.Msg(inst, "2204"), v.MdtrtID, psn, []settlement.LineInput{monConsult})
	require.NoError(s.t, err)
	a, err := s.engine.Settle(ctx, pgfixture.Msg(inst, "2207"), settlement.SettleInput{MdtrtID: v.MdtrtID, PsnNo: psn, MedType: "11"})
	require.NoError(s.t, err)
	s.setl[name] = a
}

// sale is 2102 at when.
func (s *monitorScript) sale(name, inst, psn, when string) {
	s.at(when)
	a, err := s.engine.PharmacySettle(context.Background(), pgfixture.Msg(inst, "2102"), settlement.PharmacyInput{PsnNo: psn,
		Lines: []settlement.LineInput{monMetformin}})
	require.NoError(s.t, err)
	s.setl[name] = a
}

// cancelSale is 2103 at when.
func (s *monitorScript) cancelSale(name, inst, psn, when string) {
	s.at(when)
	_, err := s.engine.Cancel(context.Background(), pgfixture.Msg(inst, "2103"), settlement.CancelInput{SetlID: s.setl[name].SetlID,
		PsnNo: psn, MedTypes: []string{"41"}})
	require.NoError(s.t, err)
}

// relayOutbox produces every outbox event to the settlements topic as the
// relay does (key psn_no, value the payload), in commit order.
func relayOutbox(t *testing.T, st *postgres.Store, brokers []string) []*kgo.Record {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Pool().Query(ctx, `SELECT event_key, payload FROM outbox_events ORDER BY created_at, chain, seq`)
	require.NoError(t, err)
	var recs []*kgo.Record
	for rows.Next() {
		var key, payload string
		require.NoError(t, rows.Scan(&key, &payload))
		recs = append(recs, &kgo.Record{Topic: kafka.MonitorSettlementsTopic, Key: []byte(key), Value: []byte(payload)})
	}
	require.NoError(t, rows.Err())
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	return recs
}

// readAlertsTopic reads the alerts topic until it holds n records and then
// a while longer, to see that no other follows.
func readAlertsTopic(t *testing.T, brokers []string, n int) []monitor.Alert {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafka.MonitorAlertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []monitor.Alert
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var a monitor.Alert
			require.NoError(t, json.Unmarshal(r.Value, &a))
			require.Equal(t, a.PsnNo, string(r.Key))
			out = append(out, a)
		})
		if len(out) >= n && deadline.Sub(time.Now()) > time.Second {
			deadline = time.Now().Add(time.Second)
		}
	}
	require.Len(t, out, n)
	return out
}

// bureauGet is GET path with key ("" for none); it returns the status and the body.
func bureauGet(t *testing.T, srv *httptest.Server, key, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"), "%s", body)
	return resp.StatusCode, body
}

func bureauAlerts(t *testing.T, srv *httptest.Server, key, query string) []monitor.Alert {
	t.Helper()
	status, body := bureauGet(t, srv, key, httpapi.AlertsPath+query)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var ans httpapi.AlertsAnswer
	require.NoError(t, json.Unmarshal(body, &ans))
	require.NotNil(t, ans.Alerts, "an empty list, not null: %s", body)
	return ans.Alerts
}

// startMonitor runs a monitor consumer of the fund-supervision group until
// stop (called at the latest when the test ends), which returns what Run did.
func startMonitor(t *testing.T, ctx context.Context, brokers []string, st monitor.Store) (*kafka.MonitorConsumer, func() error) {
	consumer := &kafka.MonitorConsumer{Brokers: brokers, Store: st, Log: pgfixture.Quiet(),
		Opts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = consumer.Run(runCtx) })
	stop := func() error {
		cancel()
		wg.Wait()
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return consumer, stop
}

func TestFundSupervisionEndToEnd(t *testing.T) {
	ctx := context.Background()
	fx := pgfixture.NewEnv(t, testDay)
	st, c, engine := fx.Store, fx.Clock, fx.Engine
	s := &monitorScript{t: t, engine: engine, clock: c, setl: map[string]settlement.SettleAnswer{}}

	// The script's persons, by the names of their settlements (p1a, p1b, …).
	const p1, p2, p3, p4 = employee, employee4, employee13, retiree
	s.playMarch(p1, p2, p3, p4)

	// The settlements topic, with one event delivered twice.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, kafka.MonitorSettlementsTopic, kafka.MonitorAlertsTopic))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	recs := relayOutbox(t, st, brokers)
	require.Len(t, recs, 13, "12 settlements and a cancellation")
	relayOutboxRecord(t, brokers, recs[0])

	alertStore := postgres.NewAlertStore(st)
	consumer, stop := startMonitor(t, ctx, brokers, alertStore)
	require.Eventually(t, func() bool {
		st := consumer.Stats()
		return st.Observed == 13 && st.Duplicates == 1 && st.Published == 3
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, kafka.MonitorStats{Observed: 13, Duplicates: 1, Raised: 3, Published: 3}, consumer.Stats())

	onTopic := readAlertsTopic(t, brokers, 3)
	byRule := map[monitor.Rule]monitor.Alert{}
	for _, a := range onTopic {
		byRule[a.Rule] = a
	}
	overlap, readmit, drug := byRule[monitor.RuleOverlappingStays], byRule[monitor.RuleReadmission], byRule[monitor.RuleRepeatedDrug]
	s.requireTopicAlerts(overlap, readmit, drug, p1, p2, p3)
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM alerts WHERE published_at IS NOT NULL`).Scan(&n))
	require.Equal(t, 3, n)

	// The bureau API.
	_, keys, key := storetest.DevKeys(t)
	api := &httpapi.Server{Engine: engine, Keys: keys, Log: pgfixture.Quiet(), Alerts: alertStore}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)

	// Hohhot's bureau: its insured persons' three alerts, by raised_at.
	s.requireHohhotBureauAlerts(srv, key["bureau:150100"], onTopic)
	// Baotou's bureau: only the alert involving its hospital; Wuhan's: nothing.
	requireOtherBureausAlerts(t, srv, key, overlap)
	// Filters.
	requireAlertFilters(t, srv, key, readmit, drug, p3)
	// Refusals, as JSON.
	requireAlertRefusals(t, srv, key)
	// A server without the alerts port says so.
	bare := httptest.NewServer((&httpapi.Server{Engine: engine, Keys: keys, Log: pgfixture.Quiet()}).Handler())
	t.Cleanup(bare.Close)
	status, _ := bureauGet(t, bare, key["bureau:150100"], httpapi.AlertsPath)
	require.Equal(t, http.StatusServiceUnavailable, status)

	// A second monitor (a new member of the group, say after a deploy)
	// resumes after the committed offsets: of the settlements topic it
	// reads only what came since, here the relay publishing an event again.
	require.NoError(t, stop())
	relayOutboxRecord(t, brokers, recs[5])
	again, stop2 := startMonitor(t, ctx, brokers, alertStore)
	require.Eventually(t, func() bool { return again.Stats().Duplicates == 1 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, stop2())
	require.Equal(t, kafka.MonitorStats{Duplicates: 1}, again.Stats())
	require.Len(t, bureauAlerts(t, srv, key["bureau:150100"], ""), 3)
}

// playMarch is the script's March, in order. p1 is admitted in Hohhot and,
// meanwhile, in Baotou; p2 is readmitted 7 days after discharge; p3 buys
// metformin six times, one of them cancelled; p4's visits are ordinary.
func (s *monitorScript) playMarch(p1, p2, p3, p4 string) {
	m1 := s.admit(hohhotHospital, p1, "01 09:00")
	m2 := s.admit(hohhotHospital, p2, "01 10:00")
	s.sale("d1", hohhotPharmacy, p3, "02 10:00")
	s.outpatient("p4a", hohhotSecond, p4, "02 11:00")
	m3 := s.admit(baotouHospital, p1, "03 09:00")
	s.sale("p4b", hohhotPharmacy, p4, "03 10:00")
	s.sale("d2", hohhotPharmacy, p3, "04 10:00")
	s.cancelSale("d2", hohhotPharmacy, p3, "04 10:30")
	s.discharge("p2a", hohhotHospital, p2, m2, "05 10:00")
	s.discharge("p1b", baotouHospital, p1, m3, "06 10:00")
	s.sale("d3", hohhotPharmacy, p3, "06 11:00")
	s.discharge("p1a", hohhotHospital, p1, m1, "08 10:00")
	s.sale("d4", hohhotPharmacy, p3, "09 10:00")
	s.sale("d5", hohhotPharmacy, p3, "11 10:00")
	m4 := s.admit(hohhotSecond, p2, "12 09:00")
	s.sale("d6", hohhotPharmacy, p3, "13 10:00")
	s.discharge("p2b", hohhotSecond, p2, m4, "14 10:00")
}

// ids are the setl_ids of the script's settlements of those names.
func (s *monitorScript) ids(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, s.setl[n].SetlID)
	}
	return out
}

// requireTopicAlerts checks the three alerts on the alerts topic: who, and
// which settlements are their evidence.
func (s *monitorScript) requireTopicAlerts(overlap, readmit, drug monitor.Alert, p1, p2, p3 string) {
	t := s.t
	require.Equal(t, p1, overlap.PsnNo)
	require.Equal(t, s.ids("p1b", "p1a"), overlap.Evidence)
	require.Equal(t, []string{"150100", "150200"}, overlap.Regions)
	require.Equal(t, p2, readmit.PsnNo)
	require.Equal(t, s.ids("p2a", "p2b"), readmit.Evidence)
	require.Equal(t, p3, drug.PsnNo)
	require.Equal(t, s.ids("d1", "d3", "d4", "d5", "d6"), drug.Evidence, "the cancelled purchase is not evidence")
}

// sortedAlertIDs are the alerts' ids, sorted.
func sortedAlertIDs(as []monitor.Alert) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	slices.Sort(ids)
	return ids
}

// requireHohhotBureauAlerts: Hohhot's bureau sees its insured persons' three
// alerts, by raised_at, each with the settlements involved as the engine
// answered them.
func (s *monitorScript) requireHohhotBureauAlerts(srv *httptest.Server, bureauKey string, onTopic []monitor.Alert) {
	t := s.t
	hohhotAlerts := bureauAlerts(t, srv, bureauKey, "")
	require.Equal(t, sortedAlertIDs(onTopic), sortedAlertIDs(hohhotAlerts))
	require.Equal(t, []monitor.Rule{monitor.RuleOverlappingStays, monitor.RuleRepeatedDrug, monitor.RuleReadmission},
		[]monitor.Rule{hohhotAlerts[0].Rule, hohhotAlerts[1].Rule, hohhotAlerts[2].Rule})
	for _, a := range hohhotAlerts {
		require.Equal(t, "150100", a.InsuredRegion)
		require.Len(t, a.Settlements, len(a.Evidence))
		for i, ev := range a.Settlements {
			ans := s.setl[nameOf(s.setl, ev.SetlID)]
			require.Equal(t, a.Evidence[i], ev.SetlID)
			require.Equal(t, ans.MdtrtID, ev.MdtrtID)
			require.Equal(t, ans.MedType, ev.MedType)
			require.True(t, ans.SetlTime.Equal(ev.SetlTime), "%s: %s vs %s", ev.SetlID, ans.SetlTime, ev.SetlTime)
			require.Equal(t, ans.Info.MedfeeSumamt, ev.MedfeeSumamt)
			require.NotEmpty(t, ev.Institution)
		}
	}
	require.Equal(t, []string{hohhotHospital, baotouHospital}, []string{hohhotAlerts[0].Settlements[1].Institution, hohhotAlerts[0].Settlements[0].Institution})
	require.Equal(t, rules.Money(12540), hohhotAlerts[1].Settlements[0].MedfeeSumamt)
}

// requireOtherBureausAlerts: Baotou's bureau sees only the alert involving
// its hospital, Wuhan's nothing.
func requireOtherBureausAlerts(t *testing.T, srv *httptest.Server, key map[string]string, overlap monitor.Alert) {
	baotouAlerts := bureauAlerts(t, srv, key["bureau:150200"], "")
	require.Len(t, baotouAlerts, 1)
	require.Equal(t, overlap.ID, baotouAlerts[0].ID)
	require.Equal(t, baotouHospital, baotouAlerts[0].Settlements[0].Institution)
	require.Equal(t, "150200", baotouAlerts[0].Settlements[0].Region)
	// Wuhan's bureau: nothing of it.
	require.Empty(t, bureauAlerts(t, srv, key["bureau:420100"], ""))
}

// requireAlertFilters checks the query filters.
func requireAlertFilters(t *testing.T, srv *httptest.Server, key map[string]string, readmit, drug monitor.Alert, p3 string) {
	hohhot := key["bureau:150100"]
	require.Equal(t, []string{readmit.ID}, sortedAlertIDs(bureauAlerts(t, srv, hohhot, "?rule=readmission")))
	require.Empty(t, bureauAlerts(t, srv, key["bureau:150200"], "?rule=readmission"))
	require.Equal(t, []string{drug.ID}, sortedAlertIDs(bureauAlerts(t, srv, hohhot, "?psn_no="+p3)))
	require.Equal(t, []string{drug.ID}, sortedAlertIDs(bureauAlerts(t, srv, hohhot, "?from=2026-03-09&to=2026-03-13")))
	require.Len(t, bureauAlerts(t, srv, hohhot, "?from=2026-03-08T02:00:00Z"), 3, "RFC 3339 bounds")
	require.Len(t, bureauAlerts(t, srv, hohhot, "?from=2026-03-08T02:00:00.000001Z"), 2)
	require.Len(t, bureauAlerts(t, srv, hohhot, "?limit=2"), 2)
}

// requireAlertRefusals: what the alerts endpoint refuses, it refuses as JSON.
func requireAlertRefusals(t *testing.T, srv *httptest.Server, key map[string]string) {
	for _, tc := range []struct {
		key, query string
		status     int
		msg        string
	}{
		{key[hohhotHospital], "", http.StatusForbidden, "is for a bureau key"},
		{"", "", http.StatusUnauthorized, "Bearer API key"},
		{"not-a-key-at-all-0123", "", http.StatusUnauthorized, "Bearer API key"},
		{key["bureau:150100"], "?rule=swipes", http.StatusBadRequest, "want one of overlapping_stays"},
		{key["bureau:150100"], "?from=March", http.StatusBadRequest, "from \"March\""},
		{key["bureau:150100"], "?from=2026-03-10&to=2026-03-09", http.StatusBadRequest, "is not before"},
		{key["bureau:150100"], "?limit=0", http.StatusBadRequest, "limit"},
	} {
		status, body := bureauGet(t, srv, tc.key, httpapi.AlertsPath+tc.query)
		require.Equal(t, tc.status, status, "%q %s: %s", tc.key, tc.query, body)
		var e struct {
			Error string `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
		require.Contains(t, e.Error, tc.msg)
	}
}

func relayOutboxRecord(t *testing.T, brokers []string, r *kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}).FirstErr())
}

func nameOf(setl map[string]settlement.SettleAnswer, setlID string) string {
	for n, a := range setl {
		if a.SetlID == setlID {
			return n
		}
	}
	return ""
}
