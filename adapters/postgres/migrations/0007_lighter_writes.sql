-- Fewer index entries per settlement (issue #3: settle throughput).
--
-- The relay reads pending events through outbox_pending (0002), and the
-- count of unpublished rows is an index-only scan of it too: the older
-- outbox_unpublished, which every outbox insert and every publish mark
-- maintained, serves no query.
DROP INDEX IF EXISTS outbox_unpublished;

-- Only cross-province settlements are ever cleared; local ones, most of the
-- traffic, no longer enter the clearing index. Every query that uses it
-- names a role other than 'local'.
CREATE INDEX IF NOT EXISTS settlements_uncleared_remote ON settlements (role, cleared_period, setl_time)
    WHERE role <> 'local';
DROP INDEX IF EXISTS settlements_uncleared;
