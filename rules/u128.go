package rules

import "math/bits"

// u128 accumulates products that may pass 64 bits (a year's burden in fen times
// a ratio scaled by 10^4) so that a sum is rounded once, exactly.
type u128 struct{ hi, lo uint64 }

func (u *u128) addMul(a, b uint64) {
	hi, lo := bits.Mul64(a, b)
	var c uint64
	u.lo, c = bits.Add64(u.lo, lo, 0)
	u.hi += hi + c
}

// roundDiv returns ROUND_HALF_UP(u/d) as Money, saturating at MaxMoney: the
// result is then capped by an annual cap far below that anyway.
func (u u128) roundDiv(d uint64) Money {
	lo, c := bits.Add64(u.lo, d/2, 0)
	hi := u.hi + c
	if hi >= d {
		return MaxMoney
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > uint64(MaxMoney) {
		return MaxMoney
	}
	return Money(q)
}
