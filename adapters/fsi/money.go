package fsi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// Money is an exact amount of yuan counted in fen (Money(1230) is 12.30
// yuan). In JSON it is a string with exactly two decimals ("12.30"), as the
// platform writes amounts; it reads a string or a bare number with at most
// two decimals, digit by digit, never through a float.
type Money int64

// Ratio is a fraction counted in ten-thousandths (Ratio(8500) is 0.85),
// written with two to four decimals ("0.85", "0.875").
type Ratio int64

// Yuan is n whole yuan.
func Yuan(n int64) Money { return Money(n * 100) }

// Decimal returns m as a decimal with exactly two places.
func (m Money) Decimal() decimal.Decimal { return decimal.New(int64(m), -2) }

// String is m with two decimals: "12.30", "-0.05".
func (m Money) String() string { return string(appendFixed(nil, int64(m), 2, 2)) }

// MarshalText writes m as String does (a JSON string).
func (m Money) MarshalText() ([]byte, error) { return appendFixed(nil, int64(m), 2, 2), nil }

// UnmarshalJSON reads "12.30", 12.3 or "12".
func (m *Money) UnmarshalJSON(b []byte) error { return unmarshalJSONFixed(m, b, 2, "amount") }

// ParseMoney reads a plain decimal with at most two decimals ("12", "12.3", "-0.05").
func ParseMoney(s string) (Money, error) {
	v, err := parseFixed(s, 2)
	if err != nil {
		return 0, fmt.Errorf("fsi: amount %q: %w", s, err)
	}
	return Money(v), nil
}

// MoneyFromDecimal converts d, which must have at most two decimals.
func MoneyFromDecimal(d decimal.Decimal) (Money, error) {
	if !d.Equal(d.Truncate(2)) {
		return 0, fmt.Errorf("fsi: amount %s has more than two decimals", d)
	}
	return ParseMoney(d.StringFixed(2))
}

// Decimal returns r as a decimal (0.85).
func (r Ratio) Decimal() decimal.Decimal { return decimal.New(int64(r), -4) }

// String is r with two to four decimals: "0.80", "0.875".
func (r Ratio) String() string { return string(appendFixed(nil, int64(r), 4, 2)) }

// MarshalText writes r as String does (a JSON string).
func (r Ratio) MarshalText() ([]byte, error) { return appendFixed(nil, int64(r), 4, 2), nil }

// UnmarshalJSON reads "0.85" or 0.85.
func (r *Ratio) UnmarshalJSON(b []byte) error { return unmarshalJSONFixed(r, b, 4, "ratio") }

// appendFixed writes v / 10^places with at least keep decimals (trailing
// zeros beyond keep are dropped).
func appendFixed(dst []byte, v int64, places, keep int) []byte {
	u := uint64(v)
	if v < 0 {
		dst = append(dst, '-')
		u = -u
	}
	scale := uint64(1)
	for i := 0; i < places; i++ {
		scale *= 10
	}
	dst = strconv.AppendUint(dst, u/scale, 10)
	frac := strconv.AppendUint(make([]byte, 0, 24), u%scale+scale, 10)[1:] // zero-padded to places digits
	n := len(frac)
	for n > keep && frac[n-1] == '0' {
		n--
	}
	return append(append(dst, '.'), frac[:n]...)
}

var errForm = errors.New("not a plain decimal")

// unmarshalJSONFixed reads a JSON string or number holding a plain decimal
// with at most places decimals into dst (Money or Ratio, named by what in
// the error).
func unmarshalJSONFixed[T ~int64](dst *T, b []byte, places int, what string) error {
	v, err := parseJSONFixed(b, places)
	if err != nil {
		return fmt.Errorf("fsi: %s %s: %w", what, b, err)
	}
	*dst = T(v)
	return nil
}

// parseJSONFixed reads a JSON string or number holding a plain decimal.
func parseJSONFixed(b []byte, places int) (int64, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		return parseFixed(s, places)
	}
	return parseFixed(string(b), places)
}

// parseFixed reads [-]digits[.digits] with at most places decimals as an
// integer count of 10^-places.
func parseFixed(s string, places int) (int64, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	whole, frac, dot := s, "", false
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac, dot = s[:i], s[i+1:], true
			break
		}
	}
	if whole == "" || (dot && frac == "") || !digits(whole) || !digits(frac) {
		return 0, errForm
	}
	if len(frac) > places {
		return 0, fmt.Errorf("more than %d decimals", places)
	}
	for len(frac) < places {
		frac += "0"
	}
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("out of range")
	}
	if neg {
		v = -v
	}
	return v, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Text is a value an HIS may send as a string or a bare number ("12.30" or
// 12.30): it is kept as written, so that its form can be judged and no float
// ever touches it. It is written back as a string.
type Text struct {
	S   string
	Set bool // present in the input (null counts as absent)
}

// T is the Text s, as a client sends it.
func T(s string) Text { return Text{S: s, Set: true} }

// MarshalText writes S.
func (t Text) MarshalText() ([]byte, error) { return []byte(t.S), nil }

// UnmarshalJSON accepts "12.30", 12.30, or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*t = Text{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		*t = Text{S: s, Set: err == nil}
		return err
	}
	if len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		*t = Text{S: string(b), Set: true}
		return nil
	}
	return fmt.Errorf("want a string or number, got %s", b)
}
