package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// The platform's day in these tests: 2026-03-15 10:00 at the counter.
var testDay = time.Date(2026, 3, 15, 10, 0, 0, 0, rules.CST)

// env is one test's platform: its own database, engine and HTTP server.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	engine  *settlement.Engine
	store   *postgres.Store
	clock   *pgfixture.Clock
	rules   *rules.RuleSet
	persons map[string]settlement.Person
	keys    map[string]string // principal (fixmedins_code or bureau:admdvs) -> key
}

// Every test database starts migrated and seeded with the registry persons,
// as adapters/postgres does it.
func TestMain(m *testing.M) { pgfixture.Main(m) }

func newEnv(t *testing.T) *env {
	t.Helper()
	fx := pgfixture.NewEnv(t, testDay)
	_, keys, keyOf := storetest.DevKeys(t)
	e := &env{t: t, engine: fx.Engine, store: fx.Store, clock: fx.Clock, rules: fx.Rules,
		persons: map[string]settlement.Person{}, keys: keyOf}
	for _, p := range storetest.Persons(t) {
		e.persons[p.PsnNo] = p
	}
	st := fx.Store
	api := &httpapi.Server{Engine: e.engine, Keys: keys, Log: pgfixture.Quiet(),
		Ready: func(ctx context.Context) error { return st.Pool().Ping(ctx) }}
	e.srv = httptest.NewServer(api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// answer is the answer envelope (its output kept raw) and the HTTP status.
type answer struct {
	fsi.Answer
	status int
}

var msgSeq atomic.Int64

// msgid returns a new msgid of inst in the national shape.
func msgid(inst string) string {
	n := msgSeq.Add(1)
	t := testDay.Add(time.Duration(n/10000) * time.Second)
	return fmt.Sprintf("%s%s%04d", inst, t.Format("20060102150405"), n%10000)
}

// envelope is a complete national request envelope.
func envelope(inst, infno, id string, input any) []byte {
	in, err := json.Marshal(input)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(map[string]any{"infno": infno, "msgid": id, "mdtrtarea_admvs": "", "insuplc_admdvs": "",
		"recer_sys_code": "MEDSETTLE", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "", "infver": "V1.0",
		"opter_type": "1", "opter": "0001", "opter_name": "收费员", "inf_time": "2026-03-15 10:00:00",
		"fixmedins_code": inst, "fixmedins_name": "", "sign_no": "", "input": json.RawMessage(in)})
	if err != nil {
		panic(err)
	}
	return b
}

// post sends body with key and decodes the answer envelope.
func (e *env) post(key string, body []byte) answer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+httpapi.Path, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	var a answer
	require.NoError(e.t, json.Unmarshal(raw, &a), "answer %s", raw)
	a.status = resp.StatusCode
	return a
}

// send sends one message of inst with its own key and a new msgid.
func (e *env) send(inst, infno string, input any) answer {
	e.t.Helper()
	return e.post(e.keys[inst], envelope(inst, infno, msgid(inst), input))
}

// ok sends a message that must succeed and decodes its output into out (when not nil).
func (e *env) ok(inst, infno string, input any, out any) answer {
	e.t.Helper()
	a := e.send(inst, infno, input)
	require.Equal(e.t, 0, a.Infcode, "%s at %s refused: %s", infno, inst, a.ErrMsg)
	require.Equal(e.t, http.StatusOK, a.status)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(a.Output, out), "output %s", a.Output)
	}
	return a
}

// rowCounts counts the rows of every table of the schema.
func (e *env) rowCounts() map[string]int {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.store.Pool().Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	require.NoError(e.t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(e.t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(e.t, rows.Err())
	require.GreaterOrEqual(e.t, len(tables), 9, "the schema's tables")
	out := map[string]int{}
	for _, tb := range tables {
		var n int
		require.NoError(e.t, e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM "`+tb+`"`).Scan(&n))
		out[tb] = n
	}
	return out
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func (e *env) auditOK() {
	e.t.Helper()
	rep, err := e.store.Audit(context.Background())
	require.NoError(e.t, err)
	require.True(e.t, rep.OK(), "audit: %v", rep.Problems)
}

// fee is one fee line, on the wire and as the rules price it.
type fee struct{ sn, code, cnt, pric, amt string }

func (f fee) wire(mdtrtID, psnNo, bchno string) map[string]any {
	return map[string]any{"feedetl_sn": f.sn, "mdtrt_id": mdtrtID, "psn_no": psnNo, "chrg_bchno": bchno,
		"med_list_codg": f.code, "medins_list_codg": "H-" + f.code, "det_item_fee_sumamt": f.amt, "cnt": f.cnt,
		"pric": f.pric, "fee_ocur_time": "2026-03-15 09:30:00"}
}

func (f fee) line() rules.Line {
	return rules.Line{SN: f.sn, Code: f.code, Cnt: decimal.RequireFromString(f.cnt), Pric: decimal.RequireFromString(f.pric),
		Amount: decimal.RequireFromString(f.amt)}
}

func feedetail(mdtrtID, psnNo, bchno string, fees ...fee) map[string]any {
	lines := make([]map[string]any, len(fees))
	for i, f := range fees {
		lines[i] = f.wire(mdtrtID, psnNo, bchno)
	}
	return map[string]any{"feedetail": lines}
}

func total(fees ...fee) rules.Money {
	var sum rules.Money
	for _, f := range fees {
		m, err := rules.ParseMoney(f.amt)
		if err != nil {
			panic(err)
		}
		sum += m
	}
	return sum
}

// counters reads a person's 2026 counters with 5206, as a bureau or HIS would.
func (e *env) counters(inst, psnNo string) rules.Counters {
	e.t.Helper()
	var out struct {
		Cuminfo struct {
			PsnNo    string         `json:"psn_no"`
			Year     int            `json:"year"`
			Counters rules.Counters `json:"counters"`
		} `json:"cuminfo"`
	}
	e.ok(inst, "5206", map[string]any{"data": map[string]string{"psn_no": psnNo, "cum_ym": "202603"}}, &out)
	require.Equal(e.t, 2026, out.Cuminfo.Year)
	return out.Cuminfo.Counters
}

// expected prices the claim with the pure pricing function, as the engine must.
func (e *env) expected(inst, psnNo, medType string, useAcct bool, before rules.Counters, fees ...fee) *rules.Result {
	e.t.Helper()
	p, ok := e.persons[psnNo]
	require.True(e.t, ok, psnNo)
	in := e.rules.Institutions[inst]
	require.NotNil(e.t, in, inst)
	day := settlement.DateOf(e.clock.Now())
	c := &rules.Claim{InsuredRegion: p.InsuredRegion, Institution: inst, MedType: medType, SetlDate: day,
		Insutype: p.Insutype, Retired: p.Retired, Registered: p.RegisteredFor(in.Admdvs, day),
		Assistance: p.Assistance, UseAccount: useAcct, State: before}
	for _, f := range fees {
		c.Lines = append(c.Lines, f.line())
	}
	res, err := e.rules.Price(c)
	require.NoError(e.t, err)
	return res
}

// setl is the settlement output (2206/2207/2208/2102/2304...) as the tests read it.
type setl struct {
	Setlinfo struct {
		MdtrtID  string `json:"mdtrt_id"`
		SetlID   string `json:"setl_id"`
		PsnNo    string `json:"psn_no"`
		SetlTime string `json:"setl_time"`
		MedType  string `json:"med_type"`
		Insutype string `json:"insutype"`
		rules.Setlinfo
		MedinsSetlID string `json:"medins_setl_id"`
		ClrOptins    string `json:"clr_optins"`
		ClrType      string `json:"clr_type"`
	} `json:"setlinfo"`
	Setldetail []rules.FundPayment `json:"setldetail"`
}

// settleInput is the input of 2206/2207/2303/2304.
func settleInput(mdtrtID, psnNo, medType, insutype string, sum rules.Money, useAcct bool) map[string]any {
	flag := "0"
	if useAcct {
		flag = "1"
	}
	return map[string]any{"data": map[string]any{"psn_no": psnNo, "mdtrt_cert_type": "02", "mdtrt_cert_no": "",
		"med_type": medType, "medfee_sumamt": sum.String(), "psn_setlway": "01", "mdtrt_id": mdtrtID, "chrg_bchno": "B1",
		"insutype": insutype, "acct_used_flag": flag}}
}
