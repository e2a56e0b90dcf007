package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
)

// The JSON of Setlinfo and FundPayment: the keys the platform has always
// written for them, in the same order, from one table each rather than from
// struct tags. The national contract (its setlinfo has many more fields) is
// written once, in adapters/fsi; these are the engine's values, whose JSON is
// what `medsettle price` prints, what a settlement event carries, what the
// messages table keeps for a repeated msgid and what the hub protocol sends.
// Decoding is as lenient as encoding/json's was: unknown keys are ignored,
// absent ones leave the field as it is, a key matches case-insensitively
// when no key matches exactly, the last of repeated keys wins, and amounts
// are read by Money's and Ratio's own UnmarshalJSON.

// jsonField is one key of an object and the field that holds its value: a
// *Money, *Ratio or *string inside the value.
type jsonField[T any] struct {
	key string
	at  func(*T) any
}

var setlinfoJSON = []jsonField[Setlinfo]{
	{"medfee_sumamt", func(s *Setlinfo) any { return &s.MedfeeSumamt }},
	{"fulamt_ownpay_amt", func(s *Setlinfo) any { return &s.FulamtOwnpayAmt }},
	{"overlmt_selfpay", func(s *Setlinfo) any { return &s.OverlmtSelfpay }},
	{"preselfpay_amt", func(s *Setlinfo) any { return &s.PreselfpayAmt }},
	{"inscp_scp_amt", func(s *Setlinfo) any { return &s.InscpScpAmt }},
	{"act_pay_dedc", func(s *Setlinfo) any { return &s.ActPayDedc }},
	{"hifp_pay", func(s *Setlinfo) any { return &s.HifpPay }},
	{"pool_prop_selfpay", func(s *Setlinfo) any { return &s.PoolPropSelfpay }},
	{"hifmi_pay", func(s *Setlinfo) any { return &s.HifmiPay }},
	{"hifob_pay", func(s *Setlinfo) any { return &s.HifobPay }},
	{"maf_pay", func(s *Setlinfo) any { return &s.MafPay }},
	{"fund_pay_sumamt", func(s *Setlinfo) any { return &s.FundPaySumamt }},
	{"psn_part_amt", func(s *Setlinfo) any { return &s.PsnPartAmt }},
	{"acct_pay", func(s *Setlinfo) any { return &s.AcctPay }},
	{"psn_cash_pay", func(s *Setlinfo) any { return &s.PsnCashPay }},
	{"balc", func(s *Setlinfo) any { return &s.Balc }},
}

var fundPaymentJSON = []jsonField[FundPayment]{
	{"fund_pay_type", func(p *FundPayment) any { return &p.FundPayType }},
	{"fund_payamt", func(p *FundPayment) any { return &p.FundPayamt }},
	{"crt_payb_lmt_amt", func(p *FundPayment) any { return &p.CrtPaybLmt }},
}

// MarshalJSON writes s as {"medfee_sumamt":"12.30",...}, amounts as strings.
func (s Setlinfo) MarshalJSON() ([]byte, error) { return marshalFields(&s, setlinfoJSON) }

// UnmarshalJSON reads what MarshalJSON writes (see the top of this file).
func (s *Setlinfo) UnmarshalJSON(b []byte) error { return unmarshalFields(s, b, setlinfoJSON) }

// MarshalJSON writes p as {"fund_pay_type":"310100","fund_payamt":"8.40","crt_payb_lmt_amt":"0.00"}.
func (p FundPayment) MarshalJSON() ([]byte, error) { return marshalFields(&p, fundPaymentJSON) }

// UnmarshalJSON reads what MarshalJSON writes (see the top of this file).
func (p *FundPayment) UnmarshalJSON(b []byte) error { return unmarshalFields(p, b, fundPaymentJSON) }

func marshalFields[T any](v *T, fields []jsonField[T]) ([]byte, error) {
	b := make([]byte, 0, 24*len(fields))
	for i, f := range fields {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), f.key...), `":`...)
		switch p := f.at(v).(type) {
		case *Money:
			b = append(append(append(b, '"'), p.String()...), '"')
		case *Ratio:
			b = append(append(append(b, '"'), p.String()...), '"')
		case *string:
			var err error
			if b, err = appendString(b, *p); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("rules: a JSON field table names a field of no known type")
		}
	}
	return append(b, '}'), nil
}

// appendString writes s as a JSON string without escaping HTML: encoding/json
// re-reads a MarshalJSON's output and escapes <, > and & itself when (and
// only when) its encoder does, so the bytes are those a string field had.
func appendString(b []byte, s string) ([]byte, error) {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\'
	}
	if plain {
		return append(append(append(b, '"'), s...), '"'), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

func unmarshalFields[T any](v *T, b []byte, fields []jsonField[T]) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null leaves the value as it is, as it did a struct
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &json.UnmarshalTypeError{Value: jsonKind(tok), Type: reflect.TypeFor[T]()}
	}
	var typeErr error // kept, and decoding goes on, as encoding/json does
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		f := lookup(fields, tok.(string))
		if f == nil {
			continue
		}
		err = json.Unmarshal(raw, f.at(v))
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			if typeErr == nil {
				typeErr = err
			}
		case err != nil:
			return err
		}
	}
	return typeErr
}

// lookup finds key's field, an exact match first, else one equal but for case.
func lookup[T any](fields []jsonField[T], key string) *jsonField[T] {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	for i := range fields {
		if bytes.EqualFold([]byte(fields[i].key), []byte(key)) {
			return &fields[i]
		}
	}
	return nil
}

func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Delim:
		return "array"
	}
	return "number"
}
