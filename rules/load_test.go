package rules_test

import (
	"errors"
	"io/fs"
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

func edit(t testing.TB, m fstest.MapFS, path, old, new string) {
	t.Helper()
	s := string(m[path].Data)
	require.Contains(t, s, old, "fixture %s", path)
	m[path] = &fstest.MapFile{Data: []byte(strings.Replace(s, old, new, 1))}
}

func TestLoaderRefusesInconsistentRules(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(testing.TB, fstest.MapFS)
		want   string // file, row and reason
	}{
		{"ratio outside [0,1]", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/150200.json", `"unregistered_penalty": "0.15"`, `"unregistered_penalty": "1.15"`)
		}, "regions/150200.json: versions[0].unregistered_penalty: ratio \"1.15\""},
		{"two versions on one day", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/150100.json", `"effective_from": "2026-07-01"`, `"effective_from": "2026-01-01"`)
		}, "regions/150100.json: overlapping versions: two take effect on 2026-01-01"},
		{"unknown cap pool", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230100.json", `"cap_pool": "outpatient"`, `"cap_pool": "dental"`)
		}, `unknown cap pool "dental"`},
		{"segments not increasing", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/420100.json", `"from": "40000.00"`, `"from": "10000.00"`)
		}, "segment thresholds not increasing"},
		{"duplicate catalog rows for one date", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/150000.csv", "\n001101000010000,", "\n001101000010000,普通门诊诊察费,service,01,0,,2026-06-01,\n001101000010000,")
		}, "catalogs/150000.csv: duplicate catalog rows for 001101000010000"},
		{"bad charge level", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/230000.csv", "drug,01,0,,2026-01-01,", "drug,04,0,,2026-01-01,")
		}, `catalogs/230000.csv:2: chrgitm_lv "04"`},
		{"bad date", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "catalogs/420000.csv", "2026-03-01,", "2026-02-30,")
		}, `catalogs/420000.csv:5: valid_from: date "2026-02-30" is not a calendar day`},
		{"institution of an unknown region", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "institutions.csv", ",150200,hospital,3", ",990100,hospital,3")
		}, `institutions.csv:6: admdvs "990100" is not a known pooling region`},
		{"pharmacy above level 1", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "institutions.csv", ",150100,pharmacy,1", ",150100,pharmacy,2")
		}, "institutions.csv:5: a pharmacy is level 1, not 2"},
		{"malformed JSON", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/420500.json", `"versions": [`, `"versions": [[`)
		}, "regions/420500.json: malformed JSON"},
		{"unknown field", func(t testing.TB, m fstest.MapFS) {
			edit(t, m, "regions/230200.json", `"name_en"`, `"nickname"`)
		}, `regions/230200.json: malformed JSON: json: unknown field "nickname"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := realFS(t)
			_, err := rules.Load(m)
			require.NoError(t, err, "the unbroken copy loads")
			c.break_(t, m)
			_, err = rules.Load(m)
			var le *rules.LoadError
			require.True(t, errors.As(err, &le), "%v", err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}
