// Package rules holds what decides the price of a claim: the insured pooling
// region's policy (参保地政策), the treatment province's catalog (就医地目录) and
// the institutions, and the pure pricing function of docs/pricing.md.
//
// Nothing here does I/O at pricing time or reads a clock: a RuleSet is loaded
// once, validated whole, and then only read, so it is safe for concurrent use.
package rules

import "sort"

// Category is the benefit category a med_type falls into.
type Category uint8

const (
	Outpatient Category = iota
	Chronic
	Inpatient
	numCategories
)

var categoryNames = [numCategories]string{"outpatient", "chronic", "inpatient"}

func (c Category) String() string { return categoryNames[c] }

// CapPool names which annual fund cap (and which fund_paid counter) a category draws on.
type CapPool uint8

const (
	PoolOutpatient CapPool = iota
	PoolInpatient
	numPools
)

var poolNames = [numPools]string{"outpatient", "inpatient"}

func (p CapPool) String() string { return poolNames[p] }

// DeductibleMode is how the 起付线 applies.
type DeductibleMode uint8

const (
	DeductibleNone DeductibleMode = iota
	DeductibleAnnual
	DeductiblePerAdmission
)

var deductibleModes = []string{"none", "annual", "per_admission"}

func (m DeductibleMode) String() string { return deductibleModes[m] }

// Levels are institution levels 1..3; index 0 is unused so that the level is the index.
const maxLevel = 3

// Region is a pooling region (统筹区) with its effective-dated policy versions.
type Region struct {
	Admdvs   string
	Name     string
	NameEn   string
	Province string
	// Versions are sorted by EffectiveFrom, no two on the same day.
	Versions []*PolicyVersion
}

// InForce returns the version with the latest EffectiveFrom <= day, or nil.
func (r *Region) InForce(day Date) *PolicyVersion {
	i := sort.Search(len(r.Versions), func(i int) bool { return r.Versions[i].EffectiveFrom > day })
	if i == 0 {
		return nil
	}
	return r.Versions[i-1]
}

// PolicyVersion is one region's policy from EffectiveFrom on.
type PolicyVersion struct {
	EffectiveFrom       Date
	UnregisteredPenalty Ratio
	Assistance          AssistancePolicy
	Insutypes           map[string]*InsutypePolicy
}

// AssistancePolicy is medical assistance (医疗救助) by assistance kind.
type AssistancePolicy struct {
	Ratios    map[string]Ratio
	AnnualCap Money
}

// InsutypePolicy is the policy for one insurance type (310 employees, 390 residents).
type InsutypePolicy struct {
	Insutype      string
	Benefits      [numCategories]Benefit
	AnnualCap     [numPools]Money
	Supplementary Supplementary
	Account       AccountPolicy
}

// Benefit is what one category pays.
type Benefit struct {
	Deductible   Deductible
	Ratio        [maxLevel + 1]Ratio
	RetireeBonus Ratio
	MaxRatio     Ratio
	CapPool      CapPool
}

// Deductible is the 起付线 of a category.
type Deductible struct {
	Mode             DeductibleMode
	ByLevel          [maxLevel + 1]Money
	SubsequentFactor Ratio
}

// Fund names a supplementary fund.
type Fund string

const (
	FundHifmi Fund = "hifmi" // 居民大病保险, residents
	FundHifob Fund = "hifob" // 职工大额补助, employees
)

// Supplementary is the second-tier insurance paying on the year's burden.
type Supplementary struct {
	Fund      Fund
	Segments  []Segment // From strictly increasing
	AnnualCap Money
}

// Segment pays Ratio on the part of the year's burden from From to the next segment's From.
type Segment struct {
	From  Money
	Ratio Ratio
}

// AccountPolicy says when the personal account (个人账户) may pay.
type AccountPolicy struct {
	Enabled      bool
	CoversFulamt bool
	CrossRegion  bool
}

// Level is a catalog item's charge level (甲/乙/丙).
type Level string

const (
	LevelA Level = "01" // 甲类: fully in scope
	LevelB Level = "02" // 乙类: self-pay-first share
	LevelC Level = "03" // 丙类: fully self-paid
)

// CatalogItem is one catalog row of a province.
type CatalogItem struct {
	Code        string
	Name        string
	ListType    string
	Level       Level
	SelfpayProp Ratio
	PriceCap    Money
	HasCap      bool
	ValidFrom   Date
	ValidTo     Date // 0: open
}

func (it *CatalogItem) validOn(d Date) bool {
	return it.ValidFrom <= d && (it.ValidTo == 0 || d <= it.ValidTo)
}

// Catalog is a province's list of covered items.
type Catalog struct {
	Province string
	items    map[string][]CatalogItem // by code, sorted by ValidFrom, windows disjoint
}

// Lookup returns the row for code valid on day, or nil.
func (c *Catalog) Lookup(code string, day Date) *CatalogItem {
	rows := c.items[code]
	for i := range rows {
		if rows[i].validOn(day) {
			return &rows[i]
		}
	}
	return nil
}

// Len is the number of rows.
func (c *Catalog) Len() int {
	n := 0
	for _, rows := range c.items {
		n += len(rows)
	}
	return n
}

// Kind is an institution kind.
type Kind string

const (
	KindHospital Kind = "hospital"
	KindPharmacy Kind = "pharmacy"
)

// Institution is a designated hospital or pharmacy (定点医药机构).
type Institution struct {
	Code   string
	Name   string
	Admdvs string // its pooling region: the treatment region of its claims
	Kind   Kind
	Level  int
}

// RuleSet is everything pricing needs, validated as a whole.
type RuleSet struct {
	Regions      map[string]*Region
	Catalogs     map[string]*Catalog // by province
	Institutions map[string]*Institution
}

// Province returns the province of a pooling region, or "".
func (rs *RuleSet) Province(admdvs string) string {
	if r := rs.Regions[admdvs]; r != nil {
		return r.Province
	}
	return ""
}
