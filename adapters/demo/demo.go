// Package demo drives a scripted counter day through a running platform with
// the integrators' client, printing each settlement: what `make demo` shows.
package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
	fsiclient "github.com/medsettle/medsettle/adapters/fsi/client"
)

// Keys are the API keys of the institutions the day uses (fixmedins_code -> key).
type Keys map[string]string

// Day is one scripted day at the counters.
type Day struct {
	URL  string
	Keys Keys
	Out  io.Writer

	clients map[string]*fsiclient.Client
	books   map[string]*fsiclient.Totals // per institution: what its HIS recorded today
}

// institutions are the counters of the day.
var institutions = []string{"H15010000011", "H15010000032", "P15010000201"}

// open makes the client of every institution of the day.
func (d *Day) open() error {
	d.clients = map[string]*fsiclient.Client{}
	for _, inst := range institutions {
		c, err := fsiclient.New(d.URL, d.Keys[inst], inst, fsiclient.WithTimeout(10*time.Second))
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		d.clients[inst] = c
	}
	return nil
}

func (d *Day) client(inst string) *fsiclient.Client { return d.clients[inst] }

// print reports a settlement of c's institution and books it for 3201.
func (d *Day) print(what string, c *fsiclient.Client, s *fsiclient.Settlement) {
	inst, i := c.Institution(), s.Setlinfo
	fmt.Fprintf(d.Out, "%-28s %-13s %-21s %-6s %10s %10s %9s %10s  insured %s  setl_id %s\n",
		what, inst, i.PsnNo, i.MedType, i.MedfeeSumamt, i.FundPaySumamt, i.AcctPay, i.PsnCashPay, i.ClrOptins, i.SetlID)
	if d.books == nil {
		d.books = map[string]*fsiclient.Totals{}
	}
	b := d.books[inst]
	if b == nil {
		b = &fsiclient.Totals{}
		d.books[inst] = b
	}
	// A reversal takes its settlement out of the standing count.
	if i.MedfeeSumamt < 0 {
		b.Count--
	} else {
		b.Count++
	}
	b.MedfeeSumamt += i.MedfeeSumamt
	b.FundPaySumamt += i.FundPaySumamt
	b.AcctPay += i.AcctPay
}

// Run plays the day. It stops at the first unexpected answer.
func (d *Day) Run(ctx context.Context) error {
	if err := d.open(); err != nil {
		return err
	}
	fmt.Fprintf(d.Out, "%-28s %-13s %-21s %-6s %10s %10s %9s %10s\n", "", "institution", "person", "med", "medfee", "funds", "account", "cash")
	hosp := d.client("H15010000011") // 内蒙古自治区人民医院, Hohhot, level 3

	// 1. An employee of Hohhot at the outpatient counter, by insurance card.
	p, err := hosp.Person(ctx, "03", "157213070278")
	if err != nil {
		return fmt.Errorf("1101: %w", err)
	}
	fmt.Fprintf(d.Out, "1101 %s %s insured in %s (%s), account %s\n", p.PsnNo, p.Name, p.InsuplcAdmdvs, p.Insutype, p.Balc)
	s1, err := d.outpatient(ctx, hosp, "outpatient (2207)", p.PsnNo, p.Insutype, []fsiclient.Fee{
		{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "25.00"},
		{SN: "2", Code: "XJ01DDA062B002010100345", Cnt: "6", Pric: "35.5"},
		{SN: "3", Code: "002302000010000", Cnt: "1", Pric: "420.00"},
	}, true)
	if err != nil {
		return err
	}

	// 2. The patient changes their mind at the counter: cancel (2208).
	c1, err := hosp.Cancel(ctx, s1)
	if err != nil {
		return fmt.Errorf("2208: %w", err)
	}
	d.print("  cancelled (2208)", hosp, c1)

	// 3. A resident of Wuhan (Hubei) treated in Hohhot: settled through the national hub.
	if _, err := d.outpatient(ctx, hosp, "cross-province (2207, hub)", "42010000000000000044", "390", []fsiclient.Fee{
		{SN: "1", Code: "001101000010000", Cnt: "1", Pric: "25.00"},
		{SN: "2", Code: "002303000010000", Cnt: "1", Pric: "680.00"},
	}, false); err != nil {
		return err
	}

	// 4. An inpatient stay: admission, three daily uploads, discharge, settlement.
	ward := d.client("H15010000032") // 呼和浩特市第一医院, level 2
	v, err := ward.Admit(ctx, fsiclient.Registration{PsnNo: "15010000000000000011", Insutype: "390", CertType: "02",
		CertNo: "150100200010035317", IptOtpNo: "ZY" + time.Now().Format("150405"), DiseCodg: "J18.900", DiseName: "肺炎"})
	if err != nil {
		return fmt.Errorf("2401: %w", err)
	}
	for day := 1; day <= 3; day++ {
		if _, err := ward.UploadFees(ctx, v, fmt.Sprintf("D%d", day), []fsiclient.Fee{
			{SN: fmt.Sprintf("%d-1", day), Code: "001102000010000", Cnt: "1", Pric: "80.00"},
			{SN: fmt.Sprintf("%d-2", day), Code: "XJ01DDA062B002010100345", Cnt: "4", Pric: "35.5"},
			{SN: fmt.Sprintf("%d-3", day), Code: "C0101020000000009012", Cnt: "6", Pric: "6.5"},
		}); err != nil {
			return fmt.Errorf("2301 day %d: %w", day, err)
		}
	}
	if err := ward.Discharge(ctx, v, time.Now(), "J18.900", "肺炎"); err != nil {
		return fmt.Errorf("2402: %w", err)
	}
	total := fsi.Money(3 * (8000 + 14200 + 3900))
	s4, err := ward.Settle(ctx, v, fsiclient.SettleParams{Insutype: "390", MedfeeSumamt: total})
	if err != nil {
		return fmt.Errorf("2304: %w", err)
	}
	d.print("inpatient (2304)", ward, s4)

	// 5. A pharmacy sale, paid partly from the personal account.
	shop := d.client("P15010000201")
	s5, err := shop.PharmacySettle(ctx, fsiclient.Sale{PsnNo: "15010000000000000004", Insutype: "310", UseAccount: true,
		Fees: []fsiclient.Fee{{SN: "1", Code: "XA10BAG046A001010100111", Cnt: "2", Pric: "28.60"},
			{SN: "2", Code: "ZA04BAA0123010101010", Cnt: "3", Pric: "18.75"}}})
	if err != nil {
		return fmt.Errorf("2102: %w", err)
	}
	d.print("pharmacy (2102)", shop, s5)

	// 6. The till lost the answer of that sale: 冲正 (2601) undoes it.
	r, err := shop.Reverse(ctx, "15010000000000000004", s5.Msgid, "2102")
	if err != nil {
		return fmt.Errorf("2601: %w", err)
	}
	if r.Setl != nil {
		d.print("  reversed (2601: "+r.Outcome+")", shop, r.Setl)
	}

	// 7. End of day: the hospital reconciles its totals (3201).
	for _, inst := range institutions {
		b := d.books[inst]
		today := time.Now()
		// Cancelled settlements and their reversals drop out of the standing totals.
		res, err := d.client(inst).ReconcileTotals(ctx, fsiclient.Totals{From: today, To: today,
			MedfeeSumamt: b.MedfeeSumamt, FundPaySumamt: b.FundPaySumamt, AcctPay: b.AcctPay, Count: b.Count})
		if err != nil {
			return fmt.Errorf("3201 %s: %w", inst, err)
		}
		fmt.Fprintf(d.Out, "3201 %s: %s (%s)\n", inst, map[bool]string{true: "totals match", false: "MISMATCH"}[res.Match()], res.StmtRsltDscr)
	}
	return nil
}

// outpatient runs an outpatient visit from 2201 to 2207 and prints its
// settlement as what.
func (d *Day) outpatient(ctx context.Context, c *fsiclient.Client, what, psn, insutype string, fees []fsiclient.Fee,
	acct bool) (*fsiclient.Settlement, error) {
	v, err := c.RegisterOutpatient(ctx, fsiclient.Registration{PsnNo: psn, Insutype: insutype, CertType: "01", CertNo: psn,
		IptOtpNo: "MZ" + time.Now().Format("150405.000"), MedType: "11"})
	if err != nil {
		return nil, fmt.Errorf("2201: %w", err)
	}
	if _, err := c.UploadFees(ctx, v, "B1", fees); err != nil {
		return nil, fmt.Errorf("2204: %w", err)
	}
	total, err := fsiclient.Total(fees)
	if err != nil {
		return nil, err
	}
	p := fsiclient.SettleParams{Insutype: insutype, MedfeeSumamt: total, UseAccount: acct}
	if _, err := c.PreSettle(ctx, v, p); err != nil {
		return nil, fmt.Errorf("2206: %w", err)
	}
	s, err := c.Settle(ctx, v, p)
	if err != nil {
		return nil, fmt.Errorf("2207: %w", err)
	}
	d.print(what, c, s)
	return s, nil
}
