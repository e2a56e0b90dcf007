package rules_test

import (
	"encoding/json"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

// The text forms the national interface sends, and the ones it must refuse
// rather than guess at.
func TestParseMoney(t *testing.T) {
	for _, c := range []struct {
		in   string
		want rules.Money
		err  string
	}{
		{"0", 0, ""},
		{"12", 1200, ""},
		{"12.3", 1230, ""},
		{"12.30", 1230, ""},
		{"-0.05", -5, ""},
		{"0012.30", 1230, ""},
		{".5", 50, ""},
		// The largest amounts: the same value in every spelling (found by FuzzParseMoney).
		{"92233720368547758", 9223372036854775800, ""},
		{"92233720368547758.00", 9223372036854775800, ""},
		{"92233720368547758.07", 9223372036854775807, ""},
		{"92233720368547758.08", 0, "too large"},
		{"1.234", 0, "too many decimals"},
		{"5.", 0, "not a decimal"},
		{"", 0, "not a decimal"},
		{"-", 0, "not a decimal"},
		{"+5", 0, "not a decimal"},
		{"1e3", 0, "not a decimal"},
		{" 1", 0, "not a decimal"},
		{"1,000.00", 0, "not a decimal"},
		{"1.2.3", 0, "not a decimal"},
	} {
		got, err := rules.ParseMoney(c.in)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		require.Equal(t, c.want, got, "%q", c.in)
	}
}

func TestMoneyString(t *testing.T) {
	for m, want := range map[rules.Money]string{
		0: "0.00", 5: "0.05", 100: "1.00", 123456: "1234.56", -5: "-0.05", -123456: "-1234.56",
		rules.MaxMoney: "999999999999999.99", 1<<63 - 1: "92233720368547758.07", -1 << 63: "-92233720368547758.08",
	} {
		require.Equal(t, want, m.String())
		require.True(t, decimal.RequireFromString(want).Equal(m.Decimal()), want)
	}
}

func TestParseRatio(t *testing.T) {
	for in, want := range map[string]rules.Ratio{"0": 0, "1": 10_000, "0.85": 8_500, "0.1234": 1_234, "1.0000": 10_000} {
		got, err := rules.ParseRatio(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"1.0001", "-0.01", "0.12345", "85%", ""} {
		_, err := rules.ParseRatio(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "0.80", rules.Ratio(8_000).String())
	require.Equal(t, "0.875", rules.Ratio(8_750).String())
	require.Equal(t, "0.1234", rules.Ratio(1_234).String())
}

// A Go caller's decimals are held to the same rule as text: at most two
// places for an amount, whatever the value.
func TestMoneyFromDecimal(t *testing.T) {
	for in, want := range map[string]rules.Money{"12.3": 1230, "0": 0, "1e2": 10_000, "-0.05": -5, "999999999999999.99": rules.MaxMoney} {
		got, err := rules.MoneyFromDecimal(decimal.RequireFromString(in))
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"1.230", "0.001", "1e30", "100000000000000000000"} {
		_, err := rules.MoneyFromDecimal(decimal.RequireFromString(in))
		require.Error(t, err, in)
	}
}

func TestParseDate(t *testing.T) {
	for in, want := range map[string]rules.Date{"2026-01-01": 20260101, "2024-02-29": 20240229, "2000-02-29": 20000229} {
		got, err := rules.ParseDate(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		require.Equal(t, in, got.String())
	}
	for _, in := range []string{"2026-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-1-01", "2026/01/01", "20260101", "2026-04-31", ""} {
		_, err := rules.ParseDate(in)
		require.Error(t, err, in)
	}
}

// In JSON amounts and ratios are decimal strings, as the national interface
// writes them, and read back from strings or numbers.
func TestMoneyAndRatioJSON(t *testing.T) {
	type doc struct {
		Amount rules.Money   `json:"amount"`
		Neg    rules.Money   `json:"neg"`
		Prop   rules.Ratio   `json:"prop"`
		List   []rules.Money `json:"list"`
	}
	prop, err := rules.ParseRatio("0.15")
	require.NoError(t, err)
	in := doc{Amount: 1230, Neg: -5, Prop: prop, List: []rules.Money{0, 100}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"amount":"12.30","neg":"-0.05","prop":"`+prop.String()+`","list":["0.00","1.00"]}`, string(b))

	var out doc
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
	require.NoError(t, json.Unmarshal([]byte(`{"amount":12.3}`), &out))
	require.Equal(t, rules.Money(1230), out.Amount)
}
