-- Monthly clearing between provinces.
-- cleared_period marks a cross-province settlement (either side) as settled
-- between the provinces; '' while it is still open (or disputed and carried).
ALTER TABLE settlements ADD COLUMN IF NOT EXISTS cleared_period TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS settlements_uncleared ON settlements (role, cleared_period, setl_time);

-- One row per posting of a clearing (payment, receipt, top-up) or per
-- escalation: the idempotency key of each clearing activity.
CREATE TABLE IF NOT EXISTS clearings (
    period        TEXT NOT NULL,
    counterparty  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    total         DECIMAL(18,2) NOT NULL,
    items         TEXT NOT NULL,
    ledger_txn_id TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (period, counterparty, kind)
);
