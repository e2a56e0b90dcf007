package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Visits and their fee lines.

const visitSQL = `SELECT mdtrt_id, psn_no, fixmedins_code, kind, med_type, insutype, begntime, endtime,
	ipt_otp_no, status, dise_codg, dise_name FROM visits WHERE mdtrt_id = $1`

func (t *tx) Visit(ctx context.Context, mdtrtID string) (*settlement.Visit, error) {
	var v *settlement.Visit
	got, ok, err := t.take(ctx, "visit:"+mdtrtID)
	if ok {
		v, _ = got.(*settlement.Visit)
	} else {
		v, err = scanVisit(t.queryRow(ctx, visitSQL, mdtrtID), mdtrtID)
	}
	if v != nil {
		t.found("visit:" + mdtrtID)
	}
	return v, err
}

// visitRow receives the columns of visitSQL.
type visitRow struct {
	v            settlement.Visit
	kind, status string
	end          *time.Time
}

func (r *visitRow) dest() []any {
	v := &r.v
	return []any{&v.MdtrtID, &v.PsnNo, &v.Institution, &r.kind, &v.MedType, &v.Insutype, &v.Begin, &r.end,
		&v.IptOtpNo, &r.status, &v.DiseCodg, &v.DiseName}
}

func (r *visitRow) visit() *settlement.Visit {
	v := r.v
	v.Kind, v.Status = settlement.VisitKind(r.kind), settlement.VisitStatus(r.status)
	if r.end != nil {
		v.End = *r.end
	}
	return &v
}

func scanVisit(row pgx.Row, mdtrtID string) (*settlement.Visit, error) {
	var r visitRow
	err := row.Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading visit %s: %w", mdtrtID, err)
	}
	return r.visit(), nil
}

func (t *tx) PutVisit(ctx context.Context, v *settlement.Visit) error {
	key := "visit:" + v.MdtrtID
	t.forget(key)
	var end any
	if !v.End.IsZero() {
		end = v.End
	}
	if t.stored[key] {
		t.queueOne("storing visit %s", []any{v.MdtrtID}, `UPDATE visits SET med_type = $2, endtime = $3, status = $4,
			dise_codg = $5, dise_name = $6 WHERE mdtrt_id = $1`,
			v.MdtrtID, v.MedType, end, string(v.Status), v.DiseCodg, v.DiseName)
		return nil
	}
	t.found(key)
	t.queue(wrapErr("storing visit %s", v.MdtrtID), `INSERT INTO visits (mdtrt_id, psn_no, fixmedins_code, kind, med_type, insutype,
		begntime, endtime, ipt_otp_no, status, dise_codg, dise_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (mdtrt_id) DO UPDATE SET med_type = excluded.med_type, endtime = excluded.endtime,
		status = excluded.status, dise_codg = excluded.dise_codg, dise_name = excluded.dise_name`,
		v.MdtrtID, v.PsnNo, v.Institution, string(v.Kind), v.MedType, v.Insutype, v.Begin, end, v.IptOtpNo,
		string(v.Status), v.DiseCodg, v.DiseName)
	return nil
}

const linesSQL = `SELECT ` + feeLineCols + ` FROM fee_lines
	WHERE mdtrt_id = $1 AND NOT withdrawn`

func (t *tx) Lines(ctx context.Context, mdtrtID string) ([]settlement.FeeLine, error) {
	if v, ok, err := t.take(ctx, "lines:"+mdtrtID); ok {
		lines, _ := v.([]settlement.FeeLine)
		return lines, err
	}
	rows, err := t.query(ctx, linesSQL, mdtrtID)
	if err != nil {
		return nil, fmt.Errorf("reading lines of %s: %w", mdtrtID, err)
	}
	lines, err := scanFeeLines(rows, mdtrtID)
	sortLines(lines)
	return lines, err
}

// feeLineCols are the columns scanFeeLines reads.
const feeLineCols = `feedetl_sn, chrg_bchno, med_list_codg, medins_list_codg, cnt::TEXT, pric::TEXT,
	det_item_fee_sumamt::TEXT, fee_ocur_time, withdrawn, fulamt_ownpay_amt::TEXT, overlmt_amt::TEXT,
	preselfpay_amt::TEXT, inscp_scp_amt::TEXT, chrgitm_lv, list_type, COALESCE(pric_uplmt_amt::TEXT, ''), selfpay_prop::TEXT`

// scanFeeLines reads the rows of a query selecting feeLineCols, and closes them.
func scanFeeLines(rows pgx.Rows, mdtrtID string) ([]settlement.FeeLine, error) {
	defer rows.Close()
	var out []settlement.FeeLine
	for rows.Next() {
		var r lineRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("reading lines of %s: %w", mdtrtID, err)
		}
		l, err := r.line(mdtrtID)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// lineRow receives the columns of feeLineCols.
type lineRow struct {
	l                                         settlement.FeeLine
	amt, fulamt, over, pre, inscp, lv, cp, pr string
}

func (r *lineRow) dest() []any {
	l := &r.l
	return []any{&l.SN, &l.ChrgBchno, &l.Code, &l.HospCode, &l.Cnt, &l.Pric, &r.amt, &l.FeeTime, &l.Withdrawn,
		&r.fulamt, &r.over, &r.pre, &r.inscp, &r.lv, &l.Priced.ListType, &r.cp, &r.pr}
}

func (r *lineRow) line(mdtrtID string) (settlement.FeeLine, error) {
	l := r.l
	l.MdtrtID = mdtrtID
	p := &l.Priced
	if err := scanMoney([]*rules.Money{&l.Amount, &p.Fulamt, &p.Over, &p.Pre, &p.Inscp},
		[]string{r.amt, r.fulamt, r.over, r.pre, r.inscp}); err != nil {
		return l, err
	}
	p.SN, p.Amount, p.Level = l.SN, l.Amount, rules.Level(r.lv)
	var err error
	if r.cp != "" {
		p.HasCap = true
		if p.PriceCap, err = money(r.cp); err != nil {
			return l, err
		}
	}
	if p.SelfpayProp, err = rules.ParseRatio(r.pr); err != nil {
		return l, fmt.Errorf("stored selfpay_prop %q: %w", r.pr, err)
	}
	return l, nil
}

func (t *tx) PutLines(ctx context.Context, lines []settlement.FeeLine) error {
	for i := range lines {
		l := &lines[i]
		t.forget("lines:" + l.MdtrtID)
		var cap any
		if l.Priced.HasCap {
			cap = l.Priced.PriceCap.String()
		}
		t.queue(wrapErr("storing line %s of %s", l.SN, l.MdtrtID), `INSERT INTO fee_lines (mdtrt_id, feedetl_sn, chrg_bchno, med_list_codg, medins_list_codg, cnt, pric,
			det_item_fee_sumamt, fee_ocur_time, withdrawn, fulamt_ownpay_amt, overlmt_amt, preselfpay_amt, inscp_scp_amt,
			chrgitm_lv, list_type, pric_uplmt_amt, selfpay_prop)
			VALUES ($1, $2, $3, $4, $5, $6::TEXT::DECIMAL(18,4), $7::TEXT::DECIMAL(18,4), $8::TEXT::DECIMAL(18,2), $9, false,
			$10::TEXT::DECIMAL(18,2), $11::TEXT::DECIMAL(18,2), $12::TEXT::DECIMAL(18,2), $13::TEXT::DECIMAL(18,2),
			$14, $15, $16::TEXT::DECIMAL(18,2), $17::TEXT::DECIMAL(6,4))`,
			l.MdtrtID, l.SN, l.ChrgBchno, l.Code, l.HospCode, l.Cnt, l.Pric, l.Amount.String(), l.FeeTime,
			l.Priced.Fulamt.String(), l.Priced.Over.String(), l.Priced.Pre.String(), l.Priced.Inscp.String(),
			string(l.Priced.Level), l.Priced.ListType, cap, l.Priced.SelfpayProp.Decimal().String())
	}
	return nil
}

func (t *tx) WithdrawBatch(ctx context.Context, mdtrtID, chrgBchno string) (int, error) {
	t.forget("lines:" + mdtrtID)
	tag, err := t.exec(ctx, `UPDATE fee_lines SET withdrawn = true
		WHERE mdtrt_id = $1 AND NOT withdrawn AND ($2 = '' OR chrg_bchno = $2)`, mdtrtID, chrgBchno)
	if err != nil {
		return 0, fmt.Errorf("withdrawing lines of %s: %w", mdtrtID, err)
	}
	return int(tag.RowsAffected()), nil
}
