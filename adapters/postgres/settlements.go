package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Settlements.

const settlementCols = `setl_id, mdtrt_id, psn_no, fixmedins_code, insuplc_admdvs, mdtrtarea_admvs, med_type, insutype,
	setl_time, year, medfee_sumamt::TEXT, fulamt_ownpay_amt::TEXT, overlmt_selfpay::TEXT, preselfpay_amt::TEXT,
	inscp_scp_amt::TEXT, act_pay_dedc::TEXT, hifp_pay::TEXT, pool_prop_selfpay::TEXT, hifmi_pay::TEXT, hifob_pay::TEXT,
	maf_pay::TEXT, fund_pay_sumamt::TEXT, psn_part_amt::TEXT, acct_pay::TEXT, psn_cash_pay::TEXT, balc::TEXT,
	setldetail, d_dedc_outpatient::TEXT, d_dedc_chronic::TEXT, d_fund_outpatient::TEXT, d_fund_inpatient::TEXT,
	d_burden::TEXT, d_supp::TEXT, d_maf::TEXT, d_acct::TEXT, d_admissions, status, reverses, msgid, ledger_txn_id, role`

// ScanSettlement reads one row selected with settlementCols.
func scanSettlement(row pgx.Row) (*settlement.Settlement, error) {
	var s settlement.Settlement
	var m [25]string
	var status, role string
	err := row.Scan(&s.SetlID, &s.MdtrtID, &s.PsnNo, &s.Institution, &s.InsuredRegion, &s.TreatmentRegion,
		&s.MedType, &s.Insutype, &s.SetlTime, &s.Year,
		&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8], &m[9], &m[10], &m[11], &m[12], &m[13], &m[14], &m[15],
		&m[16], &m[17], &m[18], &m[19], &m[20], &m[21], &m[22], &m[23], &m[24],
		&s.Delta.Admissions, &status, &s.Reverses, &s.Msgid, &s.LedgerTxnID, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading settlement: %w", err)
	}
	i, d := &s.Info, &s.Delta
	if err := scanMoney([]*rules.Money{&i.MedfeeSumamt, &i.FulamtOwnpayAmt, &i.OverlmtSelfpay, &i.PreselfpayAmt,
		&i.InscpScpAmt, &i.ActPayDedc, &i.HifpPay}, m[0:7]); err != nil {
		return nil, err
	}
	r, err := ratioText(m[7])
	if err != nil {
		return nil, err
	}
	i.PoolPropSelfpay = r
	if err := scanMoney([]*rules.Money{&i.HifmiPay, &i.HifobPay, &i.MafPay, &i.FundPaySumamt, &i.PsnPartAmt,
		&i.AcctPay, &i.PsnCashPay, &i.Balc}, m[8:16]); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(m[16]), &s.Detail); err != nil {
		return nil, fmt.Errorf("stored setldetail of %s: %w", s.SetlID, err)
	}
	if err := scanMoney([]*rules.Money{&d.DedcOutpatient, &d.DedcChronic, &d.FundOutpatient, &d.FundInpatient,
		&d.Burden, &d.Supp, &d.Maf, &d.Acct}, m[17:25]); err != nil {
		return nil, err
	}
	s.Status, s.Role = settlement.SettlementStatus(status), settlement.Role(role)
	return &s, nil
}

// ratioText reads a DECIMAL(6,4) as text ("0.8000").
func ratioText(s string) (rules.Ratio, error) {
	r, err := rules.ParseRatio(s)
	if err != nil {
		return 0, fmt.Errorf("stored ratio %q: %w", s, err)
	}
	return r, nil
}

func (t *tx) Settlement(ctx context.Context, setlID string) (*settlement.Settlement, error) {
	return scanSettlement(t.queryRow(ctx, `SELECT `+settlementCols+` FROM settlements WHERE setl_id = $1`, setlID))
}

func (t *tx) PutSettlement(ctx context.Context, s *settlement.Settlement) error {
	detail, err := json.Marshal(s.Detail)
	if err != nil {
		return err
	}
	i, d := &s.Info, &s.Delta
	args := []any{s.SetlID, s.MdtrtID, s.PsnNo, s.Institution, s.InsuredRegion, s.TreatmentRegion, s.MedType,
		s.Insutype, s.SetlTime, s.Year}
	for _, m := range []rules.Money{i.MedfeeSumamt, i.FulamtOwnpayAmt, i.OverlmtSelfpay, i.PreselfpayAmt,
		i.InscpScpAmt, i.ActPayDedc, i.HifpPay} {
		args = append(args, m.String())
	}
	args = append(args, i.PoolPropSelfpay.Decimal().String())
	for _, m := range []rules.Money{i.HifmiPay, i.HifobPay, i.MafPay, i.FundPaySumamt, i.PsnPartAmt, i.AcctPay,
		i.PsnCashPay, i.Balc} {
		args = append(args, m.String())
	}
	args = append(args, string(detail))
	for _, m := range []rules.Money{d.DedcOutpatient, d.DedcChronic, d.FundOutpatient, d.FundInpatient, d.Burden,
		d.Supp, d.Maf, d.Acct} {
		args = append(args, m.String())
	}
	role := s.Role
	if role == "" {
		role = settlement.RoleLocal
	}
	args = append(args, d.Admissions, string(s.Status), s.Reverses, s.Msgid, s.LedgerTxnID, string(role))
	t.queue(wrapErr("storing settlement %s", s.SetlID), insertSettlement, args...)
	return nil
}

// insertSettlement is PutSettlement's statement: its 41 parameters in the
// order of settlementCols, the amounts ($11-$26, $28-$35) as decimal text.
var insertSettlement = func() string {
	var ph strings.Builder
	for n := 1; n <= len(splitCols(settlementCols)); n++ {
		if n > 1 {
			ph.WriteString(", ")
		}
		ph.WriteString("$" + strconv.Itoa(n))
		if (n >= 11 && n <= 26) || (n >= 28 && n <= 35) {
			ph.WriteString("::TEXT::DECIMAL")
		}
	}
	return `INSERT INTO settlements (` + plainCols + `) VALUES (` + ph.String() + `)`
}()

var plainCols = func() string {
	// The insert lists the same columns as settlementCols, without the casts.
	out := ""
	for _, c := range splitCols(settlementCols) {
		if len(c) > 6 && c[len(c)-6:] == "::TEXT" {
			c = c[:len(c)-6]
		}
		if out != "" {
			out += ", "
		}
		out += c
	}
	return out
}()

func splitCols(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		switch r {
		case ',':
			out = append(out, cur)
			cur = ""
		case ' ', '\n', '\t':
		default:
			cur += string(r)
		}
	}
	return append(out, cur)
}

func (t *tx) SetSettlementStatus(ctx context.Context, setlID string, st settlement.SettlementStatus) error {
	t.queue(wrapErr("updating settlement %s", setlID), `UPDATE settlements SET status = $2 WHERE setl_id = $1`, setlID, string(st))
	return nil
}

func (t *tx) SettlementsOf(ctx context.Context, q settlement.PeriodQuery) ([]settlement.Settlement, error) {
	from, to := q.Bounds()
	return t.settlements(ctx, `WHERE fixmedins_code = $1 AND setl_time >= $2 AND setl_time < $3 ORDER BY setl_time, setl_id`,
		q.Institution, from, to)
}

// settlements reads the settlements a WHERE clause selects.
func (t *tx) settlements(ctx context.Context, where string, args ...any) ([]settlement.Settlement, error) {
	rows, err := t.query(ctx, `SELECT `+settlementCols+` FROM settlements `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading settlements: %w", err)
	}
	return collect(rows, func(r pgx.Row) (settlement.Settlement, error) {
		s, err := scanSettlement(r)
		if err != nil {
			return settlement.Settlement{}, err
		}
		return *s, nil
	})
}
