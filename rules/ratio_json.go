package rules

// UnmarshalJSON accepts a fraction as a decimal string or number ("0.85").
func (r *Ratio) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := ParseRatio(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}
