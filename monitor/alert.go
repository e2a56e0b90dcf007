// Package monitor is the fund-supervision monitor (基金监管): rules over the
// stream of settlement events (settlement.SettlementEvent, topic
// medsettle.settlements) that raise alerts on patterns across institutions
// and regions:
//
//   - RuleOverlappingStays: two inpatient stays of one person at different
//     institutions (in any regions) overlap in time;
//   - RuleVisitDuringStay: an outpatient or pharmacy settlement whose
//     setl_time falls in an inpatient stay of the person at another
//     institution (a closed stay covering it, or an open one);
//   - RuleReadmission: an inpatient stay that begins at most 15 calendar days
//     (CST) after the end of a previous stay, at any institution;
//   - RuleSwipesPerDay: more than N settlements of one person on one
//     calendar day (CST), N = Config.MaxSwipesPerDay (5);
//   - RuleRepeatedDrug: the same drug (a med_list_codg starting with X,
//     western medicine, or Z, Chinese patent medicine) in more than 4
//     settlements of one person in one calendar month (CST).
//
// A stay is a settlement of an inpatient visit with its begntime (endtime
// absent: still admitted). The pair rules raise one alert per pair of
// settlements; RuleSwipesPerDay one per person and day (its evidence the
// settlements of the day when the count first passed N), RuleRepeatedDrug
// one per person, drug and month (likewise). Rules are evaluated whichever
// of two settlements is observed first: an inpatient settlement comes at
// discharge, after the visits made during the stay. A cancellation
// (settlement.cancelled) withdraws the settlement it reverses: it counts and
// overlaps no more, and alerts already raised on it stand.
//
// The package is pure: no I/O and no clock. A Monitor holds per-person state
// built only from the events it observed, so replaying a person's events in
// the order they were first observed rebuilds exactly the same state (and
// raises exactly the same alerts again, under the same ids). Store is the
// port through which an adapter persists that history and the alerts.
package monitor

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Rule names a supervision rule; it is the alert's rule in storage, on the
// alerts topic and in the bureau API's rule filter.
type Rule string

const (
	RuleOverlappingStays Rule = "overlapping_stays"
	RuleVisitDuringStay  Rule = "visit_during_stay"
	RuleReadmission      Rule = "readmission"
	RuleSwipesPerDay     Rule = "swipes_per_day"
	RuleRepeatedDrug     Rule = "repeated_drug"
)

// Rules lists every rule.
var Rules = []Rule{RuleOverlappingStays, RuleVisitDuringStay, RuleReadmission, RuleSwipesPerDay, RuleRepeatedDrug}

// Valid reports whether r is one of Rules.
func (r Rule) Valid() bool { return slices.Contains(Rules, r) }

// Alert is a pattern found in a person's settlements, with its evidence.
type Alert struct {
	// ID is derived from the rule, the person and the evidence, so that
	// observing the same events again yields the same id (storage and
	// consumers of the alerts topic dedupe by it).
	ID            string `json:"alert_id"`
	Rule          Rule   `json:"rule"`
	PsnNo         string `json:"psn_no"`
	InsuredRegion string `json:"insuplc_admdvs"`
	// Regions are the regions (admdvs) of the institutions involved, sorted.
	Regions []string `json:"regions"`
	// Evidence are the setl_ids involved, in the order of Settlements.
	Evidence []string `json:"evidence"`
	// Settlements are the settlements involved as the monitor saw them,
	// ordered by setl_time then setl_id.
	Settlements []Settlement `json:"settlements"`
	Detail      string       `json:"detail"`
	// At is when the pattern became complete: the latest setl_time of the
	// evidence (a function of the evidence, not of a clock).
	At time.Time `json:"raised_at"`
}

// Scope is every region an alert concerns: the insured region and the
// institutions' regions, sorted and distinct. A bureau sees the alerts
// whose scope holds its region.
func (a *Alert) Scope() []string {
	out := append([]string{}, a.Regions...)
	if a.InsuredRegion != "" {
		out = append(out, a.InsuredRegion)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Involves reports whether region is in the alert's Scope.
func (a *Alert) Involves(region string) bool { return slices.Contains(a.Scope(), region) }

// Settlement is a settlement as evidence: what a bureau needs to find it and
// judge it.
type Settlement struct {
	SetlID       string               `json:"setl_id"`
	MdtrtID      string               `json:"mdtrt_id"`
	Institution  string               `json:"fixmedins_code"`
	Region       string               `json:"mdtrtarea_admvs"`
	MedType      string               `json:"med_type"`
	VisitKind    settlement.VisitKind `json:"visit_kind,omitempty"`
	SetlTime     time.Time            `json:"setl_time"`
	Begntime     *time.Time           `json:"begntime,omitempty"`
	Endtime      *time.Time           `json:"endtime,omitempty"`
	MedfeeSumamt rules.Money          `json:"medfee_sumamt"`
}

// alertID hashes what identifies an alert: rule, person, the rule's key
// (the drug code of RuleRepeatedDrug, else empty) and the setl_ids.
func alertID(rule Rule, psnNo, key string, setlIDs []string) string {
	h := sha256.New()
	for _, s := range append([]string{string(rule), psnNo, key}, setlIDs...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "AL" + hex.EncodeToString(h.Sum(nil))[:30]
}
