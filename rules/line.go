package rules

// PriceLine checks and classifies one fee line as uploaded (2204/2301), from
// its decimal texts, against a catalog on day: the line step of docs/pricing.md
// alone, so that the counter learns each line's class before settling.
// Refusals are *Error with CodeInvalidAmount or CodeAmountMismatch.
func PriceLine(catalog *Catalog, day Date, sn, code, cnt, pric, amount string) (LineResult, error) {
	rl := RequestLine{FeedetlSN: Text{S: sn, Set: true}, MedListCodg: code,
		Cnt: Text{S: cnt, Set: true}, Pric: Text{S: pric, Set: true}, DetItemFeeSumamt: Text{S: amount, Set: true}}
	req := Request{Feedetail: []RequestLine{rl}}
	c := req.Claim()
	lr, err := priceLine(catalog, day, &c.Lines[0])
	if err != nil {
		return LineResult{}, err
	}
	return lr, nil
}
