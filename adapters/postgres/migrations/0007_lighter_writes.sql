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

-- Balances are asked of the accounts between provinces only (advances,
-- receipts, clearing: Balance, the console's clearing page); the accounts
-- every settlement posts to (funds, personal accounts, institutions) are
-- summed from their entries by the audit and the day totals, never looked
-- up by name. Indexing only the former spares each settlement three index
-- entries. interProvinceAccounts in clearing.go repeats this predicate in
-- the queries, so that the planner may use the index.
CREATE INDEX IF NOT EXISTS ledger_entries_interprovince ON ledger_entries (account)
    WHERE account LIKE 'advance:%' OR account LIKE 'received:%' OR account LIKE 'clearing:%';
DROP INDEX IF EXISTS ledger_entries_by_account;

-- No query looks settlements up by person: the audit reads them all in
-- person order, which a sort gives it as well as this index did, once per
-- audit rather than an index entry per settlement.
DROP INDEX IF EXISTS settlements_by_person;
