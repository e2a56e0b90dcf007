package rules_test

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/rules"
)

// realFS copies the embedded rules into a MapFS that a test may break.
func realFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	src := medsettle.Rules()
	require.NoError(t, fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, path)
		m[path] = &fstest.MapFile{Data: b}
		return err
	}))
	return m
}

// edit replaces the first occurrence of old in a file, failing when the
// fixture no longer contains it (the data changed under the test).
func edit(t testing.TB, m fstest.MapFS, path, old, new string) {
	t.Helper()
	s := string(m[path].Data)
	require.True(t, strings.Contains(s, old), "fixture %s no longer contains %q", path, old)
	m[path] = &fstest.MapFile{Data: []byte(strings.Replace(s, old, new, 1))}
}

// lineOf is the 1-based line of the first line of a file containing s.
func lineOf(t testing.TB, m fstest.MapFS, path, s string) int {
	t.Helper()
	for i, l := range strings.Split(string(m[path].Data), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line containing %q", path, s)
	return 0
}

func loadProblems(t testing.TB, m fstest.MapFS) []rules.Problem {
	t.Helper()
	rs, err := rules.Load(m)
	require.Nil(t, rs, "a broken rules directory is refused whole")
	var le *rules.LoadError
	require.True(t, errors.As(err, &le), "want a *LoadError, got %v", err)
	require.NotEmpty(t, le.Problems)
	return le.Problems
}

func TestLoadRealRules(t *testing.T) {
	rs := loadRules(t)
	require.Len(t, rs.Regions, 6)
	require.Len(t, rs.Catalogs, 3)
	require.Len(t, rs.Institutions, 18)
	require.Equal(t, 20, rs.Catalogs["150000"].Len())
	require.Len(t, rs.Regions["150100"].Versions, 2)
	require.Nil(t, rs.Regions["150100"].InForce(20251231), "nothing before the first version")
	require.Equal(t, rules.Date(20260101), rs.Regions["150100"].InForce(20260630).EffectiveFrom)
	require.Equal(t, rules.Date(20260701), rs.Regions["150100"].InForce(20260701).EffectiveFrom)
	require.Nil(t, rs.Catalogs["150000"].Lookup("XN05CFZ031B001010100333", 20260901), "valid_to is inclusive, then gone")
	require.NotNil(t, rs.Catalogs["150000"].Lookup("XN05CFZ031B001010100333", 20260831))
}

// Every refusal names the file, the CSV row (0 for a JSON file, whose fault
// is named by its path inside the file) and the reason, so that the bureau
// can fix its data from the message alone.
func TestLoaderRefusesInconsistentRules(t *testing.T) {
	type want struct {
		file   string
		row    func(testing.TB, fstest.MapFS) int // nil: 0
		reason []string                           // all of these, in the reason
	}
	atLine := func(path, s string) func(testing.TB, fstest.MapFS) int {
		return func(t testing.TB, m fstest.MapFS) int { return lineOf(t, m, path, s) }
	}
	cases := []struct {
		name   string
		break_ func(testing.TB, fstest.MapFS)
		want   want
		only   bool // the change makes exactly this one problem
	}{
		{"ratio above 1", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/150200.json", `"unregistered_penalty": "0.15"`, `"unregistered_penalty": "1.15"`)
		}, want{"regions/150200.json", nil, []string{"versions[0].unregistered_penalty", `"1.15"`, "outside [0,1]"}}, true},
		{"negative ratio", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230100.json", `"dibao": "0.70"`, `"dibao": "-0.70"`)
		}, want{"regions/230100.json", nil, []string{"versions[0].assistance.ratios.dibao", `"-0.70"`, "outside [0,1]"}}, true},
		{"ratio with five decimals", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230100.json", `"dibao": "0.70"`, `"dibao": "0.70001"`)
		}, want{"regions/230100.json", nil, []string{"assistance.ratios.dibao", "too many decimals"}}, true},
		{"catalog ratio above 1", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/420000.csv", "drug,02,0.15,,2026-01-01,", "drug,02,1.15,,2026-01-01,")
		}, want{"catalogs/420000.csv", atLine("catalogs/420000.csv", "1.15"), []string{`selfpay_prop "1.15"`, "outside [0,1]"}}, true},
		{"two versions take effect the same day", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/150100.json", `"effective_from": "2026-07-01"`, `"effective_from": "2026-01-01"`)
		}, want{"regions/150100.json", nil, []string{"overlapping versions", "2026-01-01"}}, true},
		{"unknown cap pool of a benefit", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230100.json", `"cap_pool": "outpatient"`, `"cap_pool": "dental"`)
		}, want{"regions/230100.json", nil, []string{"versions[0].insutypes.310.outpatient.cap_pool", `unknown cap pool "dental"`}}, true},
		{"unknown cap pool of an annual cap", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230100.json", `"outpatient": "3000.00"`, `"dental": "3000.00"`)
		}, want{"regions/230100.json", nil, []string{"versions[0].insutypes.310.annual_cap", `unknown cap pool "dental"`}}, false},
		{"segment thresholds decreasing", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/420100.json", `"from": "40000.00"`, `"from": "10000.00"`)
		}, want{"regions/420100.json", nil, []string{"versions[0].insutypes.390.supplementary.segments[1]", "not increasing", "10000.00 after 12000.00"}}, true},
		{"segment thresholds equal", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/420100.json", `"from": "40000.00"`, `"from": "12000.00"`)
		}, want{"regions/420100.json", nil, []string{"supplementary.segments[1]", "not increasing"}}, true},
		{"two catalog rows for one code from the same day", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/150000.csv", "\n004000000010000,", "\n001101000010000,普通门诊诊察费(新),service,01,0,,2026-01-01,\n004000000010000,")
		}, want{"catalogs/150000.csv", atLine("catalogs/150000.csv", "(新)"), []string{"duplicate catalog rows for 001101000010000 on 2026-01-01", "overlaps row"}}, true},
		{"two catalog rows whose windows share a day", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/230000.csv", "普通针刺,service,01,0,,2026-01-01,", "普通针刺,service,01,0,,2026-01-01,2026-06-30\n004000000010000,普通针刺,service,01,0,,2026-06-30,")
		}, want{"catalogs/230000.csv", atLine("catalogs/230000.csv", "2026-06-30,"), []string{"duplicate catalog rows for 004000000010000 on 2026-06-30", "overlaps row"}}, true},
		{"bad charge level", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/230000.csv", "drug,01,0,,2026-01-01,", "drug,04,0,,2026-01-01,")
		}, want{"catalogs/230000.csv", atLine("catalogs/230000.csv", "drug,04,"), []string{`chrgitm_lv "04"`, "want 01, 02 or 03"}}, true},
		{"day that does not exist", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/420000.csv", "2026-03-01,", "2026-02-30,")
		}, want{"catalogs/420000.csv", atLine("catalogs/420000.csv", "2026-02-30"), []string{"valid_from", `"2026-02-30" is not a calendar day`}}, true},
		{"date in another format", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/420500.json", `"effective_from": "2026-01-01"`, `"effective_from": "2026/01/01"`)
		}, want{"regions/420500.json", nil, []string{"versions[0].effective_from", `"2026/01/01" is not yyyy-mm-dd`}}, true},
		{"valid_to before valid_from", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/150000.csv", "2026-01-01,2026-08-31", "2026-01-01,2025-08-31")
		}, want{"catalogs/150000.csv", atLine("catalogs/150000.csv", "2025-08-31"), []string{"valid_to 2025-08-31 before valid_from 2026-01-01"}}, true},
		{"institution of an unknown region", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "institutions.csv", ",150200,hospital,3", ",990100,hospital,3")
		}, want{"institutions.csv", atLine("institutions.csv", "990100"), []string{`admdvs "990100" is not a known pooling region`}}, true},
		{"pharmacy of level 2", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "institutions.csv", ",150100,pharmacy,1", ",150100,pharmacy,2")
		}, want{"institutions.csv", atLine("institutions.csv", "pharmacy,2"), []string{"a pharmacy is level 1, not 2"}}, true},
		{"malformed JSON", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/420500.json", `"versions": [`, `"versions": [[`)
		}, want{"regions/420500.json", nil, []string{"malformed JSON"}}, true},
		{"unknown JSON field", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230200.json", `"name_en"`, `"nickname"`)
		}, want{"regions/230200.json", nil, []string{"malformed JSON", `unknown field "nickname"`}}, true},
		{"unknown JSON field deep inside", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230200.json", `"covers_fulamt"`, `"covers_fulamount"`)
		}, want{"regions/230200.json", nil, []string{`unknown field "covers_fulamount"`}}, true},
		{"trailing data after the region", func(t testing.TB, m fstest.MapFS) {
			m["regions/150200.json"].Data = append(m["regions/150200.json"].Data, "]"...)
		}, want{"regions/150200.json", nil, []string{"trailing data"}}, true},
		{"level written 01", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/150200.json", `"1": `, `"01": `)
		}, want{"regions/150200.json", nil, []string{"versions[0].insutypes.310.outpatient.deductible.by_level", `unknown level "01"`}}, true},
		{"amount beyond DECIMAL(18,2)", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/150200.json", `"annual_cap": "40000.00"`, `"annual_cap": "100000000000000000.00"`)
		}, want{"regions/150200.json", nil, []string{"versions[0].assistance.annual_cap", `"100000000000000000.00"`}}, true},
		{"price cap beyond DECIMAL(18,2)", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/150000.csv", "material,01,0,5.00,", "material,01,0,90000000000000000.00,")
		}, want{"catalogs/150000.csv", atLine("catalogs/150000.csv", "90000000000000000.00"), []string{`pric_uplmt_amt "90000000000000000.00"`}}, true},
		{"catalog row with a missing column", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/420000.csv", "磁共振平扫,service,02,0.20,,2026-01-01,", "磁共振平扫,service,02,0.20,2026-01-01,")
		}, want{"catalogs/420000.csv", atLine("catalogs/420000.csv", "磁共振平扫"), []string{"wrong number of fields"}}, true},
		{"catalog header renamed", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/420000.csv", "selfpay_prop", "selfpay_ratio")
		}, want{"catalogs/420000.csv", func(testing.TB, fstest.MapFS) int { return 1 }, []string{"header", "selfpay_ratio"}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := realFS(t)
			c.break_(t, m)
			problems := loadProblems(t, m)
			row := 0
			if c.want.row != nil {
				row = c.want.row(t, m)
			}
			var match *rules.Problem
			var own []rules.Problem
			for i, p := range problems {
				if p.File != c.want.file {
					// A refused region takes its institutions with it; nothing else may be blamed.
					require.Equal(t, "institutions.csv", p.File, "only the broken file is blamed: %v", p)
					require.Contains(t, p.Reason, "is not a known pooling region")
					continue
				}
				own = append(own, p)
				if p.Row == row && match == nil {
					match = &problems[i]
				}
			}
			require.NotNil(t, match, "no problem at %s row %d in %v", c.want.file, row, problems)
			for _, s := range c.want.reason {
				require.Contains(t, match.Reason, s)
			}
			if c.only {
				require.Len(t, own, 1, "%v", own)
			}
			want := c.want.file + ": "
			if row > 0 {
				want = c.want.file + ":" + strconv.Itoa(row) + ": "
			}
			require.True(t, strings.HasPrefix(match.String(), want), "%q names the file and row", match.String())
		})
	}
}

// Windows that touch without sharing a day are a price change, not a duplicate.
func TestLoaderAcceptsConsecutiveCatalogWindows(t *testing.T) {
	m := realFS(t)
	edit(t, m, "catalogs/230000.csv", "普通针刺,service,01,0,,2026-01-01,",
		"普通针刺,service,01,0,,2026-01-01,2026-06-30\n004000000010000,普通针刺,service,02,0.10,30.00,2026-07-01,")
	rs, err := rules.Load(m)
	require.NoError(t, err)
	cat := rs.Catalogs["230000"]
	require.Equal(t, rules.LevelA, cat.Lookup("004000000010000", 20260630).Level)
	require.Equal(t, rules.LevelB, cat.Lookup("004000000010000", 20260701).Level)
}

// One load reports every problem of every file, so that a bureau fixes its
// data in one round, not one error at a time.
func TestLoaderReportsEveryProblemAtOnce(t *testing.T) {
	m := realFS(t)
	edit(t, m, "regions/150200.json", `"unregistered_penalty": "0.15"`, `"unregistered_penalty": "1.15"`)
	edit(t, m, "catalogs/230000.csv", "drug,01,0,,2026-01-01,", "drug,04,0,,2026-01-01,")
	edit(t, m, "institutions.csv", ",150100,pharmacy,1", ",150100,pharmacy,2")
	problems := loadProblems(t, m)
	files := map[string]bool{}
	for _, p := range problems {
		files[p.File] = true
	}
	require.Equal(t, map[string]bool{"regions/150200.json": true, "catalogs/230000.csv": true, "institutions.csv": true}, files)
	_, err := rules.Load(m)
	for _, p := range problems {
		require.Contains(t, err.Error(), p.String(), "the error text carries each problem")
	}
}
