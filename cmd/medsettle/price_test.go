package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `medsettle price` answers every worked case exactly, exit 0 for an answer
// and 2 for a refusal, as the hidden set of the same kind is run.
func TestPriceCommandGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/golden/*.json")
	require.NoError(t, err)
	require.Len(t, files, 40)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var g struct {
			Request json.RawMessage `json:"request"`
			Expect  json.RawMessage `json:"expect"`
		}
		require.NoError(t, json.Unmarshal(raw, &g))
		var stdout, stderr bytes.Buffer
		code := dispatch(context.Background(), []string{"price"}, bytes.NewReader(g.Request), &stdout, &stderr)
		if bytes.Contains(g.Expect, []byte(`"error"`)) {
			require.Equal(t, 2, code, f)
			var got, want struct {
				Error struct{ Code string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &got))
			require.NoError(t, json.Unmarshal(g.Expect, &want))
			require.Equal(t, want.Error.Code, got.Error.Code, f)
			continue
		}
		require.Equal(t, 0, code, "%s: %s", f, stderr.String())
		require.JSONEq(t, string(g.Expect), stdout.String(), f)
	}
}

func TestPriceCommandRefusesMalformedInput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), []string{"price"}, strings.NewReader(`{"insuplc_admdvs": 150100`), &stdout, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stdout.String(), `"code":"invalid_request"`)
}

func TestRulesCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, dispatch(context.Background(), []string{"rules", "check"}, nil, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "150100 呼和浩特市")

	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../../testdata/rules")))
	cat := filepath.Join(dir, "catalogs", "150000.csv")
	b, err := os.ReadFile(cat)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cat, bytes.Replace(b, []byte("drug,01,0,,"), []byte("drug,07,0,,"), 1), 0o644))
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 1, dispatch(context.Background(), []string{"rules", "check", dir}, nil, &stdout, &stderr))
	require.Contains(t, stderr.String(), `catalogs/150000.csv:2: chrgitm_lv "07"`)
}
