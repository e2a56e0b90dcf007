-- The bureau console (adapters/console) and `medsettle report`: every page
-- reads an index range led by the bureau's region, never the whole table.
-- settlements_by_region (insuplc_admdvs, setl_time) of 0001 serves the
-- persons insured in a region; these serve the institutions of a region
-- (keyset-paginated on setl_time, setl_id) and a settlement's visit (the
-- original of a reversal and the reversal of a cancelled settlement).
CREATE INDEX IF NOT EXISTS settlements_by_treatment_region ON settlements (mdtrtarea_admvs, setl_time, setl_id);
CREATE INDEX IF NOT EXISTS settlements_by_visit ON settlements (mdtrt_id);

-- Day totals for the console's dashboards and monthly statements: a
-- settlement is never changed after its day (a cancellation is a new,
-- negated row on the day it is made), so once a day is over its sums per
-- region, institution and med_type are computed once, on first view, and
-- read from here after; the current and the previous day are always summed
-- from settlements. scope: 'insured' (region = insuplc_admdvs) or 'treated'
-- (region = mdtrtarea_admvs). console_days marks a day as summed (also when
-- it had no settlement).
CREATE TABLE IF NOT EXISTS console_day_totals (
    scope           TEXT NOT NULL,
    region          TEXT NOT NULL,
    day             DATE NOT NULL,
    fixmedins_code  TEXT NOT NULL,
    med_type        TEXT NOT NULL,
    insuplc_admdvs  TEXT NOT NULL,
    mdtrtarea_admvs TEXT NOT NULL,
    n               BIGINT NOT NULL,
    medfee_sumamt   DECIMAL(18,2) NOT NULL,
    fund_pay_sumamt DECIMAL(18,2) NOT NULL,
    hifp_pay        DECIMAL(18,2) NOT NULL,
    hifmi_pay       DECIMAL(18,2) NOT NULL,
    hifob_pay       DECIMAL(18,2) NOT NULL,
    maf_pay         DECIMAL(18,2) NOT NULL,
    acct_pay        DECIMAL(18,2) NOT NULL,
    psn_cash_pay    DECIMAL(18,2) NOT NULL,
    PRIMARY KEY (scope, region, day, fixmedins_code, med_type, insuplc_admdvs, mdtrtarea_admvs)
);
CREATE TABLE IF NOT EXISTS console_days (
    scope       TEXT NOT NULL,
    region      TEXT NOT NULL,
    day         DATE NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, region, day)
);

-- The open (uncleared) cross-province items of a region, for the console's
-- clearing page: partial indexes hold only what is still open.
CREATE INDEX IF NOT EXISTS settlements_open_receivables ON settlements (mdtrtarea_admvs, setl_time) WHERE role = 'treatment' AND cleared_period = '';
CREATE INDEX IF NOT EXISTS settlements_open_payables ON settlements (insuplc_admdvs, setl_time) WHERE role = 'insured' AND cleared_period = '';
