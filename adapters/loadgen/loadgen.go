// Package loadgen drives a running medsettle server the way a province's
// counters would: many counters at once, each an institution with its key,
// running outpatient visits, admissions, pharmacy sales, cancellations and
// reversals through the fsi client (adapters/fsi/client), and reports throughput, latency
// per infno and refusals.
package loadgen

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fsiclient "github.com/medsettle/medsettle/adapters/fsi/client"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Key is one institution's API key.
type Key struct {
	Institution string
	Key         string
}

// ParseKeys reads a keys file (rows `fixmedins_code,key`, `#` comments, an
// optional header); bureau rows and sha256: hashes are skipped, since only a
// usable institution key can drive a counter.
func ParseKeys(r io.Reader) ([]Key, error) {
	var out []Key
	for row, err := range settlement.ReadKeyRows(r) {
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(row.Who, "bureau:") || strings.HasPrefix(row.Secret, "sha256:") {
			continue
		}
		out = append(out, Key{Institution: row.Who, Key: row.Secret})
	}
	if len(out) == 0 {
		return nil, errors.New("keys: no institution key (rows fixmedins_code,key)")
	}
	return out, nil
}

// Mix weighs the flows, relative to each other within a counter's kind: a
// hospital counter runs Outpatient, Inpatient, Cancel
// and Reverse flows, a pharmacy counter Pharmacy, Cancel and Reverse.
type Mix struct {
	Outpatient int // 1101, 2201, 2204 (1-5 lines), 2206, 2207
	Inpatient  int // 1101, 2401, 3 × 2301, 2402, 2304
	Pharmacy   int // 1101, 2102
	Cancel     int // a settlement, then 2208 (2103 at a pharmacy)
	Reverse    int // a settlement whose answer is taken as lost, then 2601
}

// DefaultMix is a day at the counters: mostly outpatient visits and sales.
var DefaultMix = Mix{Outpatient: 60, Inpatient: 8, Pharmacy: 60, Cancel: 4, Reverse: 3}

// ParseMix reads "outpatient=60,inpatient=8,pharmacy=100,cancel=4,reverse=3";
// flows not named weigh 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if !ok || err != nil || n < 0 {
			return m, fmt.Errorf("mix: %q is not flow=weight", part)
		}
		switch strings.TrimSpace(name) {
		case "outpatient":
			m.Outpatient = n
		case "inpatient":
			m.Inpatient = n
		case "pharmacy":
			m.Pharmacy = n
		case "cancel":
			m.Cancel = n
		case "reverse":
			m.Reverse = n
		default:
			return m, fmt.Errorf("mix: unknown flow %q (outpatient, inpatient, pharmacy, cancel, reverse)", name)
		}
	}
	if m == (Mix{}) {
		return m, errors.New("mix: every weight is 0")
	}
	return m, nil
}

func (m Mix) String() string {
	return fmt.Sprintf("outpatient=%d,inpatient=%d,pharmacy=%d,cancel=%d,reverse=%d", m.Outpatient, m.Inpatient, m.Pharmacy, m.Cancel, m.Reverse)
}

// Config is one load run. Exactly one of Duration and Count ends it.
//
// With Rate 0 the run is closed-loop: each of Counters counters starts its
// next flow as soon as its last one ended, so throughput is whatever the
// server sustains. With Rate > 0 it is open-loop: flows are scheduled at
// Rate per second, evenly spaced, whatever the answers' times (so a slow
// server meets the same arrivals and its slowness shows instead of being
// hidden by fewer requests); Counters is then the most flows under way at
// once. Every flow of the mix settles exactly once (a 2207, 2304 or 2102;
// a cancel or reverse flow then undoes it), so Rate is also the target of
// settlements per second.
type Config struct {
	URL      string
	Keys     []Key
	Counters int
	Duration time.Duration // run this long (flows under way finish); with Rate, schedule flows over this long
	Count    int           // or run this many flows in all; with Rate, schedule this many
	// Rate is the open-loop target: flows (= settlements) started per
	// second; 0 runs closed-loop. A scheduled flow waits for a free counter
	// in a queue of Counters places; a flow that finds the queue full is
	// dropped (counted, never started). Its start lag (actual start minus
	// scheduled time) is measured; a start more than LateAfter behind
	// schedule is counted late.
	Rate     float64
	Mix      Mix
	Timeout  time.Duration // per attempt (default 15 s)
	Rules    *rules.RuleSet
	Catalogs fs.FS // the rules directory: catalogs/<province>.csv supply the codes
	Persons  []settlement.Person
	Seed     uint64 // 0: random
}

// Run drives the server until the duration or count is reached, or ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Counters < 1 {
		return nil, errors.New("loadgen: at least one counter")
	}
	if (cfg.Duration > 0) == (cfg.Count > 0) {
		return nil, errors.New("loadgen: give a duration or a count")
	}
	if len(cfg.Persons) == 0 {
		return nil, errors.New("loadgen: no persons")
	}
	if cfg.Rate < 0 {
		return nil, errors.New("loadgen: a negative rate")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rep := newReport(cfg)
	// One connection pool for every client, with an idle connection kept
	// for each counter: http.DefaultTransport keeps 2 per host, so counters
	// beyond 2 would open (and leave in TIME_WAIT) a connection per message
	// whenever they outnumber the idle ones.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 2 * cfg.Counters
	transport.MaxIdleConnsPerHost = 2 * cfg.Counters
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	// One client per institution: msgids are unique within a client.
	clients := map[string]*fsiclient.Client{}
	var counters []*counter
	for i := range cfg.Counters {
		k := cfg.Keys[i%len(cfg.Keys)]
		inst := cfg.Rules.Institutions[k.Institution]
		if inst == nil {
			return nil, fmt.Errorf("loadgen: %s in the keys file is not an institution of the rules", k.Institution)
		}
		c := clients[k.Institution]
		if c == nil {
			var err error
			c, err = fsiclient.New(cfg.URL, k.Key, k.Institution, fsiclient.WithHTTPClient(hc), fsiclient.WithTimeout(cfg.Timeout),
				fsiclient.WithInstitution(inst.Name, inst.Admdvs), fsiclient.WithObserver(rep.observe))
			if err != nil {
				return nil, fmt.Errorf("loadgen: %w", err)
			}
			clients[k.Institution] = c
		}
		cat, err := loadCatalog(cfg.Catalogs, cfg.Rules.Province(inst.Admdvs))
		if err != nil {
			return nil, err
		}
		counters = append(counters, &counter{id: i, inst: inst, client: c, catalog: cat, rep: rep, mix: cfg.Mix,
			rnd: rand.New(rand.NewPCG(seed, uint64(i))), persons: cfg.Persons})
	}

	if cfg.Rate > 0 {
		rep.window = cfg.Duration
		if cfg.Count > 0 {
			rep.window = time.Duration(float64(cfg.Count) / cfg.Rate * float64(time.Second))
		}
		start := time.Now()
		runOpen(ctx, cfg, counters, rep, start)
		rep.Elapsed = time.Since(start)
		if ctx.Err() != nil {
			rep.window = 0 // cut short: the run is the measure
		}
		return rep, rep.fatalErr()
	}

	var remaining atomic.Int64
	remaining.Store(int64(cfg.Count))
	deadline := time.Now().Add(cfg.Duration)
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if cfg.Count > 0 {
			return remaining.Add(-1) >= 0
		}
		return time.Now().Before(deadline)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range counters {
		wg.Go(func() {
			for more() {
				if _, err := c.flow(ctx); err != nil {
					rep.fatal(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep, rep.fatalErr()
}

// catalogItem is a code a counter may bill, with a plausible price.
type catalogItem struct {
	code     string
	listType string
	cap      string
}

func loadCatalog(fsys fs.FS, province string) ([]catalogItem, error) {
	f, err := fsys.Open("catalogs/" + province + ".csv")
	if err != nil {
		return nil, fmt.Errorf("loadgen: catalog of province %s: %w", province, err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	recs, err := cr.ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, fmt.Errorf("loadgen: catalog of province %s: %v", province, err)
	}
	var out []catalogItem
	for _, r := range recs[1:] {
		if len(r) < 6 {
			continue
		}
		out = append(out, catalogItem{code: r[0], listType: r[2], cap: r[5]})
	}
	return out, nil
}

// counter is one counter (收费窗口) of an institution.
type counter struct {
	id      int
	inst    *rules.Institution
	client  *fsiclient.Client
	catalog []catalogItem
	persons []settlement.Person
	rep     *Report
	mix     Mix
	rnd     *rand.Rand
	seq     int
}

// LateAfter is how far behind its schedule an open-loop flow may start
// before it counts as late.
const LateAfter = 10 * time.Millisecond

// runOpen schedules flows at cfg.Rate per second from start, for
// cfg.Duration or cfg.Count flows, on at most len(counters) at once, and
// waits for the flows under way. Arrival times are fixed in advance
// (start + i/Rate), so a slow answer delays no arrival: the scheduler falls
// behind only if it is starved of CPU, and then it catches up, handing the
// flows out with their original times (their lag shows it).
func runOpen(ctx context.Context, cfg Config, counters []*counter, rep *Report, start time.Time) {
	queue := make(chan time.Time, len(counters)) // scheduled start times of flows waiting for a counter
	var wg sync.WaitGroup
	for _, c := range counters {
		wg.Go(func() {
			for due := range queue {
				if ctx.Err() != nil || rep.fatalErr() != nil {
					continue // drain: nothing more starts
				}
				rep.started(time.Since(due))
				kind, err := c.flow(ctx)
				rep.flowLatency(kind, time.Since(due))
				if err != nil {
					rep.fatal(err)
				}
			}
		})
	}
	for i := 0; ; i++ {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate)) // multiplied first: exact for whole rates
		if cfg.Count > 0 && i >= cfg.Count || cfg.Count == 0 && !due.Before(start.Add(cfg.Duration)) {
			break
		}
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if ctx.Err() != nil || rep.fatalErr() != nil {
			break
		}
		select {
		case queue <- due:
			rep.scheduled(false)
		default:
			rep.scheduled(true) // every counter busy and the queue full
		}
	}
	close(queue)
	wg.Wait()
}

// flow runs one flow chosen by the mix and returns its kind. A refusal or
// unknown outcome ends the flow (it is counted by the observer); only a bad
// key ends the counter.
func (c *counter) flow(ctx context.Context) (string, error) {
	kind := c.pick()
	err := c.run(ctx, kind)
	c.rep.flowDone(kind, err)
	var rf *fsiclient.Refusal
	if errors.As(err, &rf) && rf.Status == 401 {
		return kind, fmt.Errorf("loadgen: the key of %s is refused: %s", c.inst.Code, rf.ErrMsg)
	}
	return kind, nil
}

func (c *counter) pick() string {
	type w struct {
		name   string
		weight int
	}
	var ws []w
	if c.inst.Kind == rules.KindPharmacy {
		ws = []w{{"pharmacy", c.mix.Pharmacy}, {"cancel", c.mix.Cancel}, {"reverse", c.mix.Reverse}}
	} else {
		ws = []w{{"outpatient", c.mix.Outpatient}, {"inpatient", c.mix.Inpatient}, {"cancel", c.mix.Cancel}, {"reverse", c.mix.Reverse}}
	}
	total := 0
	for _, x := range ws {
		total += x.weight
	}
	if total == 0 {
		return ws[0].name
	}
	n := c.rnd.IntN(total)
	for _, x := range ws {
		if n < x.weight {
			return x.name
		}
		n -= x.weight
	}
	return ws[0].name
}

func (c *counter) run(ctx context.Context, kind string) error {
	pharmacy := c.inst.Kind == rules.KindPharmacy
	switch {
	case kind == "inpatient":
		_, err := c.inpatient(ctx)
		return err
	case pharmacy:
		s, p, err := c.sale(ctx)
		if err != nil {
			return err
		}
		return c.after(ctx, kind, s, p)
	default:
		s, p, err := c.outpatient(ctx)
		if err != nil {
			return err
		}
		return c.after(ctx, kind, s, p)
	}
}

// after cancels (2208/2103) or reverses (2601) a settlement, for those flows.
func (c *counter) after(ctx context.Context, kind string, s *fsiclient.Settlement, p *settlement.Person) error {
	switch kind {
	case "cancel":
		_, err := c.client.Cancel(ctx, s)
		return err
	case "reverse":
		infno := "2207"
		if s.Setlinfo.MedType == "41" {
			infno = "2102"
		}
		_, err := c.client.Reverse(ctx, p.PsnNo, s.Msgid, infno)
		return err
	}
	return nil
}

// person picks a patient: mostly one insured in the institution's region.
func (c *counter) person() *settlement.Person {
	if c.rnd.IntN(5) > 0 {
		for range 20 {
			p := &c.persons[c.rnd.IntN(len(c.persons))]
			if p.InsuredRegion == c.inst.Admdvs {
				return p
			}
		}
	}
	return &c.persons[c.rnd.IntN(len(c.persons))]
}

// identify is 1101, by card or by ID number.
func (c *counter) identify(ctx context.Context, p *settlement.Person) (string, string, error) {
	certType, certNo := "03", p.CardNo
	if c.rnd.IntN(2) == 0 {
		certType, certNo = "02", p.Certno
	}
	_, err := c.client.Person(ctx, certType, certNo)
	return certType, certNo, err
}

// fees returns n lines from the catalog, of the list types given (none: any).
func (c *counter) fees(n int, prefix string, types ...string) []fsiclient.Fee {
	var pool []catalogItem
	for _, it := range c.catalog {
		if len(types) == 0 || slices.Contains(types, it.listType) {
			pool = append(pool, it)
		}
	}
	out := make([]fsiclient.Fee, 0, n)
	used := map[string]bool{}
	for len(out) < n && len(used) < len(pool) {
		it := pool[c.rnd.IntN(len(pool))]
		if used[it.code] {
			continue
		}
		used[it.code] = true
		c.seq++
		out = append(out, fsiclient.Fee{SN: fmt.Sprintf("%s%d", prefix, len(out)+1), Code: it.code,
			Cnt: strconv.Itoa(1 + c.rnd.IntN(4)), Pric: c.price(it)})
	}
	return out
}

// price is a unit price for an item: drugs cheap, services and materials dearer,
// sometimes above an item's price cap.
func (c *counter) price(it catalogItem) string {
	var cents int
	switch it.listType {
	case "drug":
		cents = 200 + c.rnd.IntN(15000)
	case "material":
		cents = 500 + c.rnd.IntN(60000)
	default:
		cents = 1000 + c.rnd.IntN(40000)
	}
	if capM, err := rules.ParseMoney(it.cap); err == nil && it.cap != "" && c.rnd.IntN(4) > 0 {
		cents = min(cents, int(capM)) // most of the time within the cap
	}
	return rules.Money(cents).String()
}

func (c *counter) outpatient(ctx context.Context) (*fsiclient.Settlement, *settlement.Person, error) {
	p := c.person()
	certType, certNo, err := c.identify(ctx, p)
	if err != nil {
		return nil, p, err
	}
	v, err := c.client.RegisterOutpatient(ctx, fsiclient.Registration{PsnNo: p.PsnNo, Insutype: p.Insutype, CertType: certType,
		CertNo: certNo, IptOtpNo: fmt.Sprintf("MZ%d%06d", c.id, c.rnd.IntN(1000000)), MedType: "11", DeptCode: "A03", DeptName: "内科"})
	if err != nil {
		return nil, p, err
	}
	fees := c.fees(1+c.rnd.IntN(5), "")
	if _, err := c.client.UploadFees(ctx, v, "B1", fees); err != nil {
		return nil, p, err
	}
	total, err := fsiclient.Total(fees)
	if err != nil {
		return nil, p, err
	}
	params := fsiclient.SettleParams{Insutype: p.Insutype, MedType: "11", MedfeeSumamt: total, UseAccount: c.rnd.IntN(10) < 7,
		CertType: certType, CertNo: certNo}
	if _, err := c.client.PreSettle(ctx, v, params); err != nil {
		return nil, p, err
	}
	s, err := c.client.Settle(ctx, v, params)
	return s, p, err
}

func (c *counter) inpatient(ctx context.Context) (*fsiclient.Settlement, error) {
	p := c.person()
	certType, certNo, err := c.identify(ctx, p)
	if err != nil {
		return nil, err
	}
	begin := time.Now().Add(-72 * time.Hour)
	v, err := c.client.Admit(ctx, fsiclient.Registration{PsnNo: p.PsnNo, Insutype: p.Insutype, CertType: certType, CertNo: certNo,
		IptOtpNo: fmt.Sprintf("ZY%d%06d", c.id, c.rnd.IntN(1000000)), Begin: begin, DiseCodg: "J18.900", DiseName: "肺炎"})
	if err != nil {
		return nil, err
	}
	var all []fsiclient.Fee
	for day := range 3 {
		fees := c.fees(2+c.rnd.IntN(3), fmt.Sprintf("D%d-", day+1))
		for i := range fees {
			fees[i].Time = begin.Add(time.Duration(day)*24*time.Hour + 10*time.Hour)
		}
		if _, err := c.client.UploadFees(ctx, v, fmt.Sprintf("D%d", day+1), fees); err != nil {
			return nil, err
		}
		all = append(all, fees...)
	}
	if err := c.client.Discharge(ctx, v, time.Time{}, "J18.900", "肺炎"); err != nil {
		return nil, err
	}
	total, err := fsiclient.Total(all)
	if err != nil {
		return nil, err
	}
	return c.client.Settle(ctx, v, fsiclient.SettleParams{Insutype: p.Insutype, MedType: "21", MedfeeSumamt: total,
		UseAccount: c.rnd.IntN(2) == 0, CertType: certType, CertNo: certNo})
}

func (c *counter) sale(ctx context.Context) (*fsiclient.Settlement, *settlement.Person, error) {
	p := c.person()
	certType, certNo, err := c.identify(ctx, p)
	if err != nil {
		return nil, p, err
	}
	s, err := c.client.PharmacySettle(ctx, fsiclient.Sale{PsnNo: p.PsnNo, Insutype: p.Insutype, UseAccount: c.rnd.IntN(10) < 8,
		CertType: certType, CertNo: certNo, Fees: c.fees(1+c.rnd.IntN(3), "", "drug")})
	return s, p, err
}
