package loadgen

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	fsiclient "github.com/medsettle/medsettle/adapters/fsi/client"
)

// Report is what a run measured.
type Report struct {
	Counters int
	Mix      Mix
	Elapsed  time.Duration
	// Rate is the open-loop target (flows = settlements per second); 0: closed loop.
	Rate float64
	// Open loop: flows scheduled, dropped (every counter busy and the
	// queue full: never started) and started late (more than LateAfter
	// behind schedule).
	Scheduled, Dropped, Late int

	mu       sync.Mutex
	latency  map[string][]time.Duration // by infno, answered messages
	refused  map[string]*tally          // infcode -1, by infno
	failed   map[string]*tally          // no answer (unknown outcome, transport), by infno
	flows    map[string]int
	flowErrs map[string]int
	fatalE   error
	window   time.Duration              // open loop: the time flows were scheduled over
	lags     []time.Duration            // open loop: start lag of each flow started
	flowLat  map[string][]time.Duration // open loop: by flow kind, scheduled start to end
}

type tally struct {
	n     int
	first string
}

func newReport(cfg Config) *Report {
	return &Report{Counters: cfg.Counters, Mix: cfg.Mix, Rate: cfg.Rate, latency: map[string][]time.Duration{}, refused: map[string]*tally{},
		failed: map[string]*tally{}, flows: map[string]int{}, flowErrs: map[string]int{}, flowLat: map[string][]time.Duration{}}
}

func (r *Report) scheduled(dropped bool) {
	r.mu.Lock()
	r.Scheduled++
	if dropped {
		r.Dropped++
	}
	r.mu.Unlock()
}

func (r *Report) started(lag time.Duration) {
	r.mu.Lock()
	r.lags = append(r.lags, lag)
	if lag > LateAfter {
		r.Late++
	}
	r.mu.Unlock()
}

func (r *Report) flowLatency(kind string, d time.Duration) {
	r.mu.Lock()
	r.flowLat[kind] = append(r.flowLat[kind], d)
	r.mu.Unlock()
}

// Started is the number of flows started.
func (r *Report) Started() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.flows {
		n += k
	}
	return n
}

func (r *Report) observe(o fsiclient.Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rf *fsiclient.Refusal
	switch {
	case o.Err == nil:
		r.latency[o.Infno] = append(r.latency[o.Infno], o.Elapsed)
	case errors.As(o.Err, &rf) && o.Answer != nil:
		r.latency[o.Infno] = append(r.latency[o.Infno], o.Elapsed)
		count(r.refused, o.Infno, rf.ErrMsg)
	default:
		count(r.failed, o.Infno, o.Err.Error())
	}
}

func count(m map[string]*tally, infno, msg string) {
	t := m[infno]
	if t == nil {
		t = &tally{first: msg}
		m[infno] = t
	}
	t.n++
}

func (r *Report) flowDone(kind string, err error) {
	r.mu.Lock()
	r.flows[kind]++
	if err != nil {
		r.flowErrs[kind]++
	}
	r.mu.Unlock()
}

func (r *Report) fatal(err error) {
	r.mu.Lock()
	if r.fatalE == nil {
		r.fatalE = err
	}
	r.mu.Unlock()
}

func (r *Report) fatalErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatalE
}

// Transactions is the number of messages answered (refusals included).
func (r *Report) Transactions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.latency {
		n += len(l)
	}
	return n
}

// Settlements is the number of settlements made (2207, 2304, 2102 answered with infcode 0).
func (r *Report) Settlements() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, infno := range []string{"2207", "2304", "2102"} {
		n += len(r.latency[infno])
		if t := r.refused[infno]; t != nil {
			n -= t.n
		}
	}
	return n
}

// Refusals is the number of infcode -1 answers.
func (r *Report) Refusals() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.refused {
		n += t.n
	}
	return n
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	tx, st, rf := r.Transactions(), r.Settlements(), r.Refusals()
	r.mu.Lock()
	defer r.mu.Unlock()
	// Rates are over the run, or in open loop over the schedule if that is
	// longer (the last flow is scheduled 1/Rate before its end).
	secs := max(r.Elapsed, r.window).Seconds()
	if secs == 0 {
		secs = 1e-9
	}
	if r.Rate > 0 {
		fmt.Fprintf(w, "medsettle load: open loop, target %g settlements/s, at most %d counters at once, %s, mix %s\n",
			r.Rate, r.Counters, r.Elapsed.Round(time.Millisecond), r.Mix)
	} else {
		fmt.Fprintf(w, "medsettle load: %d counters, %s, mix %s\n", r.Counters, r.Elapsed.Round(time.Millisecond), r.Mix)
	}
	var flows []string
	for _, k := range []string{"outpatient", "inpatient", "pharmacy", "cancel", "reverse"} {
		if n := r.flows[k]; n > 0 {
			s := fmt.Sprintf("%s %d", k, n)
			if e := r.flowErrs[k]; e > 0 {
				s += fmt.Sprintf(" (%d ended early)", e)
			}
			flows = append(flows, s)
		}
	}
	fmt.Fprintf(w, "flows: %s\n", strings.Join(flows, ", "))
	nfail := 0
	for _, t := range r.failed {
		nfail += t.n
	}
	fmt.Fprintf(w, "transactions %d (%.1f/s), settlements %d (%.1f/s), refusals (infcode -1) %d, unanswered %d\n",
		tx, float64(tx)/secs, st, float64(st)/secs, rf, nfail)
	if r.Rate > 0 {
		lags := slices.Clone(r.lags)
		slices.Sort(lags)
		fmt.Fprintf(w, "rate: target %g/s, achieved %.1f settlements/s (%.1f%%); flows scheduled %d, started %d, dropped %d (every counter busy, queue full), late %d (started > %s behind schedule)\n",
			r.Rate, float64(st)/secs, 100*float64(st)/secs/r.Rate, r.Scheduled, len(r.lags), r.Dropped, r.Late, LateAfter)
		fmt.Fprintf(w, "start lag (start - scheduled time): p50 %s, p99 %s, max %s\n", pct(lags, 0.5), pct(lags, 0.99), pct(lags, 1))
		var parts []string
		for _, k := range []string{"outpatient", "inpatient", "pharmacy", "cancel", "reverse"} {
			if l := slices.Clone(r.flowLat[k]); len(l) > 0 {
				slices.Sort(l)
				parts = append(parts, fmt.Sprintf("%s p50 %s p99 %s", k, pct(l, 0.5), pct(l, 0.99)))
			}
		}
		fmt.Fprintf(w, "whole flows from their scheduled start: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	infnos := make([]string, 0, len(r.latency))
	for k := range r.latency {
		infnos = append(infnos, k)
	}
	for k := range r.failed {
		if _, ok := r.latency[k]; !ok {
			infnos = append(infnos, k)
		}
	}
	sort.Strings(infnos)
	fmt.Fprintf(w, "%-6s %8s %9s %9s %9s %9s %8s\n", "infno", "count", "p50", "p95", "p99", "max", "refused")
	for _, k := range infnos {
		l := slices.Clone(r.latency[k])
		slices.Sort(l)
		nref := 0
		if t := r.refused[k]; t != nil {
			nref = t.n
		}
		fmt.Fprintf(w, "%-6s %8d %9s %9s %9s %9s %8d\n", k, len(l), pct(l, 0.50), pct(l, 0.95), pct(l, 0.99), pct(l, 1), nref)
	}
	if len(r.refused) > 0 {
		fmt.Fprintln(w, "\nrefusals (infcode -1) by infno, with the first err_msg:")
		for _, k := range sortedKeys(r.refused) {
			fmt.Fprintf(w, "  %s  %6d  %s\n", k, r.refused[k].n, r.refused[k].first)
		}
	}
	if len(r.failed) > 0 {
		fmt.Fprintln(w, "\nunanswered (transport errors, unknown outcomes) by infno, with the first error:")
		for _, k := range sortedKeys(r.failed) {
			fmt.Fprintf(w, "  %s  %6d  %s\n", k, r.failed[k].n, r.failed[k].first)
		}
	}
}

func sortedKeys(m map[string]*tally) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pct is the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	d := sorted[i]
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
