package rules_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle"
	"github.com/medsettle/medsettle/rules"
)

func loadRules(t testing.TB) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Load(medsettle.Rules())
	require.NoError(t, err)
	return rs
}

type golden struct {
	Request json.RawMessage `json:"request"`
	Expect  json.RawMessage `json:"expect"`
}

func goldenCases(t testing.TB) map[string]golden {
	t.Helper()
	files, err := filepath.Glob("../testdata/golden/*.json")
	require.NoError(t, err)
	require.Len(t, files, 40, "the 40 worked cases of the specification")
	out := map[string]golden{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var g golden
		require.NoError(t, json.Unmarshal(raw, &g))
		out[filepath.Base(f)] = g
	}
	return out
}

// The specification's worked cases, exact to the fen: every field of
// setlinfo, every line and the counters after; refusals by code.
func TestGoldenCases(t *testing.T) {
	rs := loadRules(t)
	for name, g := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			req, err := rules.DecodeRequest(bytes.NewReader(g.Request))
			require.NoError(t, err)
			res, err := rs.Price(req.Claim())
			var expect struct {
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(g.Expect, &expect))
			if expect.Error != nil {
				var re *rules.Error
				require.ErrorAs(t, err, &re)
				require.Equal(t, expect.Error.Code, re.Code, re.Message)
				return
			}
			require.NoError(t, err)
			got, err := json.Marshal(rules.Answer{Setlinfo: res.Setlinfo, Lines: res.Lines, After: res.After})
			require.NoError(t, err)
			require.JSONEq(t, string(g.Expect), string(got))
		})
	}
}
