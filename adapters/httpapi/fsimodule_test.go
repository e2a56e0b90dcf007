package httpapi_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
)

// goTool is the go command, or a skip when there is none.
func goTool(t *testing.T) string {
	t.Helper()
	g, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	return g
}

// The client module builds and its examples run in a module of an
// integrator's that requires only it.
func TestClientModuleStandsAlone(t *testing.T) {
	g := goTool(t)
	fsiDir, err := filepath.Abs("../fsi")
	require.NoError(t, err)
	dir := t.TempDir()
	gomod := "module example.com/his\n\ngo 1.21\n\nrequire github.com/medsettle/medsettle/adapters/fsi v0.0.0\n\n" +
		"replace github.com/medsettle/medsettle/adapters/fsi => " + fsiDir + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "his.go"), []byte("// Package his is an integrator's HIS.\npackage his\n"), 0o644))
	ex, err := os.ReadFile(filepath.Join(fsiDir, "client", "example_test.go"))
	require.NoError(t, err)
	ex = []byte(strings.Replace(string(ex), "package client_test", "package his_test", 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "example_test.go"), ex, 0o644))

	cmd := exec.Command(g, "test", "-count=1", "-v", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, ex := range []string{"ExampleClient_Settle", "ExampleClient_CallSettle_outcomeUnknown", "ExampleWithTerminal", "ExampleTotal"} {
		require.Contains(t, string(out), "--- PASS: "+ex, "%s", out)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(sum)), "\n") {
		require.True(t, strings.HasPrefix(line, "github.com/shopspring/decimal "), "the client needs decimal only: %s", line)
	}
}

// The client pulls in nothing of the engine: no pgx, Temporal, Prometheus
// or medsettle package outside adapters/fsi.
func TestClientDependencies(t *testing.T) {
	g := goTool(t)
	cmd := exec.Command(g, "list", "-deps", "./client")
	cmd.Dir = "../fsi"
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, pkg := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/jackc/pgx", "go.temporal.io", "github.com/prometheus"} {
			require.False(t, strings.HasPrefix(pkg, bad), "the client depends on %s", pkg)
		}
		if strings.HasPrefix(pkg, "github.com/medsettle/medsettle") {
			require.True(t, strings.HasPrefix(pkg, "github.com/medsettle/medsettle/adapters/fsi"), "the client depends on %s", pkg)
		}
	}
	require.Contains(t, string(out), "github.com/medsettle/medsettle/adapters/fsi/client")
}

// Amounts and ratios at the edge are written exactly as the domain writes them.
func TestWireMoneyIsTheDomainsMoney(t *testing.T) {
	for _, v := range []int64{0, 1, 5, 10, 99, 100, 101, 1230, -5, -100, -12345, 999_999_999_999_999_99, -999_999_999_999_999_99} {
		want, _ := rules.Money(v).MarshalText()
		got, _ := fsi.Money(v).MarshalText()
		require.Equal(t, string(want), string(got), "fen %d", v)
		back, err := fsi.ParseMoney(string(got))
		require.NoError(t, err)
		require.Equal(t, fsi.Money(v), back)
	}
	for _, v := range []int64{0, 1, 10, 100, 1000, 8500, 8750, 8755, 10000} {
		want, _ := rules.Ratio(v).MarshalText()
		got, _ := fsi.Ratio(v).MarshalText()
		require.Equal(t, string(want), string(got), "ratio %d", v)
	}
	for _, bad := range []string{"1e2", "12.345", "", ".5", "5.", "+1", "1,0", "0x10"} {
		_, err := fsi.ParseMoney(bad)
		require.Error(t, err, bad)
	}
}
