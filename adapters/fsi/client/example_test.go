package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/adapters/fsi/client"
)

// platform answers like medsettle: 2207 with a settlement, 2601 with a
// reversal, and any other infno with outcome unknown.
func platform() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env fsi.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ans := fsi.Answer{InfRefmsgid: "20260315100000abcd1234"}
		var out any
		switch env.Infno {
		case "2207":
			out = fsi.SettleOutput{Setlinfo: fsi.Setlinfo{MdtrtID: "M1", SetlID: "S1", PsnNo: "P1", MedType: "11",
				MedfeeSumamt: 12540, FundPaySumamt: 8778, PsnCashPay: 3762, ClrType: "11"},
				Setldetail: []fsi.FundPayment{{FundPayType: fsi.FundPayEmployeePool, FundPayamt: 8778, CrtPaybLmt: 1500000}}}
		case "2601":
			var in fsi.ReverseInput
			_ = json.Unmarshal(env.Input, &in)
			out = fsi.ReverseOutput{Data: fsi.ReverseData{Oinfno: in.Data.Oinfno, Omsgid: in.Data.Omsgid, Rslt: fsi.Voided}}
		default:
			ans.Infcode, ans.ErrCode = fsi.InfcodeRefused, fsi.ErrCodeOutcomeUnknown
			ans.ErrMsg = "internal error (msgid " + env.Msgid + "); the outcome is unknown: reverse it with 2601"
		}
		if out != nil {
			ans.Output, _ = json.Marshal(out)
		}
		_ = json.NewEncoder(w).Encode(ans)
	}))
}

// A counter settles a visit with 2207.
func ExampleClient_Settle() {
	srv := platform()
	defer srv.Close()
	c, err := client.New(srv.URL, "the institution's API key", "H15010000011")
	if err != nil {
		log.Fatal(err)
	}
	v := client.Visit{MdtrtID: "M1", PsnNo: "P1"}
	s, err := c.Settle(context.Background(), v, client.SettleParams{Insutype: "310", MedfeeSumamt: fsi.Yuan(125) + 40})
	if err != nil {
		log.Fatal(err)
	}
	i := s.Setlinfo
	fmt.Println(i.SetlID, i.MedfeeSumamt, "funds", i.FundPaySumamt, "cash", i.PsnCashPay)
	for _, d := range s.Setldetail {
		fmt.Println(d.FundPayType, d.FundPayamt)
	}
	// Output:
	// S1 125.40 funds 87.78 cash 37.62
	// 310100 87.78
}

// When the platform cannot tell whether a message took effect, the answer
// carries fsi.ErrCodeOutcomeUnknown and CallSettle reverses the message with
// 2601 before returning.
func ExampleClient_CallSettle_outcomeUnknown() {
	srv := platform()
	defer srv.Close()
	c, err := client.New(srv.URL, "key", "H15010000011")
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.CallSettle(context.Background(), "2204", "P1", fsi.FeeInput{})
	var uo *client.UnknownOutcome
	if errors.As(err, &uo) {
		fmt.Println("outcome unknown; reversed:", errors.Is(err, client.ErrReversed), uo.Reversal.Outcome)
	}
	// Output:
	// outcome unknown; reversed: true voided
}

// Two counter processes of one institution take disjoint msgid ranges, so
// their msgids never meet.
func ExampleWithTerminal() {
	a, _ := client.New("https://platform.example", "key", "H15010000011", client.WithTerminal(0, 2))
	b, _ := client.New("https://platform.example", "key", "H15010000011", client.WithTerminal(1, 2))
	fmt.Println(a.Msgid()[26:] < "5000", b.Msgid()[26:] >= "5000")
	// Output:
	// true true
}

// Amounts are exact: fen inside, two decimals on the wire.
func ExampleTotal() {
	sum, err := client.Total([]client.Fee{{SN: "1", Cnt: "3", Pric: "0.333"}, {SN: "2", Cnt: "1", Pric: "10", Amount: "10.00"}})
	fmt.Println(sum, err)
	// Output:
	// 11.00 <nil>
}
