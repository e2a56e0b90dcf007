package rules

// UnmarshalJSON accepts a fraction as a decimal string or number ("0.85").
func (r *Ratio) UnmarshalJSON(b []byte) error { return unmarshalFixed(r, b, ParseRatio) }
