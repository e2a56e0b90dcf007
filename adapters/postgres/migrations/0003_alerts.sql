-- Fund-supervision monitor (基金监管): what it observed and what it raised.
-- SQL common to PostgreSQL and CockroachDB, every statement idempotent.

-- Every settlement event the monitor observed, per person in the order
-- observed (seq 1, 2, ...): the monitor's state is rebuilt from it, so it
-- needs neither the settlements topic's retention nor a replay of the topic.
CREATE TABLE IF NOT EXISTS monitor_events (
    psn_no      TEXT NOT NULL,
    seq         INT NOT NULL,
    event_id    TEXT NOT NULL UNIQUE,
    payload     TEXT NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (psn_no, seq)
);

-- Alerts, keyed by their deterministic id (an alert raised again is the same
-- row). regions and evidence are JSON: the institutions' regions, and the
-- settlements involved as the monitor saw them. published_at is set once the
-- alert is on the alerts topic (the table is the alerts' outbox).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id       TEXT PRIMARY KEY,
    rule           TEXT NOT NULL,
    psn_no         TEXT NOT NULL,
    insuplc_admdvs TEXT NOT NULL,
    regions        TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    detail         TEXT NOT NULL,
    raised_at      TIMESTAMPTZ NOT NULL,
    event_id       TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    published_at   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS alerts_by_person ON alerts (psn_no, raised_at);
CREATE INDEX IF NOT EXISTS alerts_unpublished ON alerts (created_at) WHERE published_at IS NULL;

-- Which regions an alert concerns (the insured region and the institutions'
-- regions): a bureau's query is a range scan of its region.
CREATE TABLE IF NOT EXISTS alert_regions (
    admdvs    TEXT NOT NULL,
    raised_at TIMESTAMPTZ NOT NULL,
    alert_id  TEXT NOT NULL,
    PRIMARY KEY (admdvs, raised_at, alert_id)
);
