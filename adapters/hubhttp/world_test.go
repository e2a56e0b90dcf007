package hubhttp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/adapters/hubsim"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

const (
	wuhanResident = "42010000000000000044" // a resident (390) insured in Wuhan (420100, Hubei)
	harbinRetiree = "23010000000000000081" // a retired employee (310) insured in Harbin (230100, Heilongjiang)
	hohhotHosp    = "H15010000011"         // 内蒙古自治区人民医院, Hohhot (150100, Inner Mongolia)
	wuhanHosp     = "H42010000001"         // 协和医院, Wuhan (420100)
	harbinHosp    = "H23010000002"         // 哈医大一院, Harbin (230100)

	hohhot, wuhan, harbin = "150000", "420000", "230000"
)

var provinces = []string{hohhot, wuhan, harbin}

// testTokens is a tokens file as an operator would write it: a plain token
// for two provinces, a sha256 hash for the third, a token per hub→province
// direction and an admin token.
func testTokens(t *testing.T) hubhttp.Tokens {
	h := sha256.Sum256([]byte(provinceToken(harbin)))
	file := strings.Join([]string{
		"# who,token",
		"who,token",
		hohhot + "," + provinceToken(hohhot),
		wuhan + "," + provinceToken(wuhan),
		harbin + ",sha256:" + hex.EncodeToString(h[:]),
		"hub:" + hohhot + "," + peerToken(hohhot),
		"hub:" + wuhan + "," + peerToken(wuhan),
		"hub:" + harbin + "," + peerToken(harbin),
		"admin," + adminToken,
	}, "\n")
	tok, err := hubhttp.LoadTokens(strings.NewReader(file))
	require.NoError(t, err)
	return tok
}

func provinceToken(p string) string { return "test-province-" + p + "-secret" }
func peerToken(p string) string     { return "test-hub-to-" + p + "-secret" }

const adminToken = "test-hub-admin-secret"

// province is one deployment: its own database and engine, serving the hub
// on its own HTTP server, calling the hub over HTTP.
type province struct {
	code   string
	engine *settlement.Engine
	store  *postgres.Store
	client *hubhttp.Client
	peer   *httptest.Server
}

// world is three provinces joined by the hub over real HTTP.
type world struct {
	rules  *rules.RuleSet
	sim    *hubsim.Sim
	hub    *hubhttp.Server
	hubURL string
	admin  *hubhttp.Admin
	prov   map[string]*province
}

type worldOptions struct {
	clientTimeout time.Duration // each province's Client.Timeout
	delayBy       time.Duration // how long a delay fault holds a delivery
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	if o.clientTimeout == 0 {
		o.clientTimeout = 5 * time.Second
	}
	if o.delayBy == 0 {
		o.delayBy = 1500 * time.Millisecond
	}
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	sim := hubsim.New(rs)
	sim.DelayBy = o.delayBy
	hub := hubhttp.NewServer(sim.Hub, testTokens(t))
	hub.Faults = sim
	hub.PeerTimeout = 5 * time.Second
	hub.Log = pgfixture.Quiet()
	hubTS := httptest.NewServer(hub.Handler())
	t.Cleanup(hubTS.Close)
	w := &world{rules: rs, sim: sim, hub: hub, hubURL: hubTS.URL, prov: map[string]*province{},
		admin: &hubhttp.Admin{URL: hubTS.URL, Token: adminToken}}
	now := func() time.Time { return time.Date(2026, 3, 15, 10, 0, 0, 0, rules.CST) }
	for _, code := range provinces {
		st := pgfixture.Store(t)
		cl := &hubhttp.Client{URL: hubTS.URL, Province: code, Token: provinceToken(code), Timeout: o.clientTimeout}
		e := &settlement.Engine{Rules: rs, Store: st, Province: code, Hub: cl, Now: now}
		e.Reverser = &settlement.InlineReverser{Hub: cl, Backoff: 5 * time.Millisecond}
		peer := httptest.NewServer(hubhttp.PeerHandlerWithLog(e, peerToken(code), pgfixture.Quiet()))
		t.Cleanup(peer.Close)
		require.NoError(t, hub.Connect(code, peer.URL))
		w.prov[code] = &province{code: code, engine: e, store: st, client: cl, peer: peer}
	}
	// Delayed deliveries write to the databases: let them land before the
	// stores close (cleanups run last-registered first).
	t.Cleanup(hub.Wait)
	return w
}

// visit registers an outpatient visit of psn at inst in province p and uploads two lines.
func (w *world) visit(t *testing.T, p *province, inst, psn string) string {
	t.Helper()
	ctx := context.Background()
	v, err := p.engine.RegisterVisit(ctx, pgfixture.Msg(inst, "2201"), settlement.VisitInput{PsnNo: psn, Kind: settlement.VisitOutpatient, MedType: "11"})
	require.NoError(t, err)
	_, err = p.engine.UploadLines(ctx, pgfixture.Msg(inst, "2204"), v.MdtrtID, psn, []settlement.LineInput{
		{SN: "1", Code: "002302000010000", Cnt: "2", Pric: "380.00", Amount: "760.00"},
		{SN: "2", Code: "001103000010000", Cnt: "1", Pric: "120.00", Amount: "120.00"},
	})
	require.NoError(t, err)
	return v.MdtrtID
}

func count(t *testing.T, p *province, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, p.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func balance(t *testing.T, p *province, account string) rules.Money {
	t.Helper()
	var s string
	require.NoError(t, p.store.Pool().QueryRow(context.Background(),
		`SELECT COALESCE(sum(amount), 0)::DECIMAL(18,2)::TEXT FROM ledger_entries WHERE account = $1`, account).Scan(&s))
	m, err := rules.ParseMoney(s)
	require.NoError(t, err)
	return m
}

func counters(t *testing.T, p *province, psn string) rules.Counters {
	t.Helper()
	c, err := p.engine.YearCountersOf(context.Background(), psn, 2026)
	require.NoError(t, err)
	return c
}

// pair is a direction of cross-province settlement.
type pair struct{ treatment, insured string }

// standing returns, per pair, the standing cross-province settlements (not
// cancelled, not reversals) that province p records in role.
func (w *world) standing(t *testing.T, p *province, role settlement.Role) map[pair][]string {
	t.Helper()
	rows, err := p.store.Pool().Query(context.Background(),
		`SELECT setl_id, mdtrtarea_admvs, insuplc_admdvs FROM settlements
		 WHERE role = $1 AND status = 'settled' AND reverses = '' ORDER BY setl_id`, string(role))
	require.NoError(t, err)
	defer rows.Close()
	out := map[pair][]string{}
	for rows.Next() {
		var id, treat, insured string
		require.NoError(t, rows.Scan(&id, &treat, &insured))
		k := pair{w.rules.Province(treat), w.rules.Province(insured)}
		out[k] = append(out[k], id)
	}
	require.NoError(t, rows.Err())
	return out
}

// agree checks what must hold whatever the network did, once delayed
// deliveries have landed: every province's audit is clean; between every two
// provinces the receivable of one equals the payable of the other; and the
// treatment side of each pair records exactly the settlements (by setl_id)
// that the insured side does. It returns the standing settlements per pair.
func (w *world) agree(t *testing.T) map[pair]int {
	t.Helper()
	w.hub.Wait()
	ctx := context.Background()
	for _, code := range provinces {
		rep, err := w.prov[code].store.Audit(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "audit of %s: %v", code, rep.Problems)
	}
	for _, a := range provinces {
		for _, b := range provinces {
			if a < b {
				ab := balance(t, w.prov[a], settlement.ClearingAccount(b))
				ba := balance(t, w.prov[b], settlement.ClearingAccount(a))
				require.Equal(t, rules.Money(0), ab+ba, "%s holds %s on clearing:%s, %s holds %s on clearing:%s", a, ab, b, b, ba, a)
			}
		}
	}
	treated, insured := map[pair][]string{}, map[pair][]string{}
	for _, code := range provinces {
		for k, v := range w.standing(t, w.prov[code], settlement.RoleTreatment) {
			require.Equal(t, code, k.treatment)
			treated[k] = v
		}
		for k, v := range w.standing(t, w.prov[code], settlement.RoleInsured) {
			require.Equal(t, code, k.insured)
			insured[k] = v
		}
	}
	require.Equal(t, insured, treated, "the treatment sides and the insured sides must record the same settlements")
	out := map[pair]int{}
	for k, v := range treated {
		out[k] = len(v)
	}
	return out
}

// records returns the hub's records of msgid through the admin endpoint, as "fault: result".
func (w *world) records(t *testing.T, msgid string) []string {
	t.Helper()
	w.hub.Wait()
	recs, err := w.admin.Records(context.Background(), msgid)
	require.NoError(t, err)
	var out []string
	for _, r := range recs {
		require.Equal(t, msgid, r.Msgid)
		out = append(out, r.Kind+" "+r.From+"→"+r.To+" "+r.Fault+": "+r.Result)
	}
	sort.Strings(out)
	return out
}
