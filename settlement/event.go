package settlement

import (
	"encoding/json"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// Event types on the outbox (and on Kafka), versioned by EventVersion.
const (
	EventSettled   = "settlement.settled"
	EventCancelled = "settlement.cancelled"
	EventVersion   = 1
)

// SettlementEvent is the payload of a settlement event.
type SettlementEvent struct {
	EventID       string              `json:"event_id"`
	Type          string              `json:"type"`
	Version       int                 `json:"version"`
	SetlID        string              `json:"setl_id"`
	Reverses      string              `json:"reverses,omitempty"`
	MdtrtID       string              `json:"mdtrt_id"`
	PsnNo         string              `json:"psn_no"`
	Institution   string              `json:"fixmedins_code"`
	InsuredRegion string              `json:"insuplc_admdvs"`
	TreatRegion   string              `json:"mdtrtarea_admvs"`
	MedType       string              `json:"med_type"`
	Insutype      string              `json:"insutype"`
	SetlTime      time.Time           `json:"setl_time"`
	Setlinfo      rules.Setlinfo      `json:"setlinfo"`
	Setldetail    []rules.FundPayment `json:"setldetail"`
	LedgerTxn     string              `json:"ledger_txn"`
	Chain         string              `json:"chain"`
	Seq           int64               `json:"seq"`
	// The visit, for supervision rules that look at stays and purchases.
	VisitKind VisitKind   `json:"visit_kind,omitempty"`
	Begntime  *time.Time  `json:"begntime,omitempty"`
	Endtime   *time.Time  `json:"endtime,omitempty"`
	Lines     []EventLine `json:"feedetail,omitempty"`
}

// EventLine is a settled fee line in an event.
type EventLine struct {
	Code   string      `json:"med_list_codg"`
	Cnt    string      `json:"cnt"`
	Amount rules.Money `json:"det_item_fee_sumamt"`
}

func settlementEvent(s *Settlement, kind string, t *LedgerTxn) (*Event, error) {
	typ := EventSettled
	if kind == TxnCancel {
		typ = EventCancelled
	}
	ev := SettlementEvent{EventID: NewID("E"), Type: typ, Version: EventVersion, SetlID: s.SetlID,
		Reverses: s.Reverses, MdtrtID: s.MdtrtID, PsnNo: s.PsnNo, Institution: s.Institution,
		InsuredRegion: s.InsuredRegion, TreatRegion: s.TreatmentRegion, MedType: s.MedType, Insutype: s.Insutype,
		SetlTime: s.SetlTime, Setlinfo: s.Info, Setldetail: s.Detail, LedgerTxn: t.ID, Chain: t.Chain, Seq: t.Seq}
	if v := s.visit; v != nil {
		ev.VisitKind = v.Kind
		b := v.Begin.UTC()
		ev.Begntime = &b
		if !v.End.IsZero() {
			e := v.End.UTC()
			ev.Endtime = &e
		}
	}
	for _, l := range s.lines {
		ev.Lines = append(ev.Lines, EventLine{Code: l.Code, Cnt: l.Cnt, Amount: l.Amount})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &Event{ID: ev.EventID, Type: typ, Key: s.PsnNo, Payload: b}, nil
}
