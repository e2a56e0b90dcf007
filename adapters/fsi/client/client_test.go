package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/adapters/fsi/client"
)

const hospital = "H15010000011"

func TestMsgid(t *testing.T) {
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, fsi.CST)
	c, err := client.New("http://x", "k", hospital, client.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Msgid()
	if len(id) != 30 || id[:12] != hospital || id[12:26] != "20260315100000" || fsi.CheckMsgid(id, hospital) != nil {
		t.Fatalf("msgid %s", id)
	}
	// 25,000 msgids in one (frozen) second: all distinct; past 10,000 they borrow the next seconds.
	seen := map[string]bool{id: true}
	for i := 0; i < 25000; i++ {
		id := c.Msgid()
		if seen[id] {
			t.Fatalf("msgid %s handed out twice", id)
		}
		seen[id] = true
	}
	if last := c.Msgid(); last[12:26] != "20260315100002" {
		t.Fatalf("last msgid %s", last)
	}

	// A clock that steps back does not reuse a second.
	now = now.Add(-time.Hour)
	if back := c.Msgid(); back[12:26] != "20260315100002" || seen[back] {
		t.Fatalf("msgid %s after the clock stepped back", back)
	}

	// Concurrent callers never share one.
	c2, err := client.New("http://x", "k", hospital)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([][]string, 8)
	for g := range ids {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				ids[g] = append(ids[g], c2.Msgid())
			}
		}(g)
	}
	wg.Wait()
	all := map[string]bool{}
	for _, l := range ids {
		for _, id := range l {
			if all[id] {
				t.Fatalf("msgid %s handed out to two callers", id)
			}
			all[id] = true
		}
	}
}

// Terminals of one institution never meet, even in one frozen second.
func TestTerminalsNeverShareMsgids(t *testing.T) {
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, fsi.CST)
	seen := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for term := 0; term < 3; term++ {
		c, err := client.New("http://x", "k", hospital, client.WithTerminal(term, 3), client.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(term int) {
			defer wg.Done()
			for i := 0; i < 7000; i++ {
				id := c.Msgid()
				mu.Lock()
				if prev, dup := seen[id]; dup {
					t.Errorf("msgid %s of terminal %d was terminal %d's", id, term, prev)
				}
				seen[id] = term
				mu.Unlock()
			}
		}(term)
	}
	wg.Wait()
	for _, bad := range [][2]int{{3, 3}, {-1, 2}, {0, 0}} {
		if _, err := client.New("http://x", "k", hospital, client.WithTerminal(bad[0], bad[1])); err == nil {
			t.Errorf("terminal %d of %d accepted", bad[0], bad[1])
		}
	}
	if _, err := client.New("http://x", "k", hospital, client.WithSequenceRange(10, 9)); err == nil {
		t.Error("range 10..9 accepted")
	}
}

// The platform says it cannot tell (err_code outcome_unknown): CallSettle
// reverses; a refusal without the code is final, whatever its wording.
func TestOutcomeUnknownIsReadFromTheCode(t *testing.T) {
	var mu sync.Mutex
	var infnos []string
	first := `{"infcode":-1,"err_msg":"whatever the words","output":null,"err_code":"outcome_unknown"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var env fsi.Envelope
		_ = json.Unmarshal(b, &env)
		mu.Lock()
		infnos = append(infnos, env.Infno)
		mu.Unlock()
		switch {
		case env.Infno == "2601":
			_, _ = io.WriteString(w, `{"infcode":0,"output":{"data":{"rslt":"reversed"}}}`)
		default:
			_, _ = io.WriteString(w, first)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k", hospital)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CallSettle(context.Background(), "2207", "P1", fsi.SettleInput{})
	var uo *client.UnknownOutcome
	if !errors.As(err, &uo) || !errors.Is(err, client.ErrReversed) || uo.Reversal.Outcome != fsi.Reversed {
		t.Fatalf("err %v", err)
	}
	first = `{"infcode":-1,"err_msg":"the outcome is unknown: reverse it with 2601","output":null}`
	_, err = c.CallSettle(context.Background(), "2207", "P1", fsi.SettleInput{})
	var rf *client.Refusal
	if !errors.As(err, &rf) || rf.OutcomeUnknown() || errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("a refusal without err_code: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := len(infnos); got != 3 || infnos[1] != "2601" {
		t.Fatalf("messages %v", infnos)
	}
}
