-- The outbox becomes a queue (issue #3: settle throughput): a relay deletes
-- the events it has published instead of marking them, so the table holds
-- only what is still to publish, and one index serves everything.
--
-- Before, every settlement inserted three index entries into the outbox (the
-- primary key, the UNIQUE event_id and the partial outbox_pending index),
-- and every mark rewrote the row with two more. Now a settlement inserts one,
-- (part, chain, seq): the relay's fetch is a range of it in the order it
-- publishes, its delete finds rows by it, and the backlog count reads the
-- whole (small) table. An event's id stays unique without an index of its
-- own: NewID makes it, and (chain, seq) is unique already. What was
-- published is in the ledger, which keeps everything; the outbox never was
-- the record.
--
-- A new table rather than a changed one: CockroachDB cannot drop a UNIQUE
-- constraint with ALTER TABLE (cockroachdb/cockroach#42840), and PostgreSQL
-- cannot drop the index behind one with DROP INDEX. Stop the writers of the
-- previous version before migrating: an event they write to the old table
-- after the copy below would not be published.
CREATE TABLE IF NOT EXISTS outbox_events (
    part         INT NOT NULL,
    chain        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (part, chain, seq)
);

-- Each statement of a migration commits on its own; should a run stop after
-- the DROP below and before the migration is recorded, the next run finds no
-- old outbox. This empty stand-in lets the copy run again (copying nothing).
CREATE TABLE IF NOT EXISTS outbox (
    chain        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    part         INT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);

INSERT INTO outbox_events (part, chain, seq, event_id, event_type, event_key, payload, created_at)
    SELECT part, chain, seq, event_id, event_type, event_key, payload, created_at
    FROM outbox WHERE published_at IS NULL
    ON CONFLICT (part, chain, seq) DO NOTHING;

DROP TABLE IF EXISTS outbox;
