package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
)

// The JSON of Setlinfo and FundPayment: the keys the platform has always
// written for them, in the same order, from one table each rather than from
// struct tags. The national contract (its setlinfo has many more fields) is
// written once, in adapters/fsi; these are the engine's values, whose JSON is
// what `medsettle price` prints, what a settlement event carries, what the
// messages table keeps for a repeated msgid and what the hub protocol sends.
// Decoding is encoding/json's own, into a struct type made from the table
// with reflect.StructOf, so it is exactly as lenient as it was with tags:
// unknown keys are ignored, absent ones leave the field as it is, a key
// matches case-insensitively when no key matches exactly, the last of
// repeated keys wins, and amounts are read by Money's and Ratio's own
// UnmarshalJSON.

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

var (
	setlinfoShape    = jsonShape(setlinfoJSON)
	fundPaymentShape = jsonShape(fundPaymentJSON)
)

// MarshalJSON writes s as {"medfee_sumamt":"12.30",...}, amounts as strings.
func (s Setlinfo) MarshalJSON() ([]byte, error) { return marshalFields(&s, setlinfoJSON) }

// UnmarshalJSON reads what MarshalJSON writes (see the top of this file).
func (s *Setlinfo) UnmarshalJSON(b []byte) error {
	return unmarshalFields(s, b, setlinfoJSON, setlinfoShape)
}

// MarshalJSON writes p as {"fund_pay_type":"310100","fund_payamt":"8.40","crt_payb_lmt_amt":"0.00"}.
func (p FundPayment) MarshalJSON() ([]byte, error) { return marshalFields(&p, fundPaymentJSON) }

// UnmarshalJSON reads what MarshalJSON writes (see the top of this file).
func (p *FundPayment) UnmarshalJSON(b []byte) error {
	return unmarshalFields(p, b, fundPaymentJSON, fundPaymentShape)
}

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
			b = append(p.appendTo(append(b, '"')), '"')
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

// unmarshalFields decodes b with encoding/json itself, into a struct type
// made from the table (jsonShape), so that it reads exactly as the tagged
// struct did; v's current values go in first and come back out, error or
// not, as encoding/json leaves a struct it decodes into.
func unmarshalFields[T any](v *T, b []byte, fields []jsonField[T], shape reflect.Type) error {
	sh := reflect.New(shape).Elem()
	for i, f := range fields {
		switch p := f.at(v).(type) {
		case *Money:
			sh.Field(i).SetInt(int64(*p))
		case *Ratio:
			sh.Field(i).SetInt(int64(*p))
		case *string:
			sh.Field(i).SetString(*p)
		}
	}
	err := json.Unmarshal(b, sh.Addr().Interface())
	for i, f := range fields {
		switch p := f.at(v).(type) {
		case *Money:
			*p = Money(sh.Field(i).Int())
		case *Ratio:
			*p = Ratio(sh.Field(i).Int())
		case *string:
			*p = sh.Field(i).String()
		}
	}
	return err
}

// jsonShape is a struct type with one field a table entry, tagged with its
// key: the struct the tags used to be on, made once from the table.
func jsonShape[T any](fields []jsonField[T]) reflect.Type {
	var zero T
	sf := make([]reflect.StructField, len(fields))
	for i, f := range fields {
		sf[i] = reflect.StructField{Name: "F" + strconv.Itoa(i), Type: reflect.TypeOf(f.at(&zero)).Elem(),
			Tag: reflect.StructTag(`json:"` + f.key + `"`)}
	}
	return reflect.StructOf(sf)
}
