package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runCmd calls the real command dispatcher in-process, as main does with the
// process's streams: the exit status and both streams are what a script sees.
func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

type goldenCase struct {
	name            string
	request, expect json.RawMessage
}

func priceGoldenCases(t *testing.T) []goldenCase {
	t.Helper()
	files, err := filepath.Glob("../../testdata/golden/*.json")
	require.NoError(t, err)
	require.Len(t, files, 40, "the 40 worked cases of the specification")
	sort.Strings(files)
	var out []goldenCase
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var g struct {
			Request json.RawMessage `json:"request"`
			Expect  json.RawMessage `json:"expect"`
		}
		require.NoError(t, json.Unmarshal(raw, &g), f)
		out = append(out, goldenCase{filepath.Base(f), g.Request, g.Expect})
	}
	return out
}

// wantError is the refusal code a case expects, "" for an answer.
func wantError(t *testing.T, expect json.RawMessage) string {
	var e struct {
		Error *struct{ Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(expect, &e))
	if e.Error == nil {
		return ""
	}
	return e.Error.Code
}

// `medsettle price` answers every worked case: exit 0 and exactly the
// expected answer as one JSON line, or exit 2 and the expected refusal code
// with a message. Nothing on stderr either way: stderr is for the operator.
func TestPriceCommandGolden(t *testing.T) {
	for _, g := range priceGoldenCases(t) {
		t.Run(g.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, string(g.request), "price")
			require.Empty(t, stderr)
			require.True(t, strings.HasSuffix(stdout, "\n") && strings.Count(stdout, "\n") == 1, "one JSON line: %q", stdout)
			if want := wantError(t, g.expect); want != "" {
				require.Equal(t, 2, code, stdout)
				var got struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(stdout), &got))
				require.Equal(t, want, got.Error.Code, got.Error.Message)
				require.NotEmpty(t, got.Error.Message)
				return
			}
			require.Equal(t, 0, code, stdout)
			require.JSONEq(t, string(g.expect), stdout)
			var compact bytes.Buffer
			require.NoError(t, json.Compact(&compact, g.expect))
			require.Equal(t, compact.String()+"\n", stdout, "same keys, same order, same number format")
		})
	}
}

// --data reads a rules directory instead of the embedded one; a copy of the
// embedded data gives the same answers.
func TestPriceCommandWithDataDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../testdata/rules")))
	for _, g := range priceGoldenCases(t)[:5] {
		code1, out1, _ := runCmd(t, string(g.request), "price")
		code2, out2, err2 := runCmd(t, string(g.request), "price", "--data", dir)
		require.Equal(t, code1, code2, g.name)
		require.Equal(t, out1, out2, g.name)
		require.Empty(t, err2)
	}
}

func TestPriceCommandRefusals(t *testing.T) {
	for _, c := range []struct {
		name, stdin, code string
	}{
		{"truncated JSON", `{"insuplc_admdvs": 150100`, "invalid_request"},
		{"not an object", `[1, 2]`, "invalid_request"},
		{"two objects", `{} {}`, "invalid_request"},
		{"empty input", ``, "invalid_request"},
		{"unknown region", `{"insuplc_admdvs": "990100"}`, "unknown_region"},
		{"bad setl_date", `{"insuplc_admdvs": "150100", "fixmedins_code": "H15010000011", "med_type": "11", "setl_date": "2026-02-30"}`, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, c.stdin, "price")
			require.Equal(t, 2, code)
			require.Empty(t, stderr)
			var got struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(stdout), &got), stdout)
			require.Equal(t, c.code, got.Error.Code, got.Error.Message)
			require.NotEmpty(t, got.Error.Message)
		})
	}
}

// Broken rules are an operator's problem, not a claim's: exit 1, the problem
// on stderr, nothing on stdout that a caller could take for an answer.
func TestPriceCommandWithBrokenRules(t *testing.T) {
	dir := brokenRules(t, "institutions.csv", ",150100,pharmacy,1", ",150100,pharmacy,2")
	code, stdout, stderr := runCmd(t, string(priceGoldenCases(t)[0].request), "price", "--data", dir)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "institutions.csv:5: a pharmacy is level 1, not 2")
}

func TestRulesCheckEmbedded(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "rules", "check")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	require.Contains(t, stdout, "rules (embedded): OK")
	for _, s := range []string{
		"150100 呼和浩特市 (Hohhot), province 150000, 2 version(s): 2026-01-01[310,390] 2026-07-01[310,390]",
		"150000: 20 rows", "230000: 18 rows", "420000: 19 rows",
		"institutions: 18",
		"P15010000201 pharmacy level 1 region 150100",
	} {
		require.Contains(t, stdout, s)
	}
}

// brokenRules copies the embedded rules to a directory and replaces the first
// old by new in one file.
func brokenRules(t *testing.T, file, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../testdata/rules")))
	p := filepath.Join(dir, filepath.FromSlash(file))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.True(t, bytes.Contains(b, []byte(old)), "fixture %s no longer contains %q", file, old)
	require.NoError(t, os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644))
	return dir
}

// `rules check DIR` names each problem as file:row: reason, one per line,
// and exits 1: it is what a bureau runs before shipping its data.
func TestRulesCheckBrokenDirectory(t *testing.T) {
	for _, c := range []struct {
		name, file, old, new, want string
	}{
		{"bad charge level", "catalogs/150000.csv", "drug,01,0,,", "drug,07,0,,", `catalogs/150000.csv:2: chrgitm_lv "07", want 01, 02 or 03`},
		{"pharmacy of level 2", "institutions.csv", ",150100,pharmacy,1", ",150100,pharmacy,2", "institutions.csv:5: a pharmacy is level 1, not 2"},
		{"bad date", "catalogs/420000.csv", "2026-03-01,", "2026-02-30,", `catalogs/420000.csv:5: valid_from: date "2026-02-30" is not a calendar day`},
		{"ratio outside [0,1]", "regions/150200.json", `"unregistered_penalty": "0.15"`, `"unregistered_penalty": "1.15"`,
			`regions/150200.json: versions[0].unregistered_penalty: ratio "1.15"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := brokenRules(t, c.file, c.old, c.new)
			code, stdout, stderr := runCmd(t, "", "rules", "check", dir)
			require.Equal(t, 1, code)
			require.Empty(t, stdout, "no OK line for refused rules")
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			require.Contains(t, lines[0], c.want)
			require.True(t, strings.HasPrefix(lines[0], strings.SplitN(c.want, ":", 2)[0]), "the line starts with the file: %q", lines[0])
			require.Regexp(t, `^\d+ problem\(s\): rules refused$`, lines[len(lines)-1])
		})
	}
}

func TestRulesCheckMissingDirectory(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "rules", "check", filepath.Join(t.TempDir(), "nothing-here"))
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.NotEmpty(t, stderr)
}
