-- medsettle schema, version 1.
-- Written in the SQL common to PostgreSQL and CockroachDB: no triggers, no
-- PL/pgSQL, no sequences or serial keys (random ids or composite keys instead,
-- so no insert hot spot), amounts DECIMAL(18,2), every statement idempotent.

CREATE TABLE IF NOT EXISTS persons (
    psn_no          TEXT PRIMARY KEY,
    psn_name        TEXT NOT NULL,
    gend            TEXT NOT NULL,
    certno          TEXT NOT NULL UNIQUE,
    card_no         TEXT NOT NULL UNIQUE,
    insuplc_admdvs  TEXT NOT NULL,
    insutype        TEXT NOT NULL,
    retired         BOOLEAN NOT NULL,
    assistance      TEXT NOT NULL,
    opening_balc    DECIMAL(18,2) NOT NULL CHECK (opening_balc >= 0),
    reg_admdvs      TEXT NOT NULL,
    reg_begn        DATE,
    reg_endn        DATE
);

-- A person's counters per calendar year: the row every settlement of the
-- person reads and updates, so it is where concurrent settlements of one
-- person serialise (and nowhere else).
CREATE TABLE IF NOT EXISTS person_counters (
    psn_no               TEXT NOT NULL,
    year                 INT NOT NULL,
    dedc_used_outpatient DECIMAL(18,2) NOT NULL,
    dedc_used_chronic    DECIMAL(18,2) NOT NULL,
    fund_paid_outpatient DECIMAL(18,2) NOT NULL,
    fund_paid_inpatient  DECIMAL(18,2) NOT NULL,
    burden_ytd           DECIMAL(18,2) NOT NULL,
    supp_paid_ytd        DECIMAL(18,2) NOT NULL,
    maf_paid_ytd         DECIMAL(18,2) NOT NULL,
    acct_balc            DECIMAL(18,2) NOT NULL CHECK (acct_balc >= 0),
    admissions           INT NOT NULL,
    opening_balc         DECIMAL(18,2) NOT NULL,
    PRIMARY KEY (psn_no, year)
);

CREATE TABLE IF NOT EXISTS visits (
    mdtrt_id       TEXT PRIMARY KEY,
    psn_no         TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    kind           TEXT NOT NULL,
    med_type       TEXT NOT NULL,
    insutype       TEXT NOT NULL,
    begntime       TIMESTAMPTZ NOT NULL,
    endtime        TIMESTAMPTZ,
    ipt_otp_no     TEXT NOT NULL,
    status         TEXT NOT NULL,
    dise_codg      TEXT NOT NULL,
    dise_name      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS visits_by_institution ON visits (fixmedins_code, begntime);
CREATE INDEX IF NOT EXISTS visits_by_person ON visits (psn_no, begntime);

CREATE TABLE IF NOT EXISTS fee_lines (
    mdtrt_id            TEXT NOT NULL,
    feedetl_sn          TEXT NOT NULL,
    chrg_bchno          TEXT NOT NULL,
    med_list_codg       TEXT NOT NULL,
    medins_list_codg    TEXT NOT NULL,
    cnt                 DECIMAL(18,4) NOT NULL,
    pric                DECIMAL(18,4) NOT NULL,
    det_item_fee_sumamt DECIMAL(18,2) NOT NULL,
    fee_ocur_time       TIMESTAMPTZ NOT NULL,
    withdrawn           BOOLEAN NOT NULL,
    fulamt_ownpay_amt   DECIMAL(18,2) NOT NULL,
    overlmt_amt         DECIMAL(18,2) NOT NULL,
    preselfpay_amt      DECIMAL(18,2) NOT NULL,
    inscp_scp_amt       DECIMAL(18,2) NOT NULL,
    chrgitm_lv          TEXT NOT NULL,
    list_type           TEXT NOT NULL,
    pric_uplmt_amt      DECIMAL(18,2),
    selfpay_prop        DECIMAL(6,4) NOT NULL,
    PRIMARY KEY (mdtrt_id, feedetl_sn)
);

CREATE TABLE IF NOT EXISTS settlements (
    setl_id            TEXT PRIMARY KEY,
    mdtrt_id           TEXT NOT NULL,
    psn_no             TEXT NOT NULL,
    fixmedins_code     TEXT NOT NULL,
    insuplc_admdvs     TEXT NOT NULL,
    mdtrtarea_admvs    TEXT NOT NULL,
    med_type           TEXT NOT NULL,
    insutype           TEXT NOT NULL,
    setl_time          TIMESTAMPTZ NOT NULL,
    year               INT NOT NULL,
    medfee_sumamt      DECIMAL(18,2) NOT NULL,
    fulamt_ownpay_amt  DECIMAL(18,2) NOT NULL,
    overlmt_selfpay    DECIMAL(18,2) NOT NULL,
    preselfpay_amt     DECIMAL(18,2) NOT NULL,
    inscp_scp_amt      DECIMAL(18,2) NOT NULL,
    act_pay_dedc       DECIMAL(18,2) NOT NULL,
    hifp_pay           DECIMAL(18,2) NOT NULL,
    pool_prop_selfpay  DECIMAL(6,4) NOT NULL,
    hifmi_pay          DECIMAL(18,2) NOT NULL,
    hifob_pay          DECIMAL(18,2) NOT NULL,
    maf_pay            DECIMAL(18,2) NOT NULL,
    fund_pay_sumamt    DECIMAL(18,2) NOT NULL,
    psn_part_amt       DECIMAL(18,2) NOT NULL,
    acct_pay           DECIMAL(18,2) NOT NULL,
    psn_cash_pay       DECIMAL(18,2) NOT NULL,
    balc               DECIMAL(18,2) NOT NULL,
    setldetail         TEXT NOT NULL,
    d_dedc_outpatient  DECIMAL(18,2) NOT NULL,
    d_dedc_chronic     DECIMAL(18,2) NOT NULL,
    d_fund_outpatient  DECIMAL(18,2) NOT NULL,
    d_fund_inpatient   DECIMAL(18,2) NOT NULL,
    d_burden           DECIMAL(18,2) NOT NULL,
    d_supp             DECIMAL(18,2) NOT NULL,
    d_maf              DECIMAL(18,2) NOT NULL,
    d_acct             DECIMAL(18,2) NOT NULL,
    d_admissions       INT NOT NULL,
    status             TEXT NOT NULL,
    reverses           TEXT NOT NULL,
    msgid              TEXT NOT NULL,
    ledger_txn_id      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS settlements_by_institution ON settlements (fixmedins_code, setl_time);
CREATE INDEX IF NOT EXISTS settlements_by_person ON settlements (psn_no, year);
CREATE INDEX IF NOT EXISTS settlements_by_region ON settlements (insuplc_admdvs, setl_time);

-- The ledger: immutable transactions in per-person hash chains.
CREATE TABLE IF NOT EXISTS ledger_txns (
    txn_id    TEXT PRIMARY KEY,
    chain     TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    setl_id   TEXT NOT NULL,
    txn_time  TIMESTAMPTZ NOT NULL,
    UNIQUE (chain, seq)
);

CREATE TABLE IF NOT EXISTS ledger_entries (
    txn_id  TEXT NOT NULL,
    ordinal INT NOT NULL,
    account TEXT NOT NULL,
    amount  DECIMAL(18,2) NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (txn_id, ordinal)
);
CREATE INDEX IF NOT EXISTS ledger_entries_by_account ON ledger_entries (account);

CREATE TABLE IF NOT EXISTS chain_heads (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);

-- The outbox: one row per event, written in the transaction that caused it,
-- keyed like the ledger chain so that a person's events keep their order.
CREATE TABLE IF NOT EXISTS outbox (
    chain        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    part         INT NOT NULL,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (part, published_at, created_at);

-- Idempotency: one row per counter message.
CREATE TABLE IF NOT EXISTS messages (
    msgid          TEXT PRIMARY KEY,
    infno          TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    digest         TEXT NOT NULL,
    status         TEXT NOT NULL,
    ref            TEXT NOT NULL,
    answer         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
