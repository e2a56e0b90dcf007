package fsiclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/adapters/httpapi"
	"github.com/medsettle/medsettle/adapters/postgres"
	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/adapters/postgres/pgtest"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The client is tested against the real server on a real PostgreSQL, as
// adapters/postgres does: every database starts migrated and seeded.
func TestMain(m *testing.M) { pgfixture.Main(m) }

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

var cst = time.FixedZone("CST", 8*3600)

// Dev keys (testdata/dev-keys.csv).
const (
	hospital    = "H15010000011"
	hospitalKey = "dev-h15010000011-secret"
	pharmacy    = "P15010000201"
	pharmacyKey = "dev-p15010000201-secret"
	bureauKey   = "dev-bureau-150100-secret"
	employee    = "15010000000000000001" // Hohhot employee, card 157213070278
	employee4   = "15010000000000000004"
)

// fault is what the wrapper in front of the server does to one request.
type fault int

const (
	pass       fault = iota
	dropBefore       // close the connection without passing the request on
	dropAfter        // process the request, then close the connection
	status502        // process the request, then answer 502
	hang             // process the request, then answer nothing until the client leaves
)

// faulty is an http.Handler in front of the real server that loses answers.
type faulty struct {
	next  http.Handler
	plan  func(infno string, n int) fault // n: 1 for the first request of infno
	mu    sync.Mutex
	seen  map[string]int
	lost  []string // the outputs the server gave that the client never saw
	msgid map[string][]string
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var env struct {
		Infno string `json:"infno"`
		Msgid string `json:"msgid"`
	}
	_ = json.Unmarshal(body, &env)
	f.mu.Lock()
	f.seen[env.Infno]++
	n := f.seen[env.Infno]
	f.msgid[env.Infno] = append(f.msgid[env.Infno], env.Msgid)
	plan := f.plan
	f.mu.Unlock()
	what := pass
	if plan != nil {
		what = plan(env.Infno, n)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch what {
	case pass:
		f.next.ServeHTTP(w, r)
		return
	case dropBefore:
		closeConn(w)
		return
	}
	// The platform finishes its work even if the client gives up meanwhile.
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
	f.mu.Lock()
	f.lost = append(f.lost, rec.Body.String())
	f.mu.Unlock()
	switch what {
	case dropAfter:
		closeConn(w)
	case status502:
		http.Error(w, "bad gateway", http.StatusBadGateway)
	case hang:
		<-r.Context().Done()
	}
}

func closeConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

func (f *faulty) count(infno string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[infno]
}

func (f *faulty) msgids(infno string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgid[infno]...)
}

func (f *faulty) lostAnswers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lost...)
}

func (f *faulty) setPlan(plan func(infno string, n int) fault) {
	f.mu.Lock()
	f.plan = plan
	f.mu.Unlock()
}

// platform is the real server on its own database, behind a faulty wrapper.
type platform struct {
	t      *testing.T
	url    string
	store  *postgres.Store
	engine *settlement.Engine
	rules  *rules.RuleSet
	wrap   *faulty
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	dsn := pgtest.NewDB(t)
	st, err := postgres.Open(context.Background(), dsn, quietLog())
	require.NoError(t, err)
	t.Cleanup(st.Close)
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	day := time.Date(2026, 3, 15, 10, 0, 0, 0, cst)
	eng := &settlement.Engine{Rules: rs, Store: st, Now: func() time.Time { return day }}
	raw, err := medsettle.DevKeys()
	require.NoError(t, err)
	keys, err := httpapi.LoadKeys(bytes.NewReader(raw))
	require.NoError(t, err)
	api := &httpapi.Server{Engine: eng, Keys: keys, Log: quietLog()}
	p := &platform{t: t, store: st, engine: eng, rules: rs,
		wrap: &faulty{next: api.Handler(), seen: map[string]int{}, msgid: map[string][]string{}}}
	srv := httptest.NewServer(p.wrap)
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *platform) count(sql string, args ...any) int {
	p.t.Helper()
	var n int
	require.NoError(p.t, p.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func (p *platform) counters(psnNo string) rules.Counters {
	p.t.Helper()
	c, err := p.engine.YearCountersOf(context.Background(), psnNo, 2026)
	require.NoError(p.t, err)
	return c
}

func (p *platform) auditOK() {
	p.t.Helper()
	rep, err := p.store.Audit(context.Background())
	require.NoError(p.t, err)
	require.True(p.t, rep.OK(), "audit: %v", rep.Problems)
}
