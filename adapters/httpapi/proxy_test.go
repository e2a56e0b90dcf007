package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// A fault-injecting proxy in front of an env's server, for the tests of the
// client (adapters/fsi/client) against the real platform: it loses answers
// the way a network between a counter and the platform does.

// fault is what the proxy does to one request.
type fault int

const (
	pass       fault = iota
	dropBefore       // close the connection without passing the request on
	dropAfter        // pass the request on, then close the connection
	status502        // pass the request on, then answer 502
	hang             // pass the request on, then answer nothing until the client leaves
)

// faulty is the proxy: an http.Handler that passes requests on to next
// according to its plan, and records what it saw.
type faulty struct {
	next  http.Handler
	plan  func(infno string, n int) fault // n: 1 for the first request of infno
	mu    sync.Mutex
	seen  map[string]int
	lost  []string // the answers the server gave that the client never saw
	msgid map[string][]string
}

// newFaulty starts a proxy in front of e's server; its URL is the platform's
// as the client sees it.
func newFaulty(t *testing.T, e *env) (*faulty, string) {
	t.Helper()
	target, err := url.Parse(e.srv.URL)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = e.srv.Client().Transport
	f := &faulty{next: rp, seen: map[string]int{}, msgid: map[string][]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
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

// count is how many requests of infno the proxy saw.
func (f *faulty) count(infno string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[infno]
}

// msgids are the msgids of the requests of infno, in order.
func (f *faulty) msgids(infno string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgid[infno]...)
}

// lostAnswers are the answer bodies the server gave and the client never got.
func (f *faulty) lostAnswers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lost...)
}

// setPlan sets what happens to the next requests (nil: all pass).
func (f *faulty) setPlan(plan func(infno string, n int) fault) {
	f.mu.Lock()
	f.plan = plan
	f.mu.Unlock()
}
