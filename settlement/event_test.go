package settlement

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// BenchmarkSettlementEventJSON is the encoding of one settlement's outbox
// event, part of every settlement's CPU in the engine's process:
// go test -run '^$' -bench SettlementEventJSON ./settlement/
func BenchmarkSettlementEventJSON(b *testing.B) {
	ev := SettlementEvent{EventID: NewID("E"), Type: EventSettled, Version: EventVersion, SetlID: NewID("S"),
		MdtrtID: NewID("M"), PsnNo: "15010019700101ZZ01", Institution: "H15010000001", InsuredRegion: "150100",
		TreatRegion: "150100", MedType: "11", Insutype: "310", SetlTime: time.Now(),
		Setlinfo: rules.Setlinfo{MedfeeSumamt: 12345, InscpScpAmt: 12000, HifpPay: 8400, FundPaySumamt: 8400,
			PsnPartAmt: 3945, PsnCashPay: 3945},
		Setldetail: []rules.FundPayment{{FundPayType: "310100", FundPayamt: 8400}},
		Lines:      []EventLine{{Code: "X1", Cnt: "1", Amount: 10000}, {Code: "X2", Cnt: "2", Amount: 2345}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&ev); err != nil {
			b.Fatal(err)
		}
	}
}
