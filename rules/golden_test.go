package rules_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/rules"
)

// The root package only embeds files and imports nothing of this module, so
// the tests price against exactly the rules the binary ships.
func loadRules(t testing.TB) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	return rs
}

type golden struct {
	Name    string
	Request json.RawMessage `json:"request"`
	Expect  json.RawMessage `json:"expect"`
}

// goldenCases are the specification's worked cases, in file order so that a
// failure names the same case on every run. There is deliberately no -update
// flag: these files are the spec's answers, not snapshots of the code's.
func goldenCases(t testing.TB) []golden {
	t.Helper()
	files, err := filepath.Glob("../testdata/golden/*.json")
	require.NoError(t, err)
	require.Len(t, files, 40, "the 40 worked cases of the specification")
	sort.Strings(files)
	out := make([]golden, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var g golden
		require.NoError(t, json.Unmarshal(raw, &g), f)
		g.Name = filepath.Base(f)
		out = append(out, g)
	}
	return out
}

// expectedCode is the refusal code a case expects, or "" for an answer.
func expectedCode(t testing.TB, g golden) string {
	t.Helper()
	var e struct {
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(g.Expect, &e), g.Name)
	if e.Error == nil {
		return ""
	}
	require.NotEmpty(t, e.Error.Code, g.Name)
	return e.Error.Code
}

func compact(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, raw))
	return b.Bytes()
}

// The worked cases, exact to the fen: every field of setlinfo, every line and
// the counters after, in the answer's own key order and number format
// ("0.00", not "0"); refusals by code, which is all the spec fixes for them.
func TestGoldenCases(t *testing.T) {
	rs := loadRules(t)
	for _, g := range goldenCases(t) {
		t.Run(g.Name, func(t *testing.T) {
			want := expectedCode(t, g)
			req, err := rules.DecodeRequest(bytes.NewReader(g.Request))
			require.NoError(t, err, "every worked case is well-formed JSON")
			res, err := rs.Price(req.Claim())
			if want != "" {
				var re *rules.Error
				require.ErrorAs(t, err, &re)
				require.Equal(t, want, re.Code, re.Message)
				require.NotEmpty(t, re.Message, "the counter needs to know which field")
				return
			}
			require.NoError(t, err)
			got, err := json.Marshal(rules.Answer{Setlinfo: res.Setlinfo, Lines: res.Lines, After: res.After})
			require.NoError(t, err)
			// JSONEq first for a readable field-by-field diff, then bytes, which
			// also catch a reordered key or a number written another way.
			require.JSONEq(t, string(g.Expect), string(got))
			require.Equal(t, string(compact(t, g.Expect)), string(got))
		})
	}
}

// Pricing must not keep anything between claims: the same cases priced in
// reverse order, on the same RuleSet, give the same answers.
func TestGoldenCasesIndependentOfOrder(t *testing.T) {
	rs := loadRules(t)
	cases := goldenCases(t)
	first := map[string]string{}
	price := func(g golden) string {
		req, err := rules.DecodeRequest(bytes.NewReader(g.Request))
		require.NoError(t, err)
		res, err := rs.Price(req.Claim())
		if err != nil {
			return err.Error()
		}
		b, err := json.Marshal(rules.Answer{Setlinfo: res.Setlinfo, Lines: res.Lines, After: res.After})
		require.NoError(t, err)
		return string(b)
	}
	for _, g := range cases {
		first[g.Name] = price(g)
	}
	for i := len(cases) - 1; i >= 0; i-- {
		require.Equal(t, first[cases[i].Name], price(cases[i]), cases[i].Name)
	}
}
