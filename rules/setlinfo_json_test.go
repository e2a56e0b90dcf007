package rules_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/rules"
)

// The JSON of Setlinfo and FundPayment, recorded from their struct tags: the
// bytes must not change (golden answers, settlement events, stored answers
// replayed on a repeated msgid, the hub).
const (
	recordedSetlinfo = `{"medfee_sumamt":"0.01","fulamt_ownpay_amt":"-0.02","overlmt_selfpay":"0.03","preselfpay_amt":"0.04",` +
		`"inscp_scp_amt":"0.05","act_pay_dedc":"0.06","hifp_pay":"0.07","pool_prop_selfpay":"0.875","hifmi_pay":"0.09",` +
		`"hifob_pay":"0.10","maf_pay":"0.11","fund_pay_sumamt":"0.12","psn_part_amt":"0.13","acct_pay":"0.14",` +
		`"psn_cash_pay":"0.15","balc":"-999999.99"}`
	recordedZeroSetlinfo = `{"medfee_sumamt":"0.00","fulamt_ownpay_amt":"0.00","overlmt_selfpay":"0.00","preselfpay_amt":"0.00",` +
		`"inscp_scp_amt":"0.00","act_pay_dedc":"0.00","hifp_pay":"0.00","pool_prop_selfpay":"0.00","hifmi_pay":"0.00",` +
		`"hifob_pay":"0.00","maf_pay":"0.00","fund_pay_sumamt":"0.00","psn_part_amt":"0.00","acct_pay":"0.00",` +
		`"psn_cash_pay":"0.00","balc":"0.00"}`
	// json.Marshal escapes HTML; an encoder told not to does not.
	recordedDetail = `[{"fund_pay_type":"310100","fund_payamt":"123.45","crt_payb_lmt_amt":"-0.05"},` +
		`{"fund_pay_type":"\u003ca\u0026\"b\u2028é\u003e","fund_payamt":"0.00","crt_payb_lmt_amt":"0.00"}]`
	recordedDetailNoEscape = `[{"fund_pay_type":"310100","fund_payamt":"123.45","crt_payb_lmt_amt":"-0.05"},` +
		`{"fund_pay_type":"<a&\"b\u2028é>","fund_payamt":"0.00","crt_payb_lmt_amt":"0.00"}]` + "\n"
	recordedIndented = `{
  "S": {
    "medfee_sumamt": "0.01",
    "fulamt_ownpay_amt": "-0.02",
    "overlmt_selfpay": "0.03",
    "preselfpay_amt": "0.04",
    "inscp_scp_amt": "0.05",
    "act_pay_dedc": "0.06",
    "hifp_pay": "0.07",
    "pool_prop_selfpay": "0.875",
    "hifmi_pay": "0.09",
    "hifob_pay": "0.10",
    "maf_pay": "0.11",
    "fund_pay_sumamt": "0.12",
    "psn_part_amt": "0.13",
    "acct_pay": "0.14",
    "psn_cash_pay": "0.15",
    "balc": "-999999.99"
  },
  "D": [
    {
      "fund_pay_type": "310100",
      "fund_payamt": "123.45",
      "crt_payb_lmt_amt": "-0.05"
    }
  ]
}`
)

var (
	fullSetlinfo = rules.Setlinfo{MedfeeSumamt: 1, FulamtOwnpayAmt: -2, OverlmtSelfpay: 3, PreselfpayAmt: 4, InscpScpAmt: 5,
		ActPayDedc: 6, HifpPay: 7, PoolPropSelfpay: 8750, HifmiPay: 9, HifobPay: 10, MafPay: 11, FundPaySumamt: 12,
		PsnPartAmt: 13, AcctPay: 14, PsnCashPay: 15, Balc: -99999999}
	fullDetail = []rules.FundPayment{{FundPayType: "310100", FundPayamt: 12345, CrtPaybLmt: -5}, {FundPayType: "<a&\"b\u2028é>"}}
)

func TestSetlinfoJSONBytes(t *testing.T) {
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, recordedSetlinfo, marshal(fullSetlinfo))
	require.Equal(t, recordedSetlinfo, marshal(&fullSetlinfo))
	require.Equal(t, recordedZeroSetlinfo, marshal(rules.Setlinfo{}))
	require.Equal(t, recordedDetail, marshal(fullDetail))

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(fullDetail))
	require.Equal(t, recordedDetailNoEscape, buf.String())

	b, err := json.MarshalIndent(struct {
		S rules.Setlinfo
		D []rules.FundPayment
	}{fullSetlinfo, fullDetail[:1]}, "", "  ")
	require.NoError(t, err)
	require.Equal(t, recordedIndented, string(b))
}

func TestSetlinfoJSONRoundTrip(t *testing.T) {
	var s rules.Setlinfo
	require.NoError(t, json.Unmarshal([]byte(recordedSetlinfo), &s))
	require.Equal(t, fullSetlinfo, s)
	var d []rules.FundPayment
	require.NoError(t, json.Unmarshal([]byte(recordedDetail), &d))
	require.Equal(t, fullDetail, d)
}

// Decoding is as lenient, and as strict, as encoding/json's was with tags
// (the outcomes recorded from it).
func TestSetlinfoJSONDecodeLikeTags(t *testing.T) {
	type pair struct {
		S rules.Setlinfo      `json:"s"`
		D []rules.FundPayment `json:"d"`
	}
	cases := []struct {
		in      string
		want    pair
		wantErr string
	}{
		{in: `{"s":{"HIFP_PAY":"1.5","hifp_pay":2,"zz":[1,{"a":null}],"balc":"-0.01"},"d":[{"Fund_Pay_Type":"9","fund_payamt":"1"}]}`,
			want: pair{S: rules.Setlinfo{HifpPay: 200, Balc: -1}, D: []rules.FundPayment{{FundPayType: "9", FundPayamt: 100}}}},
		{in: `{"s":{"hifp_pay":null}}`, wantErr: "not a decimal"},
		{in: `{"s":null,"d":null}`},
		{in: `{"s":{"pool_prop_selfpay":"1.5"}}`, wantErr: "ratio 1.5 outside [0,1]"},
		{in: `{"d":[{"fund_pay_type":5,"fund_payamt":"1"}]}`, want: pair{D: []rules.FundPayment{{FundPayamt: 100}}},
			wantErr: "cannot unmarshal number"},
		{in: `{"d":[{"fund_pay_type":null}]}`, want: pair{D: []rules.FundPayment{{}}}},
		{in: `{"s":"x"}`, wantErr: "cannot unmarshal string"},
		{in: `{"s":{"hifp_pay":"1.234"}}`, wantErr: "too many decimals"},
		{in: `{"s":{"hifp_pay":"12"}}`, want: pair{S: rules.Setlinfo{HifpPay: 1200}}},
	}
	for _, c := range cases {
		var got pair
		err := json.Unmarshal([]byte(c.in), &got)
		if c.wantErr != "" {
			require.ErrorContains(t, err, c.wantErr, c.in)
			if c.want.D == nil {
				continue
			}
		} else {
			require.NoError(t, err, c.in)
		}
		require.Equal(t, c.want, got, c.in)
	}
}
