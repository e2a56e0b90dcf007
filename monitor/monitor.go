package monitor

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Config holds the rules' thresholds; zero fields take the defaults.
type Config struct {
	// MaxSwipesPerDay is N: more than N settlements of a person on one day raise an alert (5).
	MaxSwipesPerDay int
	// MaxDrugPerMonth: the same drug in more than this many settlements of a month raises an alert (4).
	MaxDrugPerMonth int
	// ReadmissionDays: a stay beginning at most this many days after a previous one ended is a readmission (15).
	ReadmissionDays int
}

// Defaults of Config.
const (
	DefaultMaxSwipesPerDay = 5
	DefaultMaxDrugPerMonth = 4
	DefaultReadmissionDays = 15
)

func (c Config) withDefaults() Config {
	if c.MaxSwipesPerDay <= 0 {
		c.MaxSwipesPerDay = DefaultMaxSwipesPerDay
	}
	if c.MaxDrugPerMonth <= 0 {
		c.MaxDrugPerMonth = DefaultMaxDrugPerMonth
	}
	if c.ReadmissionDays <= 0 {
		c.ReadmissionDays = DefaultReadmissionDays
	}
	return c
}

// Monitor observes settlement events and raises alerts. Its state is per
// person and built only from observed events. Safe for concurrent use.
type Monitor struct {
	cfg     Config
	mu      sync.Mutex
	persons map[string]*person
}

// New returns a Monitor with no state.
func New(cfg Config) *Monitor {
	return &Monitor{cfg: cfg.withDefaults(), persons: map[string]*person{}}
}

// Config returns the thresholds in force (defaults filled in).
func (m *Monitor) Config() Config { return m.cfg }

// person is what the monitor knows of one person.
type person struct {
	psnNo     string
	events    map[string]bool    // event keys observed
	n         int                // len(events): events observed, duplicates excluded
	next      int                // arrival counter of records
	recs      map[string]*record // standing settlements by setl_id
	withdrawn map[string]bool    // setl_ids cancelled
	raised    map[string]bool    // alert ids raised, and "rule|key" of count rules raised
}

// record is one standing settlement of the person.
type record struct {
	seq     int // arrival order
	s       Settlement
	insured string
	kind    settlement.VisitKind // VisitKind, or derived from med_type
	begin   time.Time            // stays only
	end     *time.Time           // stays only; nil: open
	stay    bool                 // inpatient with a begntime
	drugs   map[string]decimal.Decimal
	day     string // setl_time's CST day, 2006-01-02
	month   string // setl_time's CST month, 2006-01
}

// visit reports whether r is an outpatient or pharmacy settlement.
func (r *record) visit() bool {
	return r.kind == settlement.VisitOutpatient || r.kind == settlement.VisitPharmacy
}

// covers reports whether t falls in stay r: begin <= t < end (open: no end).
func (r *record) covers(t time.Time) bool {
	return !t.Before(r.begin) && (r.end == nil || t.Before(*r.end))
}

// Observe feeds one event and returns the alerts it raises, in a
// deterministic order. An event whose id was observed before raises nothing
// and changes nothing. A cancellation (settlement.cancelled, reverses)
// withdraws the settlement it reverses from the state and raises nothing;
// alerts already raised stand.
func (m *Monitor) Observe(ev settlement.SettlementEvent) []Alert {
	if ev.PsnNo == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.persons[ev.PsnNo]
	if p == nil {
		p = &person{psnNo: ev.PsnNo, events: map[string]bool{}, recs: map[string]*record{}, withdrawn: map[string]bool{}, raised: map[string]bool{}}
		m.persons[ev.PsnNo] = p
	}
	k := eventKey(ev)
	if p.events[k] {
		return nil
	}
	p.events[k] = true
	p.n++
	switch {
	case ev.Type == settlement.EventCancelled || ev.Reverses != "":
		if ev.Reverses != "" {
			p.withdrawn[ev.Reverses] = true
			delete(p.recs, ev.Reverses)
		}
		return nil
	case ev.Type == settlement.EventSettled && ev.SetlID != "":
		return p.settled(ev, m.cfg)
	}
	return nil
}

// Has reports whether ev (by its event id) was observed.
func (m *Monitor) Has(ev settlement.SettlementEvent) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.persons[ev.PsnNo]
	return p != nil && p.events[eventKey(ev)]
}

// Observed is how many distinct events of psnNo were observed: a persisted
// history of the person is in sync when it holds that many events.
func (m *Monitor) Observed(psnNo string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.persons[psnNo]; p != nil {
		return p.n
	}
	return 0
}

// Forget drops the state of psnNo (to be rebuilt by observing its history again).
func (m *Monitor) Forget(psnNo string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.persons, psnNo)
}

// Persons is how many persons the monitor holds state for.
func (m *Monitor) Persons() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.persons)
}

// Reset drops all state.
func (m *Monitor) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.persons = map[string]*person{}
}

// eventKey is the event id; an event without one is identified by its
// settlement and type.
func eventKey(ev settlement.SettlementEvent) string {
	if ev.EventID != "" {
		return ev.EventID
	}
	return "setl:" + ev.SetlID + ":" + ev.Type + ":" + ev.Reverses
}

// kindOf is the event's visit kind, or one derived from med_type for an
// event that does not carry its visit (the insured province's side of a
// cross-province settlement).
func kindOf(ev settlement.SettlementEvent) settlement.VisitKind {
	if ev.VisitKind != "" {
		return ev.VisitKind
	}
	switch ev.MedType {
	case "11", "14":
		return settlement.VisitOutpatient
	case "41":
		return settlement.VisitPharmacy
	case "21":
		return settlement.VisitInpatient
	}
	return ""
}

// isDrug reports whether a national list code is a drug: X (western
// medicine) or Z (Chinese patent medicine).
func isDrug(code string) bool {
	return code != "" && (code[0] == 'X' || code[0] == 'Z' || code[0] == 'x' || code[0] == 'z')
}

func newRecord(seq int, ev settlement.SettlementEvent) *record {
	r := &record{seq: seq, insured: ev.InsuredRegion, kind: kindOf(ev), s: Settlement{SetlID: ev.SetlID, MdtrtID: ev.MdtrtID,
		Institution: ev.Institution, Region: ev.TreatRegion, MedType: ev.MedType, VisitKind: ev.VisitKind,
		SetlTime: ev.SetlTime.UTC(), MedfeeSumamt: ev.Setlinfo.MedfeeSumamt}}
	r.day = r.s.SetlTime.In(rules.CST).Format("2006-01-02")
	r.month = r.day[:7]
	r.merge(ev)
	return r
}

// merge takes what r lacks from ev, another event of the same settlement
// (each side of a cross-province settlement publishes one): the visit and
// the drug lines. It reports whether anything was added.
func (r *record) merge(ev settlement.SettlementEvent) bool {
	changed := false
	if r.s.VisitKind == "" && ev.VisitKind != "" {
		r.s.VisitKind, r.kind, changed = ev.VisitKind, ev.VisitKind, true
	}
	if r.s.MdtrtID == "" && ev.MdtrtID != "" {
		r.s.MdtrtID = ev.MdtrtID
	}
	if r.s.Institution == "" && ev.Institution != "" {
		r.s.Institution, changed = ev.Institution, true
	}
	if r.s.Region == "" && ev.TreatRegion != "" {
		r.s.Region, changed = ev.TreatRegion, true
	}
	if r.insured == "" {
		r.insured = ev.InsuredRegion
	}
	if r.kind == settlement.VisitInpatient && !r.stay && ev.Begntime != nil {
		b := ev.Begntime.UTC()
		r.begin, r.s.Begntime, r.stay, changed = b, &b, true, true
		if ev.Endtime != nil {
			e := ev.Endtime.UTC()
			r.end, r.s.Endtime = &e, &e
		}
	}
	if r.drugs == nil {
		for _, l := range ev.Lines {
			if !isDrug(l.Code) {
				continue
			}
			if r.drugs == nil {
				r.drugs = map[string]decimal.Decimal{}
			}
			cnt, err := decimal.NewFromString(l.Cnt)
			if err != nil {
				cnt = decimal.Zero
			}
			r.drugs[strings.ToUpper(l.Code)] = r.drugs[strings.ToUpper(l.Code)].Add(cnt)
			changed = true
		}
	}
	return changed
}

// settled adds a settlement (or completes one already known) and evaluates
// the rules on it.
func (p *person) settled(ev settlement.SettlementEvent, cfg Config) []Alert {
	if p.withdrawn[ev.SetlID] {
		return nil
	}
	r := p.recs[ev.SetlID]
	if r == nil {
		p.next++
		r = newRecord(p.next, ev)
		p.recs[ev.SetlID] = r
	} else if !r.merge(ev) {
		return nil
	}
	// Every rule looks at r with the other standing settlements; an alert
	// already raised (the same id) is not raised again, so evaluating a
	// completed settlement again only adds what it newly makes true.
	var out []Alert
	add := func(a *Alert) {
		if a != nil {
			out = append(out, *a)
		}
	}
	// The pair rules pair a stay with a stay or a visit, and a visit with
	// a stay: a visit needs only the stays.
	var others []*record
	switch {
	case r.stay:
		others = p.sorted(r, false)
	case r.visit():
		others = p.sorted(r, true)
	}
	for _, o := range others {
		if o.s.MdtrtID != "" && o.s.MdtrtID == r.s.MdtrtID {
			continue // one visit: not two stays
		}
		switch {
		case r.stay && o.stay:
			if r.s.Institution != o.s.Institution && overlap(r, o) {
				a, b := o, r
				if b.begin.Before(a.begin) {
					a, b = b, a
				}
				add(p.pair(RuleOverlappingStays, a, b, fmt.Sprintf("inpatient stays overlap: %s and %s", stayText(a), stayText(b))))
			}
			add(p.readmission(o, r, cfg))
			add(p.readmission(r, o, cfg))
		case r.stay && o.visit():
			add(p.during(r, o))
		case r.visit() && o.stay:
			add(p.during(o, r))
		}
	}
	add(p.swipes(r, cfg))
	codes := make([]string, 0, len(r.drugs))
	for c := range r.drugs {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		add(p.drug(r, c, cfg))
	}
	return out
}

// sorted returns the standing settlements other than r (only the stays
// with staysOnly), in arrival order.
func (p *person) sorted(r *record, staysOnly bool) []*record {
	var out []*record
	for _, o := range p.recs {
		if o != r && (o.stay || !staysOnly) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// overlap reports whether two stays share time: [b1, e1) and [b2, e2), an open stay never ending.
func overlap(a, b *record) bool {
	return (b.end == nil || a.begin.Before(*b.end)) && (a.end == nil || b.begin.Before(*a.end))
}

// dayNumber is the CST calendar day of t, counted from the epoch.
func dayNumber(t time.Time) int {
	y, m, d := t.In(rules.CST).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// readmission: stay next begins at most ReadmissionDays calendar days after prev ended.
func (p *person) readmission(prev, next *record, cfg Config) *Alert {
	if prev.end == nil || next.begin.Before(*prev.end) {
		return nil
	}
	days := dayNumber(next.begin) - dayNumber(*prev.end)
	if days > cfg.ReadmissionDays {
		return nil
	}
	return p.pair(RuleReadmission, prev, next, fmt.Sprintf("readmitted at %s on %s, %d days after discharge from %s on %s (limit %d days)",
		next.s.Institution, clock(next.begin), days, prev.s.Institution, clock(*prev.end), cfg.ReadmissionDays))
}

// during: visit v at another institution falls in stay s.
func (p *person) during(s, v *record) *Alert {
	if s.s.Institution == v.s.Institution || !s.covers(v.s.SetlTime) {
		return nil
	}
	return p.pair(RuleVisitDuringStay, s, v, fmt.Sprintf("%s settlement at %s on %s during the admission at %s",
		v.kind, v.s.Institution, clock(v.s.SetlTime), stayText(s)))
}

// swipes: more than N standing settlements on r's day.
func (p *person) swipes(r *record, cfg Config) *Alert {
	day := r.day
	key := string(RuleSwipesPerDay) + "|" + day
	if p.raised[key] {
		return nil
	}
	var same []*record
	for _, o := range p.recs {
		if o.day == day {
			same = append(same, o)
		}
	}
	if len(same) <= cfg.MaxSwipesPerDay {
		return nil
	}
	p.raised[key] = true
	return p.alert(RuleSwipesPerDay, day, same, fmt.Sprintf("%d settlements on %s (more than %d)", len(same), day, cfg.MaxSwipesPerDay))
}

// drug: code in more than MaxDrugPerMonth standing settlements of r's month.
func (p *person) drug(r *record, code string, cfg Config) *Alert {
	month := r.month
	key := string(RuleRepeatedDrug) + "|" + code + "|" + month
	if p.raised[key] {
		return nil
	}
	var with []*record
	total := decimal.Zero
	for _, o := range p.recs {
		if cnt, ok := o.drugs[code]; ok && o.month == month {
			with = append(with, o)
			total = total.Add(cnt)
		}
	}
	if len(with) <= cfg.MaxDrugPerMonth {
		return nil
	}
	p.raised[key] = true
	return p.alert(RuleRepeatedDrug, code+"|"+month, with, fmt.Sprintf("%s in %d settlements in %s (more than %d), total cnt %s",
		code, len(with), month, cfg.MaxDrugPerMonth, total.String()))
}

func (p *person) pair(rule Rule, a, b *record, detail string) *Alert {
	return p.alert(rule, "", []*record{a, b}, detail)
}

// alert builds an alert over recs, or nil when its id was raised before.
func (p *person) alert(rule Rule, key string, recs []*record, detail string) *Alert {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b *record) int {
		return cmp.Or(a.s.SetlTime.Compare(b.s.SetlTime), cmp.Compare(a.s.SetlID, b.s.SetlID))
	})
	a := &Alert{Rule: rule, PsnNo: p.psnNo, Detail: detail}
	for _, r := range recs {
		a.Evidence = append(a.Evidence, r.s.SetlID)
		a.Settlements = append(a.Settlements, r.s)
		if r.s.Region != "" && !slices.Contains(a.Regions, r.s.Region) {
			a.Regions = append(a.Regions, r.s.Region)
		}
		if r.s.SetlTime.After(a.At) {
			a.At = r.s.SetlTime
		}
		if a.InsuredRegion == "" {
			a.InsuredRegion = r.insured
		}
	}
	slices.Sort(a.Regions)
	a.ID = alertID(a.Rule, a.PsnNo, key, a.Evidence)
	if p.raised[a.ID] {
		return nil
	}
	p.raised[a.ID] = true
	return a
}

func stayText(r *record) string {
	end := "open"
	if r.end != nil {
		end = clock(*r.end)
	}
	return fmt.Sprintf("%s (%s) %s – %s", r.s.Institution, r.s.Region, clock(r.begin), end)
}

func clock(t time.Time) string { return t.In(rules.CST).Format("2006-01-02 15:04") }
