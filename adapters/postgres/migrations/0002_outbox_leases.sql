-- The outbox relay's coordination (adapters/kafka): which relay publishes
-- which outbox partition. Common SQL of PostgreSQL and CockroachDB; every
-- statement idempotent. Times are the database's (now()), never a relay's
-- clock, so relays on skewed hosts still agree on who holds a lease.

-- One row per outbox partition (outbox.part, 0..15) that a relay holds or
-- held: a relay publishes a partition only while its lease is unexpired, and
-- marks rows published only in a transaction that finds the lease still its.
CREATE TABLE IF NOT EXISTS outbox_leases (
    part       INT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Live relays, heartbeating with their leases: each takes its fair share,
-- ceil(16 / live relays), of the partitions.
CREATE TABLE IF NOT EXISTS outbox_relays (
    owner      TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

-- The relay's fetch, a part's unpublished rows in (chain, seq) order, as an
-- index range scan that stops at LIMIT, however large a backlog grows (the
-- rows leave the index as they are marked published).
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (part, chain, seq) WHERE published_at IS NULL;
