package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/shopspring/decimal"
)

// Text is a JSON value given as a string or a bare number, kept as written so
// that a decimal's form (how many places) can be judged and no float ever
// touches it.
type Text struct {
	S   string
	Set bool // present in the input (null counts as absent)
}

// UnmarshalJSON accepts "12.30", 12.30, or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*t = Text{}
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text{S: s, Set: true}
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*t = Text{S: string(b), Set: true}
		return nil
	}
	return fmt.Errorf("want a string or number, got %s", b)
}

// Flag is a boolean that integrators send as true/false, "1"/"0" or 1/0.
type Flag bool

// UnmarshalJSON accepts true, false, "1", "0", "true", "false", 1, 0 and null.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true", `"1"`, `"true"`, "1":
		*f = true
	case "false", `"0"`, `"false"`, "0", "null", `""`:
		*f = false
	default:
		return fmt.Errorf("want true or false, got %s", b)
	}
	return nil
}

// Request is the offline pricing request of docs/pricing.md (`medsettle price`).
type Request struct {
	InsuplcAdmdvs  string        `json:"insuplc_admdvs"`
	MdtrtareaAdmvs string        `json:"mdtrtarea_admvs"`
	FixmedinsCode  string        `json:"fixmedins_code"`
	MedType        string        `json:"med_type"`
	SetlDate       string        `json:"setl_date"`
	Insutype       string        `json:"insutype"`
	Retired        Flag          `json:"retired"`
	Registered     Flag          `json:"registered"`
	Assistance     string        `json:"assistance"`
	AcctUsedFlag   string        `json:"acct_used_flag"`
	State          RequestState  `json:"state"`
	Feedetail      []RequestLine `json:"feedetail"`
}

// RequestState is the person's counters as sent; absent ones are 0.
type RequestState struct {
	DedcUsedOutpatient Text `json:"dedc_used_outpatient"`
	DedcUsedChronic    Text `json:"dedc_used_chronic"`
	FundPaidOutpatient Text `json:"fund_paid_outpatient"`
	FundPaidInpatient  Text `json:"fund_paid_inpatient"`
	BurdenYTD          Text `json:"burden_ytd"`
	SuppPaidYTD        Text `json:"supp_paid_ytd"`
	MafPaidYTD         Text `json:"maf_paid_ytd"`
	AcctBalc           Text `json:"acct_balc"`
	Admissions         Text `json:"admissions"`
}

// RequestLine is one fee line as sent.
type RequestLine struct {
	FeedetlSN        Text   `json:"feedetl_sn"`
	MedListCodg      string `json:"med_list_codg"`
	Cnt              Text   `json:"cnt"`
	Pric             Text   `json:"pric"`
	DetItemFeeSumamt Text   `json:"det_item_fee_sumamt"`
}

// maxRequestBytes bounds what DecodeRequest reads: the national interface's
// input limit is 40,000 characters, and a claim is far below a megabyte.
const maxRequestBytes = 1 << 20

// DecodeRequest reads one JSON request. Only syntax is judged here (an
// *Error with CodeInvalidRequest); rule checks happen in Price, in order.
func DecodeRequest(r io.Reader) (*Request, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxRequestBytes+1))
	var req Request
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, refuse(CodeInvalidRequest, "field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, refuse(CodeInvalidRequest, "malformed JSON: %v", err)
	}
	if dec.InputOffset() > maxRequestBytes {
		return nil, refuse(CodeInvalidRequest, "request larger than %d bytes", maxRequestBytes)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, refuse(CodeInvalidRequest, "trailing data after the request object")
	}
	return &req, nil
}

// Claim turns a wire request into a claim. It never fails: a problem in a
// field is carried in the claim and reported by Price at the point docs/pricing.md
// checks that field, so that a request with several faults always gets the
// refusal of the first check it fails.
func (req *Request) Claim() *Claim {
	c := &Claim{
		InsuredRegion:   req.InsuplcAdmdvs,
		TreatmentRegion: req.MdtrtareaAdmvs,
		Institution:     req.FixmedinsCode,
		MedType:         req.MedType,
		Insutype:        req.Insutype,
		Retired:         bool(req.Retired),
		Registered:      bool(req.Registered),
		Assistance:      req.Assistance,
		UseAccount:      req.AcctUsedFlag == "1",
		Lines:           make([]Line, len(req.Feedetail)),
	}
	day, err := ParseDate(req.SetlDate)
	if err != nil {
		c.headErr = refuse(CodeInvalidRequest, "setl_date: %v", err)
	}
	c.SetlDate = day
	c.stateErr = req.State.into(&c.State)
	for i := range req.Feedetail {
		rl := &req.Feedetail[i]
		ln := &c.Lines[i]
		ln.SN, ln.Code = rl.FeedetlSN.S, rl.MedListCodg
		var e1, e2, e3 error
		ln.Cnt, e1 = wireDecimal(rl.Cnt, 4)
		ln.Pric, e2 = wireDecimal(rl.Pric, 4)
		ln.Amount, e3 = wireDecimal(rl.DetItemFeeSumamt, 2)
		switch {
		case e1 != nil:
			ln.parseErr = refuse(CodeInvalidAmount, "feedetail[%s].cnt %q: %v (a decimal with at most 4 decimals)", ln.SN, rl.Cnt.S, e1)
		case e2 != nil:
			ln.parseErr = refuse(CodeInvalidAmount, "feedetail[%s].pric %q: %v (a decimal with at most 4 decimals)", ln.SN, rl.Pric.S, e2)
		case e3 != nil:
			ln.parseErr = refuse(CodeInvalidAmount, "feedetail[%s].det_item_fee_sumamt %q: %v (a decimal with at most 2 decimals)", ln.SN, rl.DetItemFeeSumamt.S, e3)
		}
	}
	return c
}

var errMissing = errors.New("missing")

// wireDecimal checks the text form strictly, then builds the decimal.
func wireDecimal(t Text, places int) (decimal.Decimal, error) {
	if !t.Set {
		return decimal.Decimal{}, errMissing
	}
	if _, err := parseFixed(t.S, places); err != nil {
		return decimal.Decimal{}, err
	}
	return decimal.NewFromString(t.S)
}

func (rs *RequestState) into(c *Counters) *Error {
	for _, f := range [...]struct {
		name string
		t    Text
		dst  *Money
	}{
		{"dedc_used_outpatient", rs.DedcUsedOutpatient, &c.DedcUsedOutpatient},
		{"dedc_used_chronic", rs.DedcUsedChronic, &c.DedcUsedChronic},
		{"fund_paid_outpatient", rs.FundPaidOutpatient, &c.FundPaidOutpatient},
		{"fund_paid_inpatient", rs.FundPaidInpatient, &c.FundPaidInpatient},
		{"burden_ytd", rs.BurdenYTD, &c.BurdenYTD},
		{"supp_paid_ytd", rs.SuppPaidYTD, &c.SuppPaidYTD},
		{"maf_paid_ytd", rs.MafPaidYTD, &c.MafPaidYTD},
		{"acct_balc", rs.AcctBalc, &c.AcctBalc},
	} {
		if !f.t.Set {
			continue
		}
		m, err := ParseMoney(f.t.S)
		if err != nil {
			return refuse(CodeInvalidAmount, "state.%s %q: %v (a decimal with at most 2 decimals)", f.name, f.t.S, err)
		}
		*f.dst = m
	}
	if rs.Admissions.Set {
		n, err := parseFixed(rs.Admissions.S, 0)
		if err != nil || n < 0 || n >= 1<<20 {
			return refuse(CodeInvalidAmount, "state.admissions %q is not a non-negative integer", rs.Admissions.S)
		}
		c.Admissions = int(n)
	}
	return nil
}

// Answer is what `medsettle price` prints for a priced claim: docs/pricing.md's
// offline format (setldetail is left to the counter interface).
type Answer struct {
	Setlinfo Setlinfo     `json:"setlinfo"`
	Lines    []LineResult `json:"feedetail"`
	After    Counters     `json:"state_after"`
}

// ErrorAnswer is what `medsettle price` prints for a refusal.
type ErrorAnswer struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// NewErrorAnswer wraps a refusal; any other error is reported as internal
// without its text, which belongs in the log, not in an answer.
func NewErrorAnswer(err error) ErrorAnswer {
	var a ErrorAnswer
	var e *Error
	if errors.As(err, &e) {
		a.Error.Code, a.Error.Message = e.Code, e.Message
	} else {
		a.Error.Code, a.Error.Message = "internal", "internal error"
	}
	return a
}
