package httpapi

import (
	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// --- 2206 / 2207 / 2303 / 2304 ---

func acctFlag(path, v string) (bool, error) {
	switch v {
	case "1":
		return true, nil
	case "0", "":
		return false, nil
	}
	return false, refuse("%s %q: want 0 or 1", path, v)
}

func checkAmountText(path string, t fsi.Text) error {
	if !t.Set {
		return refuse("%s is required", path)
	}
	if _, err := rules.ParseMoney(t.S); err != nil {
		return refuse("%s %q is not an amount with at most 2 decimals", path, t.S)
	}
	return nil
}

func settle(commit bool) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in fsi.SettleInput
		d := &in.Data
		if err := decodeRequired(c, &in, need{"input.data.psn_no", &d.PsnNo}, need{"input.data.mdtrt_id", &d.MdtrtID},
			need{"input.data.med_type", &d.MedType}, need{"input.data.insutype", &d.Insutype}); err != nil {
			return nil, err
		}
		if err := checkAmountText("input.data.medfee_sumamt", d.MedfeeSumamt); err != nil {
			return nil, err
		}
		if d.MidSetlFlag == "1" {
			return nil, refuse("input.data.mid_setl_flag 1: mid-stay settlement (中途结算) is not offered; settle at discharge")
		}
		useAcct, err := acctFlag("input.data.acct_used_flag", d.AcctUsedFlag)
		if err != nil {
			return nil, err
		}
		si := settlement.SettleInput{MdtrtID: d.MdtrtID, PsnNo: d.PsnNo, MedType: d.MedType, Insutype: d.Insutype,
			MedfeeSumamt: d.MedfeeSumamt.S, UseAccount: useAcct}
		if commit {
			return c.settled(s.Engine.Settle(c.ctx, c.msg, si))
		}
		return c.settled(s.Engine.PreSettle(c.ctx, c.env.FixmedinsCode, si))
	}
}

// settled answers the call with a settlement (or a preview or a reversal of
// one), or with the engine's refusal.
func (c *call) settled(a settlement.SettleAnswer, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return settleOutput(a, c.env.Msgid), nil
}

// settleOutput is a settlement's answer as the counter reads it.
func settleOutput(a settlement.SettleAnswer, msgid string) fsi.SettleOutput {
	i := a.Info
	clrType := "11"
	switch a.MedType {
	case "21":
		clrType = "21"
	case "14":
		clrType = "14"
	case "41":
		clrType = "41"
	}
	detail := make([]fsi.FundPayment, len(a.Detail))
	for i, p := range a.Detail {
		detail[i] = fsi.FundPayment{FundPayType: p.FundPayType, FundPayamt: fsi.Money(p.FundPayamt), CrtPaybLmt: fsi.Money(p.CrtPaybLmt)}
	}
	setlTime := ""
	if !a.SetlTime.IsZero() {
		setlTime = a.SetlTime.In(rules.CST).Format(timeLayout)
	}
	return fsi.SettleOutput{Setlinfo: fsi.Setlinfo{MdtrtID: a.MdtrtID, SetlID: a.SetlID, PsnNo: a.PsnNo, SetlTime: setlTime,
		MedType: a.MedType, Insutype: a.Insutype, MedfeeSumamt: fsi.Money(i.MedfeeSumamt), FulamtOwnpayAmt: fsi.Money(i.FulamtOwnpayAmt),
		OverlmtSelfpay: fsi.Money(i.OverlmtSelfpay), PreselfpayAmt: fsi.Money(i.PreselfpayAmt), InscpScpAmt: fsi.Money(i.InscpScpAmt),
		ActPayDedc: fsi.Money(i.ActPayDedc), HifpPay: fsi.Money(i.HifpPay), PoolPropSelfpay: fsi.Ratio(i.PoolPropSelfpay),
		HifmiPay: fsi.Money(i.HifmiPay), HifobPay: fsi.Money(i.HifobPay), MafPay: fsi.Money(i.MafPay),
		FundPaySumamt: fsi.Money(i.FundPaySumamt), PsnPartAmt: fsi.Money(i.PsnPartAmt), AcctPay: fsi.Money(i.AcctPay),
		PsnCashPay: fsi.Money(i.PsnCashPay), Balc: fsi.Money(i.Balc), MedinsSetlID: msgid, ClrOptins: a.ClrOptins,
		ClrWay: "1", ClrType: clrType}, Setldetail: detail}
}

// --- 2208 / 2305 / 2103 ---

// cancelsMedTypes is what each cancel transaction may undo.
var cancelsMedTypes = map[string][]string{"2208": {"11", "14"}, "2305": {"21"}, "2103": {"41"}}

func cancelSettlement(s *Server, c *call) (any, error) {
	var in fsi.CancelInput
	d := &in.Data
	if err := decodeRequired(c, &in, need{"input.data.setl_id", &d.SetlID},
		need{"input.data.psn_no", &d.PsnNo}); err != nil {
		return nil, err
	}
	if c.env.Infno != "2103" {
		if err := required("input.data.mdtrt_id", d.MdtrtID); err != nil {
			return nil, err
		}
	}
	return c.settled(s.Engine.Cancel(c.ctx, c.msg, settlement.CancelInput{SetlID: d.SetlID, MdtrtID: d.MdtrtID, PsnNo: d.PsnNo,
		MedTypes: cancelsMedTypes[c.env.Infno]}))
}

// --- 2101 / 2102 ---

func pharmacy(commit bool) func(s *Server, c *call) (any, error) {
	return func(s *Server, c *call) (any, error) {
		var in fsi.PharmacyInput
		d := &in.Data
		if err := decodeRequired(c, &in, need{"input.data.psn_no", &d.PsnNo},
			need{"input.data.insutype", &d.Insutype}); err != nil {
			return nil, err
		}
		if d.MedType != "" && d.MedType != "41" {
			return nil, refuse("input.data.med_type %q: a pharmacy sale is med_type 41", d.MedType)
		}
		if err := checkAmountText("input.data.medfee_sumamt", d.MedfeeSumamt); err != nil {
			return nil, err
		}
		useAcct, err := acctFlag("input.data.acct_used_flag", d.AcctUsedFlag)
		if err != nil {
			return nil, err
		}
		lines, err := lineInputs(in.Feedetail, "", "")
		if err != nil {
			return nil, err
		}
		pi := settlement.PharmacyInput{PsnNo: d.PsnNo, Insutype: d.Insutype, MedfeeSumamt: d.MedfeeSumamt.S,
			UseAccount: useAcct, Lines: lines}
		if commit {
			return c.settled(s.Engine.PharmacySettle(c.ctx, c.msg, pi))
		}
		return c.settled(s.Engine.PharmacyPreSettle(c.ctx, c.env.FixmedinsCode, pi))
	}
}

// --- 2601 ---

func reverse(s *Server, c *call) (any, error) {
	var in fsi.ReverseInput
	d := &in.Data
	if err := decodeRequired(c, &in, need{"input.data.psn_no", &d.PsnNo}, need{"input.data.omsgid", &d.Omsgid},
		need{"input.data.oinfno", &d.Oinfno}); err != nil {
		return nil, err
	}
	if err := checkMsgid(d.Omsgid, c.env.FixmedinsCode); err != nil {
		return nil, refuse("input.data.omsgid: %v", err)
	}
	a, err := s.Engine.Reverse(c.ctx, c.msg, d.Omsgid, d.Oinfno, d.PsnNo)
	if err != nil {
		return nil, err
	}
	out := fsi.ReverseOutput{Data: fsi.ReverseData{Omsgid: a.Omsgid, Oinfno: d.Oinfno, Rslt: a.Outcome}}
	if a.Setl != nil {
		so := settleOutput(*a.Setl, c.env.Msgid)
		out.ReversedSettlement = &fsi.ReversedSettlement{Setlinfo: so.Setlinfo, Setldetail: so.Setldetail}
	}
	return out, nil
}
