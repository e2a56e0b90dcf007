package rules

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// A rules directory holds:
//
//	regions/<admdvs>.json   one pooling region, its policy versions
//	catalogs/<province>.csv one province's catalog
//	institutions.csv        designated institutions
//
// The formats are those of docs/pricing.md ("The rules directory"): the
// national reference data split per region and province, so that a bureau
// changing one region's policy touches one file and one review.

// Problem is one thing wrong in a rules directory.
type Problem struct {
	File   string
	Row    int // 1-based line for CSV, 0 when the whole file is at fault
	Reason string
}

func (p Problem) String() string {
	if p.Row > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Row, p.Reason)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Reason)
}

// LoadError lists every problem found; a rules directory is used whole or not at all.
type LoadError struct{ Problems []Problem }

func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rules: %d problem(s)", len(e.Problems))
	for i, p := range e.Problems {
		if i == 20 {
			fmt.Fprintf(&b, "; ... %d more", len(e.Problems)-20)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

type loader struct {
	fsys     fs.FS
	problems []Problem
}

func (l *loader) add(file string, row int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: file, Row: row, Reason: fmt.Sprintf(format, args...)})
}

// Load reads and validates a rules directory. Any inconsistency refuses the
// whole set with a *LoadError naming file, row and reason.
func Load(fsys fs.FS) (*RuleSet, error) {
	l := &loader{fsys: fsys}
	rs := &RuleSet{
		Regions:      map[string]*Region{},
		Catalogs:     map[string]*Catalog{},
		Institutions: map[string]*Institution{},
	}
	l.loadRegions(rs)
	l.loadCatalogs(rs)
	l.loadInstitutions(rs)
	if len(l.problems) > 0 {
		return nil, &LoadError{Problems: l.problems}
	}
	return rs, nil
}

func (l *loader) glob(dir, ext string) []string {
	names, err := fs.Glob(l.fsys, dir+"/*"+ext)
	if err != nil {
		l.add(dir, 0, "%v", err)
	}
	if len(names) == 0 {
		l.add(dir, 0, "no %s files", ext)
	}
	sort.Strings(names)
	return names
}

// Wire shapes of a region file. Numbers are strings so that no float ever holds them.
type regionFile struct {
	Admdvs   string        `json:"admdvs"`
	Name     string        `json:"name"`
	NameEn   string        `json:"name_en"`
	Province string        `json:"province"`
	Versions []versionFile `json:"versions"`
}

type versionFile struct {
	EffectiveFrom       string                  `json:"effective_from"`
	UnregisteredPenalty string                  `json:"unregistered_penalty"`
	Assistance          assistanceFile          `json:"assistance"`
	Insutypes           map[string]insutypeFile `json:"insutypes"`
}

type assistanceFile struct {
	Ratios    map[string]string `json:"ratios"`
	AnnualCap string            `json:"annual_cap"`
}

type insutypeFile struct {
	Outpatient    *benefitFile      `json:"outpatient"`
	Chronic       *benefitFile      `json:"chronic"`
	Inpatient     *benefitFile      `json:"inpatient"`
	AnnualCap     map[string]string `json:"annual_cap"`
	Supplementary *struct {
		Fund     string `json:"fund"`
		Segments []struct {
			From  string `json:"from"`
			Ratio string `json:"ratio"`
		} `json:"segments"`
		AnnualCap string `json:"annual_cap"`
	} `json:"supplementary"`
	Account *struct {
		Enabled      bool `json:"enabled"`
		CoversFulamt bool `json:"covers_fulamt"`
		CrossRegion  bool `json:"cross_region"`
	} `json:"account"`
}

type benefitFile struct {
	Deductible struct {
		Mode             string            `json:"mode"`
		ByLevel          map[string]string `json:"by_level"`
		SubsequentFactor string            `json:"subsequent_factor"`
	} `json:"deductible"`
	Ratio        map[string]string `json:"ratio"`
	RetireeBonus string            `json:"retiree_bonus"`
	MaxRatio     string            `json:"max_ratio"`
	CapPool      string            `json:"cap_pool"`
}

func (l *loader) loadRegions(rs *RuleSet) {
	for _, name := range l.glob("regions", ".json") {
		data, err := fs.ReadFile(l.fsys, name)
		if err != nil {
			l.add(name, 0, "%v", err)
			continue
		}
		if r := l.parseRegion(name, data); r != nil {
			if rs.Regions[r.Admdvs] != nil {
				l.add(name, 0, "region %s defined twice", r.Admdvs)
				continue
			}
			rs.Regions[r.Admdvs] = r
		}
	}
}

func isCode(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseRegion validates one region file's contents; file names the source in problems.
func (l *loader) parseRegion(file string, data []byte) *Region {
	var rf regionFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		l.add(file, 0, "malformed JSON: %v", err)
		return nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		l.add(file, 0, "trailing data after the region object")
		return nil
	}
	n := len(l.problems)
	if !isCode(rf.Admdvs, 6) {
		l.add(file, 0, "admdvs %q is not a 6-digit code", rf.Admdvs)
	} else if want := strings.TrimSuffix(path.Base(file), ".json"); want != rf.Admdvs {
		l.add(file, 0, "admdvs %s does not match the file name", rf.Admdvs)
	}
	if !isCode(rf.Province, 6) || !strings.HasSuffix(rf.Province, "0000") {
		l.add(file, 0, "province %q is not a 6-digit province code (xx0000)", rf.Province)
	} else if isCode(rf.Admdvs, 6) && rf.Admdvs[:2] != rf.Province[:2] {
		l.add(file, 0, "region %s is not in province %s", rf.Admdvs, rf.Province)
	}
	if len(rf.Versions) == 0 {
		l.add(file, 0, "no policy versions")
	}
	r := &Region{Admdvs: rf.Admdvs, Name: rf.Name, NameEn: rf.NameEn, Province: rf.Province}
	for i, vf := range rf.Versions {
		where := fmt.Sprintf("versions[%d]", i)
		if v := l.parseVersion(file, where, &vf); v != nil {
			r.Versions = append(r.Versions, v)
		}
	}
	sort.SliceStable(r.Versions, func(i, j int) bool { return r.Versions[i].EffectiveFrom < r.Versions[j].EffectiveFrom })
	for i := 1; i < len(r.Versions); i++ {
		if r.Versions[i].EffectiveFrom == r.Versions[i-1].EffectiveFrom {
			l.add(file, 0, "overlapping versions: two take effect on %s", r.Versions[i].EffectiveFrom)
		}
	}
	if len(l.problems) > n {
		return nil
	}
	return r
}

// field helpers record a problem and return the zero value on bad input.
func (l *loader) ratio(file, where, s string) Ratio {
	r, err := ParseRatio(s)
	if err != nil {
		l.add(file, 0, "%s: ratio %q: %v (want a fraction in [0,1] with at most 4 decimals)", where, s, err)
	}
	return r
}

func (l *loader) amount(file, where, s string) Money {
	m, err := ParseMoney(s)
	if err != nil || m < 0 || m > MaxMoney {
		l.add(file, 0, "%s: amount %q is not a non-negative decimal with at most 2 decimals, at most %s", where, s, MaxMoney)
	}
	return m
}

func (l *loader) parseVersion(file, where string, vf *versionFile) *PolicyVersion {
	day, err := ParseDate(vf.EffectiveFrom)
	if err != nil {
		l.add(file, 0, "%s.effective_from: %v", where, err)
	}
	v := &PolicyVersion{
		EffectiveFrom:       day,
		UnregisteredPenalty: l.ratio(file, where+".unregistered_penalty", vf.UnregisteredPenalty),
		Assistance: AssistancePolicy{
			Ratios:    map[string]Ratio{},
			AnnualCap: l.amount(file, where+".assistance.annual_cap", vf.Assistance.AnnualCap),
		},
		Insutypes: map[string]*InsutypePolicy{},
	}
	for kind, s := range vf.Assistance.Ratios {
		if kind == "" {
			l.add(file, 0, "%s.assistance.ratios: empty assistance kind", where)
		}
		v.Assistance.Ratios[kind] = l.ratio(file, where+".assistance.ratios."+kind, s)
	}
	if len(vf.Insutypes) == 0 {
		l.add(file, 0, "%s: no insutypes", where)
	}
	for code, itf := range vf.Insutypes {
		if code != "310" && code != "390" {
			l.add(file, 0, "%s.insutypes: unknown insutype %q (310 employees, 390 residents)", where, code)
			continue
		}
		v.Insutypes[code] = l.parseInsutype(file, where+".insutypes."+code, code, &itf)
	}
	return v
}

func (l *loader) parseInsutype(file, where, code string, itf *insutypeFile) *InsutypePolicy {
	ip := &InsutypePolicy{Insutype: code}
	caps := map[string]bool{}
	for pool, s := range itf.AnnualCap {
		p, ok := poolByName(pool)
		if !ok {
			l.add(file, 0, "%s.annual_cap: unknown cap pool %q", where, pool)
			continue
		}
		caps[pool] = true
		ip.AnnualCap[p] = l.amount(file, where+".annual_cap."+pool, s)
	}
	for c, bf := range [numCategories]*benefitFile{itf.Outpatient, itf.Chronic, itf.Inpatient} {
		cw := where + "." + Category(c).String()
		if bf == nil {
			l.add(file, 0, "%s: missing", cw)
			continue
		}
		ip.Benefits[c] = l.parseBenefit(file, cw, Category(c), bf, caps)
	}
	if s := itf.Supplementary; s == nil {
		l.add(file, 0, "%s.supplementary: missing", where)
	} else {
		ip.Supplementary.Fund = Fund(s.Fund)
		want := map[string]Fund{"310": FundHifob, "390": FundHifmi}[code]
		if ip.Supplementary.Fund != want {
			l.add(file, 0, "%s.supplementary.fund: %q, want %q for insutype %s", where, s.Fund, want, code)
		}
		ip.Supplementary.AnnualCap = l.amount(file, where+".supplementary.annual_cap", s.AnnualCap)
		for i, seg := range s.Segments {
			sw := fmt.Sprintf("%s.supplementary.segments[%d]", where, i)
			g := Segment{From: l.amount(file, sw+".from", seg.From), Ratio: l.ratio(file, sw+".ratio", seg.Ratio)}
			if i > 0 && g.From <= ip.Supplementary.Segments[i-1].From {
				l.add(file, 0, "%s: segment thresholds not increasing (%s after %s)", sw, g.From, ip.Supplementary.Segments[i-1].From)
			}
			ip.Supplementary.Segments = append(ip.Supplementary.Segments, g)
		}
	}
	if a := itf.Account; a == nil {
		l.add(file, 0, "%s.account: missing", where)
	} else {
		ip.Account = AccountPolicy{Enabled: a.Enabled, CoversFulamt: a.CoversFulamt, CrossRegion: a.CrossRegion}
		if a.Enabled && code != "310" {
			l.add(file, 0, "%s.account: only employees (310) have a personal account", where)
		}
	}
	return ip
}

func poolByName(s string) (CapPool, bool) {
	for i, n := range poolNames {
		if n == s {
			return CapPool(i), true
		}
	}
	return 0, false
}

func (l *loader) parseBenefit(file, where string, cat Category, bf *benefitFile, caps map[string]bool) Benefit {
	var b Benefit
	switch bf.Deductible.Mode {
	case "none":
		b.Deductible.Mode = DeductibleNone
	case "annual":
		b.Deductible.Mode = DeductibleAnnual
		if cat == Inpatient {
			// The person's counters keep an annual deductible for outpatient and chronic only.
			l.add(file, 0, "%s.deductible: annual mode for inpatient has no counter; use per_admission", where)
		}
	case "per_admission":
		b.Deductible.Mode = DeductiblePerAdmission
		b.Deductible.SubsequentFactor = l.ratio(file, where+".deductible.subsequent_factor", bf.Deductible.SubsequentFactor)
	default:
		l.add(file, 0, "%s.deductible.mode: %q, want none, annual or per_admission", where, bf.Deductible.Mode)
	}
	if b.Deductible.Mode != DeductibleNone {
		l.levels(file, where+".deductible.by_level", bf.Deductible.ByLevel, func(lv int, s string) {
			b.Deductible.ByLevel[lv] = l.amount(file, fmt.Sprintf("%s.deductible.by_level.%d", where, lv), s)
		})
	}
	l.levels(file, where+".ratio", bf.Ratio, func(lv int, s string) {
		b.Ratio[lv] = l.ratio(file, fmt.Sprintf("%s.ratio.%d", where, lv), s)
	})
	b.RetireeBonus = l.ratio(file, where+".retiree_bonus", bf.RetireeBonus)
	b.MaxRatio = l.ratio(file, where+".max_ratio", bf.MaxRatio)
	p, ok := poolByName(bf.CapPool)
	switch {
	case !ok:
		l.add(file, 0, "%s.cap_pool: unknown cap pool %q", where, bf.CapPool)
	case !caps[bf.CapPool]:
		l.add(file, 0, "%s.cap_pool: %q has no annual_cap", where, bf.CapPool)
	}
	b.CapPool = p
	return b
}

// levels requires exactly the keys "1".."3".
func (l *loader) levels(file, where string, m map[string]string, set func(int, string)) {
	if len(m) != maxLevel {
		l.add(file, 0, "%s: want levels 1, 2 and 3, have %d entries", where, len(m))
	}
	for k, s := range m {
		lv, err := strconv.Atoi(k)
		if err != nil || lv < 1 || lv > maxLevel || strconv.Itoa(lv) != k {
			// "01" next to "1" would set one level twice and leave another at zero.
			l.add(file, 0, "%s: unknown level %q", where, k)
			continue
		}
		set(lv, s)
	}
}

// readCSV returns the rows after checking the header; rows keep their file line numbers.
func (l *loader) readCSV(name string, header []string) ([][]string, []int) {
	f, err := l.fsys.Open(name)
	if err != nil {
		l.add(name, 0, "%v", err)
		return nil, nil
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(header)
	var rows [][]string
	var lines []int
	first := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				l.add(name, pe.Line, "%v", pe.Err)
				continue
			}
			l.add(name, 0, "%v", err)
			return nil, nil
		}
		line, _ := r.FieldPos(0) // only valid for a record read without error
		if first {
			first = false
			if strings.Join(rec, ",") != strings.Join(header, ",") {
				l.add(name, line, "header %q, want %q", strings.Join(rec, ","), strings.Join(header, ","))
				return nil, nil
			}
			continue
		}
		rows = append(rows, rec)
		lines = append(lines, line)
	}
	if first {
		l.add(name, 0, "empty file, want header %q", strings.Join(header, ","))
	}
	return rows, lines
}

var catalogHeader = []string{"med_list_codg", "name", "list_type", "chrgitm_lv", "selfpay_prop", "pric_uplmt_amt", "valid_from", "valid_to"}

func (l *loader) loadCatalogs(rs *RuleSet) {
	for _, name := range l.glob("catalogs", ".csv") {
		prov := strings.TrimSuffix(path.Base(name), ".csv")
		if !isCode(prov, 6) || !strings.HasSuffix(prov, "0000") {
			l.add(name, 0, "file name is not a province code (xx0000.csv)")
			continue
		}
		type row struct {
			it   CatalogItem
			line int
		}
		byCode := map[string][]row{}
		var codes []string // in file order, so that problems come out in a stable order
		rows, lines := l.readCSV(name, catalogHeader)
		for i, rec := range rows {
			if it, ok := l.catalogRow(name, lines[i], rec); ok {
				if byCode[it.Code] == nil {
					codes = append(codes, it.Code)
				}
				byCode[it.Code] = append(byCode[it.Code], row{it, lines[i]})
			}
		}
		c := &Catalog{Province: prov, items: make(map[string][]CatalogItem, len(byCode))}
		for _, code := range codes {
			same := byCode[code]
			sort.SliceStable(same, func(i, j int) bool { return same[i].it.ValidFrom < same[j].it.ValidFrom })
			items := make([]CatalogItem, len(same))
			for i, r := range same {
				items[i] = r.it
				if i == 0 {
					continue
				}
				if prev := same[i-1]; prev.it.ValidTo == 0 || prev.it.ValidTo >= r.it.ValidFrom {
					// Named at the later row of the file: usually the one just added.
					at, other := max(r.line, prev.line), min(r.line, prev.line)
					l.add(name, at, "duplicate catalog rows for %s on %s: validity window overlaps row %d", code, r.it.ValidFrom, other)
				}
			}
			c.items[code] = items
		}
		rs.Catalogs[prov] = c
	}
}

func (l *loader) catalogRow(name string, line int, rec []string) (CatalogItem, bool) {
	n := len(l.problems)
	it := CatalogItem{Code: rec[0], Name: rec[1], ListType: rec[2], Level: Level(rec[3])}
	if it.Code == "" || strings.TrimSpace(it.Code) != it.Code {
		l.add(name, line, "med_list_codg %q is empty or padded", it.Code)
	}
	switch it.ListType {
	case "drug", "service", "material":
	default:
		l.add(name, line, "list_type %q, want drug, service or material", it.ListType)
	}
	var err error
	if it.SelfpayProp, err = ParseRatio(rec[4]); err != nil {
		l.add(name, line, "selfpay_prop %q: %v", rec[4], err)
	}
	switch it.Level {
	case LevelA, LevelC:
	case LevelB:
	default:
		l.add(name, line, "chrgitm_lv %q, want 01, 02 or 03", rec[3])
	}
	if rec[5] != "" {
		it.HasCap = true
		if it.PriceCap, err = ParseMoney(rec[5]); err != nil || it.PriceCap < 0 || it.PriceCap > MaxMoney {
			l.add(name, line, "pric_uplmt_amt %q is not a non-negative amount of at most %s", rec[5], MaxMoney)
		}
	}
	if it.ValidFrom, err = ParseDate(rec[6]); err != nil {
		l.add(name, line, "valid_from: %v", err)
	}
	if rec[7] != "" {
		if it.ValidTo, err = ParseDate(rec[7]); err != nil {
			l.add(name, line, "valid_to: %v", err)
		} else if it.ValidTo < it.ValidFrom {
			l.add(name, line, "valid_to %s before valid_from %s", it.ValidTo, it.ValidFrom)
		}
	}
	return it, len(l.problems) == n
}

var institutionHeader = []string{"fixmedins_code", "name", "admdvs", "kind", "level"}

func (l *loader) loadInstitutions(rs *RuleSet) {
	const name = "institutions.csv"
	rows, lines := l.readCSV(name, institutionHeader)
	for i, rec := range rows {
		line := lines[i]
		in := &Institution{Code: rec[0], Name: rec[1], Admdvs: rec[2], Kind: Kind(rec[3])}
		if len(in.Code) != 12 {
			l.add(name, line, "fixmedins_code %q is not 12 characters", in.Code)
			continue
		}
		if rs.Institutions[in.Code] != nil {
			l.add(name, line, "fixmedins_code %s listed twice", in.Code)
			continue
		}
		r := rs.Regions[in.Admdvs]
		if r == nil {
			l.add(name, line, "admdvs %q is not a known pooling region", in.Admdvs)
		} else if rs.Catalogs[r.Province] == nil {
			l.add(name, line, "no catalog for province %s of region %s", r.Province, in.Admdvs)
		}
		lv, err := strconv.Atoi(rec[4])
		if err != nil || lv < 1 || lv > maxLevel {
			l.add(name, line, "level %q, want 1, 2 or 3", rec[4])
		}
		in.Level = lv
		switch in.Kind {
		case KindHospital:
		case KindPharmacy:
			if lv != 1 {
				l.add(name, line, "a pharmacy is level 1, not %d", lv)
			}
		default:
			l.add(name, line, "kind %q, want hospital or pharmacy", rec[3])
		}
		rs.Institutions[in.Code] = in
	}
}
