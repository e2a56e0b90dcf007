package rules

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/shopspring/decimal"
)

// Money is an exact amount of yuan counted in fen (0.01 yuan). Pricing works in
// integer fen so that a claim is priced without allocating, and every result is
// exact: there is no rounding except the ROUND half-up steps docs/pricing.md names.
// Convert at the edges with Decimal and MoneyFromDecimal.
type Money int64

// MaxMoney is the largest amount accepted: within DECIMAL(18,2), with room
// for sums of several such amounts in int64 fen.
const MaxMoney Money = 999_999_999_999_999_99

// Ratio is a fraction scaled by 10^4 (0.85 is 8500). Policies and catalogs give
// ratios with at most four decimals; the loader refuses finer ones.
type Ratio int64

const (
	ratioOne   Ratio = 10_000
	qtyScale         = 10_000 // cnt and pric carry at most 4 decimals
	moneyScale       = 100
)

// Decimal returns m as a decimal with exactly two places.
func (m Money) Decimal() decimal.Decimal { return decimal.New(int64(m), -2) }

// String formats m as yuan with two decimals, the national interface's form.
func (m Money) String() string {
	neg := m < 0
	u := uint64(m)
	if neg {
		u = -u
	}
	var buf [24]byte
	i := len(buf)
	for n := 0; n < 2; n++ {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	buf[i] = '.'
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// MarshalText is m as a decimal ("12.30"): in JSON a string, as the national
// interface writes amounts. (A text marshaler rather than a JSON one, because
// encoding/json re-scans whatever a MarshalJSON returns.)
func (m Money) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON accepts a decimal string or number with at most two decimals.
func (m *Money) UnmarshalJSON(b []byte) error { return unmarshalFixed(m, b, ParseMoney) }

// unmarshalFixed parses a JSON string or number with parse, straight from its
// text: a JSON number never passes through a float.
func unmarshalFixed[T any](dst *T, b []byte, parse func(string) (T, error)) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := parse(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// ParseMoney reads a plain decimal ("12", "12.3", "-0.05") with at most two
// decimals. Exponents, spaces and signs other than a leading '-' are refused:
// outside input that is not in this form is a mistake worth reporting.
func ParseMoney(s string) (Money, error) {
	v, err := parseFixed(s, 2)
	return Money(v), err
}

// MoneyFromDecimal converts d exactly; d must have at most two decimals.
func MoneyFromDecimal(d decimal.Decimal) (Money, error) {
	v, err := fromDecimal(d, 2)
	return Money(v), err
}

// Decimal returns r as a decimal (0.85).
func (r Ratio) Decimal() decimal.Decimal { return decimal.New(int64(r), -4) }

// String formats r with at least two decimals ("0.80", "0.875").
func (r Ratio) String() string {
	s := r.Decimal().StringFixed(4)
	for len(s) > 0 && s[len(s)-1] == '0' && len(s)-indexByte(s, '.') > 3 {
		s = s[:len(s)-1]
	}
	return s
}

// MarshalText is r as a decimal: in JSON a string, as Money is.
func (r Ratio) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ParseRatio reads a fraction in [0,1] with at most four decimals.
func ParseRatio(s string) (Ratio, error) {
	v, err := parseFixed(s, 4)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > int64(ratioOne) {
		return 0, fmt.Errorf("ratio %s outside [0,1]", s)
	}
	return Ratio(v), nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
	1000000000, 10000000000, 100000000000, 1000000000000, 10000000000000,
	100000000000000, 1000000000000000, 10000000000000000, 100000000000000000,
	1000000000000000000}

// errTooManyDecimals and friends are matched by the request decoder to pick the
// refusal's wording; they are not part of the package API.
type fixedError struct{ msg string }

func (e *fixedError) Error() string { return e.msg }

var (
	errNotDecimal      = &fixedError{"not a decimal"}
	errTooManyDecimals = &fixedError{"too many decimals"}
	errTooLarge        = &fixedError{"too large"}
)

// parseFixed parses a plain decimal into an integer scaled by 10^scale.
func parseFixed(s string, scale int) (int64, error) {
	if s == "" {
		return 0, errNotDecimal
	}
	neg := false
	i := 0
	if s[0] == '-' {
		neg = true
		i = 1
	}
	var v int64
	digits, decimals := 0, 0
	seenDot := false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !seenDot:
			seenDot = true
			continue
		case c < '0' || c > '9':
			return 0, errNotDecimal
		}
		if seenDot {
			decimals++
			if decimals > scale {
				return 0, errTooManyDecimals
			}
		}
		digits++
		// Exact: "92233720368547758.00" must parse when "92233720368547758" does.
		if d := int64(c - '0'); v > (1<<63-1-d)/10 {
			return 0, errTooLarge
		}
		v = v*10 + int64(c-'0')
	}
	if digits == 0 || (seenDot && decimals == 0) {
		return 0, errNotDecimal
	}
	for ; decimals < scale; decimals++ {
		if v > (1<<63-1)/10 {
			return 0, errTooLarge
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, nil
}

// fromDecimal converts d to an integer scaled by 10^scale without allocating
// for ordinary values.
func fromDecimal(d decimal.Decimal, scale int) (int64, error) {
	exp := int(d.Exponent())
	if exp < -scale {
		// "1.230" is refused like its text would be: the caller wrote three decimals.
		return 0, errTooManyDecimals
	}
	if d.NumDigits() > 18 {
		return 0, errTooLarge
	}
	v := d.CoefficientInt64()
	shift := exp + scale
	if shift >= len(pow10) {
		if v == 0 {
			return 0, nil
		}
		return 0, errTooLarge
	}
	p := pow10[shift]
	hi, lo := bits.Mul64(uint64(abs64(v)), uint64(p))
	if hi != 0 || lo > 1<<62 {
		return 0, errTooLarge
	}
	return v * p, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// mulDivRound returns ROUND_HALF_UP(a*b/d) for non-negative a, b and d > 0,
// computed in 128 bits; ok is false when the quotient does not fit.
func mulDivRound(a, b, d int64) (q int64, ok bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	var c uint64
	lo, c = bits.Add64(lo, uint64(d/2), 0)
	hi += c
	if hi >= uint64(d) {
		return 0, false
	}
	quo, _ := bits.Div64(hi, lo, uint64(d))
	if quo > 1<<63-1 {
		return 0, false
	}
	return int64(quo), true
}

// Date is a calendar day as yyyymmdd, so that effective-dating compares integers.
type Date int32

// ParseDate reads "2006-01-02" strictly and checks the day exists.
func ParseDate(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, fmt.Errorf("date %q is not yyyy-mm-dd", s)
	}
	y, err1 := strconv.Atoi(s[0:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:10])
	if err1 != nil || err2 != nil || err3 != nil || y < 1900 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, fmt.Errorf("date %q is not a calendar day", s)
	}
	return Date(y*10000 + m*100 + d), nil
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Year is the calendar year, the period of a person's counters.
func (d Date) Year() int { return int(d) / 10000 }

func (d Date) String() string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", int(d)/10000, int(d)/100%100, int(d)%100)
}

// MarshalJSON writes the date as "2006-01-02".
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }
