package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Persons and their yearly counters.

const personCols = `psn_no, psn_name, gend, certno, card_no, insuplc_admdvs, insutype, retired, assistance,
	opening_balc::TEXT, reg_admdvs, COALESCE(reg_begn::TEXT, ''), COALESCE(reg_endn::TEXT, '')`

// personRow receives the columns of personCols.
type personRow struct {
	p                settlement.Person
	balc, begn, endn string
}

func (r *personRow) dest() []any {
	p := &r.p
	return []any{&p.PsnNo, &p.Name, &p.Gend, &p.Certno, &p.CardNo, &p.InsuredRegion, &p.Insutype, &p.Retired,
		&p.Assistance, &r.balc, &p.RegRegion, &r.begn, &r.endn}
}

func (r *personRow) person() (*settlement.Person, error) {
	p := r.p
	var err error
	if p.OpeningBalc, err = money(r.balc); err != nil {
		return nil, err
	}
	if r.begn != "" {
		if p.RegBegin, err = rules.ParseDate(r.begn); err != nil {
			return nil, err
		}
		if p.RegEnd, err = rules.ParseDate(r.endn); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

func scanPerson(row pgx.Row) (*settlement.Person, error) {
	var r personRow
	err := row.Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading person: %w", err)
	}
	return r.person()
}

const personSQL = `SELECT ` + personCols + ` FROM persons WHERE psn_no = $1`

func (t *tx) Person(ctx context.Context, psnNo string) (*settlement.Person, error) {
	if v, ok, err := t.take(ctx, "person:"+psnNo); ok {
		p, _ := v.(*settlement.Person)
		return p, err
	}
	return scanPerson(t.queryRow(ctx, personSQL, psnNo))
}

func (t *tx) PersonByCert(ctx context.Context, certType, certNo string) (*settlement.Person, error) {
	if v, ok, err := t.take(ctx, certKey(certType, certNo)); ok {
		p, _ := v.(*settlement.Person)
		return p, err
	}
	return scanPerson(t.queryRow(ctx, `SELECT `+personCols+` FROM persons WHERE `+certColumn(certType)+` = $1`, certNo))
}

// certColumn is the registry column of a certificate type: 03 is the card, 02 the ID number.
func certColumn(certType string) string {
	if certType == "03" {
		return "card_no"
	}
	return "certno"
}

func certKey(certType, certNo string) string { return "cert:" + certColumn(certType) + ":" + certNo }

// PutPerson upserts a registry row (seeding and registry maintenance).
func (t *tx) PutPerson(ctx context.Context, p *settlement.Person) error {
	t.forget("person:" + p.PsnNo)
	t.queue(wrapErr("storing person %s", p.PsnNo), `INSERT INTO persons (psn_no, psn_name, gend, certno, card_no, insuplc_admdvs, insutype,
		retired, assistance, opening_balc, reg_admdvs, reg_begn, reg_endn)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::TEXT::DECIMAL(18,2), $11, $12::TEXT::DATE, $13::TEXT::DATE)
		ON CONFLICT (psn_no) DO UPDATE SET psn_name = excluded.psn_name, gend = excluded.gend,
		certno = excluded.certno, card_no = excluded.card_no, insuplc_admdvs = excluded.insuplc_admdvs,
		insutype = excluded.insutype, retired = excluded.retired, assistance = excluded.assistance,
		reg_admdvs = excluded.reg_admdvs, reg_begn = excluded.reg_begn, reg_endn = excluded.reg_endn`,
		p.PsnNo, p.Name, p.Gend, p.Certno, p.CardNo, p.InsuredRegion, p.Insutype, p.Retired, p.Assistance,
		p.OpeningBalc.String(), p.RegRegion, optDate(p.RegBegin), optDate(p.RegEnd))
	return nil
}

const counterCols = `dedc_used_outpatient::TEXT, dedc_used_chronic::TEXT, fund_paid_outpatient::TEXT,
	fund_paid_inpatient::TEXT, burden_ytd::TEXT, supp_paid_ytd::TEXT, maf_paid_ytd::TEXT, acct_balc::TEXT,
	opening_balc::TEXT, admissions`

// scanCounters reads a row selecting the given leading columns, then counterCols.
func scanCounters(row pgx.Row, yc *settlement.YearCounters, leading ...any) error {
	var m [9]string
	var admissions int
	dst := append(leading, &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8], &admissions)
	if err := row.Scan(dst...); err != nil {
		return err
	}
	return countersFrom(yc, m, admissions)
}

// countersFrom fills yc from the columns of counterCols.
func countersFrom(yc *settlement.YearCounters, m [9]string, admissions int) error {
	c := &yc.Counters
	c.Admissions = admissions
	return scanMoney([]*rules.Money{&c.DedcUsedOutpatient, &c.DedcUsedChronic, &c.FundPaidOutpatient,
		&c.FundPaidInpatient, &c.BurdenYTD, &c.SuppPaidYTD, &c.MafPaidYTD, &c.AcctBalc, &yc.OpeningBalc}, m[:])
}

const countersSQL = `SELECT ` + counterCols + ` FROM person_counters WHERE psn_no = $1 AND year = $2`

func countersKey(psnNo string, year int) string {
	return "counters:" + psnNo + "/" + strconv.Itoa(year)
}

func (t *tx) Counters(ctx context.Context, psnNo string, year int) (settlement.YearCounters, error) {
	yc := settlement.YearCounters{PsnNo: psnNo, Year: year}
	var err error
	if v, ok, ferr := t.take(ctx, countersKey(psnNo, year)); ok {
		if ferr != nil {
			return yc, ferr
		}
		if v != nil {
			t.found(countersKey(psnNo, year))
			return v.(settlement.YearCounters), nil
		}
		err = pgx.ErrNoRows
	} else if err = scanCounters(t.queryRow(ctx, countersSQL, psnNo, year), &yc); err == nil {
		t.found(countersKey(psnNo, year))
		return yc, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return yc, fmt.Errorf("reading counters of %s for %d: %w", psnNo, year, err)
	}
	// A new year opens with the balance the account closed the last year on
	// record with, or the registry's opening balance.
	var balc string
	err = t.queryRow(ctx, `SELECT acct_balc::TEXT FROM person_counters WHERE psn_no = $1 AND year < $2
		ORDER BY year DESC LIMIT 1`, psnNo, year).Scan(&balc)
	if errors.Is(err, pgx.ErrNoRows) {
		err = t.queryRow(ctx, `SELECT opening_balc::TEXT FROM persons WHERE psn_no = $1`, psnNo).Scan(&balc)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return yc, nil
	}
	if err != nil {
		return yc, fmt.Errorf("opening counters of %s for %d: %w", psnNo, year, err)
	}
	if yc.OpeningBalc, err = money(balc); err != nil {
		return yc, err
	}
	yc.Counters.AcctBalc = yc.OpeningBalc
	return yc, nil
}

func (t *tx) PutCounters(ctx context.Context, yc settlement.YearCounters) error {
	key := countersKey(yc.PsnNo, yc.Year)
	t.forget(key)
	c := yc.Counters
	if t.stored[key] {
		t.queueOne("storing counters of %s for %d", []any{yc.PsnNo, yc.Year}, `UPDATE person_counters SET
			dedc_used_outpatient = $3::TEXT::DECIMAL(18,2), dedc_used_chronic = $4::TEXT::DECIMAL(18,2),
			fund_paid_outpatient = $5::TEXT::DECIMAL(18,2), fund_paid_inpatient = $6::TEXT::DECIMAL(18,2),
			burden_ytd = $7::TEXT::DECIMAL(18,2), supp_paid_ytd = $8::TEXT::DECIMAL(18,2), maf_paid_ytd = $9::TEXT::DECIMAL(18,2),
			acct_balc = $10::TEXT::DECIMAL(18,2), admissions = $11
			WHERE psn_no = $1 AND year = $2`,
			yc.PsnNo, yc.Year, c.DedcUsedOutpatient.String(), c.DedcUsedChronic.String(), c.FundPaidOutpatient.String(),
			c.FundPaidInpatient.String(), c.BurdenYTD.String(), c.SuppPaidYTD.String(), c.MafPaidYTD.String(),
			c.AcctBalc.String(), c.Admissions)
		return nil
	}
	t.found(key) // inserted by the upsert below
	t.queue(wrapErr("storing counters of %s for %d", yc.PsnNo, yc.Year), `INSERT INTO person_counters (psn_no, year, dedc_used_outpatient, dedc_used_chronic,
		fund_paid_outpatient, fund_paid_inpatient, burden_ytd, supp_paid_ytd, maf_paid_ytd, acct_balc, opening_balc, admissions)
		VALUES ($1, $2, $3::TEXT::DECIMAL(18,2), $4::TEXT::DECIMAL(18,2), $5::TEXT::DECIMAL(18,2), $6::TEXT::DECIMAL(18,2),
		$7::TEXT::DECIMAL(18,2), $8::TEXT::DECIMAL(18,2), $9::TEXT::DECIMAL(18,2), $10::TEXT::DECIMAL(18,2),
		$11::TEXT::DECIMAL(18,2), $12)
		ON CONFLICT (psn_no, year) DO UPDATE SET dedc_used_outpatient = excluded.dedc_used_outpatient,
		dedc_used_chronic = excluded.dedc_used_chronic, fund_paid_outpatient = excluded.fund_paid_outpatient,
		fund_paid_inpatient = excluded.fund_paid_inpatient, burden_ytd = excluded.burden_ytd,
		supp_paid_ytd = excluded.supp_paid_ytd, maf_paid_ytd = excluded.maf_paid_ytd, acct_balc = excluded.acct_balc,
		admissions = excluded.admissions`,
		yc.PsnNo, yc.Year, c.DedcUsedOutpatient.String(), c.DedcUsedChronic.String(), c.FundPaidOutpatient.String(),
		c.FundPaidInpatient.String(), c.BurdenYTD.String(), c.SuppPaidYTD.String(), c.MafPaidYTD.String(),
		c.AcctBalc.String(), yc.OpeningBalc.String(), c.Admissions)
	return nil
}
